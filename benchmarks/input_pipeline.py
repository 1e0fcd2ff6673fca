"""Does the input pipeline keep the model fed? Pipeline throughput against training throughput.

On full Fashion-MNIST, in one run:

1. the pipeline alone: `kcnn.data.make_dataset` with an augmentation preset ("standard" by
   default), images per second over a whole epoch once the cache is warm;
2. the ``simple_cnn`` training step alone, ``model.fit`` on one batch already in memory, in
   float32 and in mixed bfloat16 (the faster is the rate the pipeline has to beat);
3. their ratio: above 1 the model never waits for data; the goal is at least 2;
4. a naive pipeline -- the same Keras augmentation layers applied image by image in a
   sequential ``map``, then ``batch``, no prefetch -- and the same per-image pipeline with a
   parallel map and prefetch, to show what parallel map + prefetch, and then kcnn's batched
   augmentation, each bring;
5. ``model.fit`` end to end (float32) on kcnn's pipeline and on the naive one, where the
   pipeline and the training step share the CPU.

Every measurement is repeated in ``--rounds`` interleaved rounds and its best is kept, so that
a burst of load from other processes on a shared machine does not decide a ratio.

Usage:
    python benchmarks/input_pipeline.py                  # full run, a few minutes on 2 cores
    python benchmarks/input_pipeline.py --quick          # a smoke run

Writes ``results/input_pipeline.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion_mnist", help="a kcnn.data.load source")
    parser.add_argument("--data-dir", default=None, help="where to look for the dataset first")
    parser.add_argument("--augment", default="standard", help="augmentation preset")
    parser.add_argument("--model", default="simple_cnn", help="registered model to train")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--train-steps", type=int, default=100, help="timed training steps")
    parser.add_argument("--naive-batches", type=int, default=60, help="timed naive batches")
    parser.add_argument("--quick", action="store_true", help="tiny run, to check the script")
    parser.add_argument("--output", default="results/input_pipeline.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.train_steps, args.naive_batches = 1, 10, 10
    return args


def images_per_second(dataset, max_batches=None) -> float:
    """Iterate ``dataset`` (up to ``max_batches``) and return the images delivered per second."""
    count = 0
    start = time.perf_counter()
    for batch, (images, _) in enumerate(dataset):
        count += int(images.shape[0])
        if max_batches is not None and batch + 1 >= max_batches:
            break
    return count / (time.perf_counter() - start)


def per_image_pipeline(args, info, parallel: bool):
    """The same augmentation layers applied image by image, then batched: with a sequential
    map and no prefetch (the naive pipeline), or with a parallel map and prefetch."""
    import tensorflow as tf

    import kcnn.data
    from kcnn.data.normalize import normalizer

    dataset, _ = kcnn.data.load(args.dataset, data_dir=args.data_dir)
    layers = kcnn.data.augmentation_layers(
        args.augment, image_size=info.image_shape[:2], channels=info.channels, dtype="float32"
    )
    normalise = normalizer("standardize", info)

    def one_image(image, label):
        image = tf.cast(image, tf.float32)
        for layer in layers:
            image = layer(image, training=True)
        return normalise(image), label

    calls = tf.data.AUTOTUNE if parallel else None
    dataset = dataset.shuffle(info.num_examples, seed=0).map(one_image, num_parallel_calls=calls)
    dataset = dataset.batch(args.batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE) if parallel else dataset


def compiled_model(args, info, precision: str):
    """``args.model`` compiled for sparse labels, its layers in ``precision``."""
    import keras

    import kcnn

    keras.config.set_dtype_policy(precision)
    try:
        model = kcnn.create_model(
            args.model, input_shape=info.image_shape, classes=info.num_classes
        )
    finally:
        keras.config.set_dtype_policy("float32")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=False)
    return model


def in_memory_batch(args, info):
    """One random batch, repeated: training fed at no cost."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.normal(size=(args.batch_size, *info.image_shape)).astype("float32")
    labels = rng.integers(0, info.num_classes, args.batch_size)
    return tf.data.Dataset.from_tensors((images, labels))


def fit_rate(model, batches, steps: int, batch_size: int) -> float:
    """Images per second of ``model.fit`` for ``steps`` steps on ``batches`` (repeated)."""
    start = time.perf_counter()
    model.fit(batches.repeat(), steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None) -> dict:
    import kcnn.data
    from kcnn.files import write_json

    args = parse_args(argv)
    pipeline_batches = 20 if args.quick else None
    dataset, info = kcnn.data.make_dataset(
        args.dataset, args.batch_size, augment=args.augment, data_dir=args.data_dir
    )
    naive = per_image_pipeline(args, info, parallel=False)
    parallel = per_image_pipeline(args, info, parallel=True)
    batch = in_memory_batch(args, info)
    models = {
        name: compiled_model(args, info, precision)
        for name, precision in (
            ("float32", "float32"),
            ("mixed_bfloat16", "mixed_bfloat16"),
            ("fit_kcnn", "float32"),
            ("fit_naive", "float32"),
        )
    }
    feeds = {"float32": batch, "mixed_bfloat16": batch, "fit_kcnn": dataset, "fit_naive": naive}
    measurements = {
        "pipeline": lambda: images_per_second(dataset, pipeline_batches),
        "naive": lambda: images_per_second(naive, args.naive_batches),
        "parallel": lambda: images_per_second(parallel, args.naive_batches),
        **{
            name: (
                lambda name=name: fit_rate(
                    models[name], feeds[name], args.train_steps, args.batch_size
                )
            )
            for name in models
        },
    }
    images_per_second(dataset, pipeline_batches)  # fills the cache
    for name in ("naive", "parallel"):
        images_per_second({"naive": naive, "parallel": parallel}[name], 3)
    for name, model in models.items():
        fit_rate(model, feeds[name], 3, args.batch_size)  # traces the train step
    best = {name: 0.0 for name in measurements}
    for _ in range(args.rounds):
        for name, measure in measurements.items():
            best[name] = max(best[name], measure())
    fastest = max(best["float32"], best["mixed_bfloat16"])
    results = {
        "dataset": args.dataset,
        "examples": info.num_examples,
        "augment": args.augment,
        "model": args.model,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "pipeline_images_per_s": round(best["pipeline"]),
        "training_images_per_s": {p: round(best[p]) for p in ("float32", "mixed_bfloat16")},
        "pipeline_over_training": round(best["pipeline"] / fastest, 2),
        "naive_images_per_s": round(best["naive"]),
        "naive_parallel_prefetch_images_per_s": round(best["parallel"]),
        "parallel_prefetch_speedup_over_naive": round(best["parallel"] / best["naive"], 2),
        "kcnn_speedup_over_naive": round(best["pipeline"] / best["naive"], 2),
        "fit_with_kcnn_pipeline_images_per_s": round(best["fit_kcnn"]),
        "fit_with_naive_pipeline_images_per_s": round(best["fit_naive"]),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "quick": args.quick,
    }
    report(args, info, best, fastest)
    write_json(args.output, results)
    print(f"written {args.output}")
    return results


def report(args, info, best, fastest) -> None:
    pipeline, naive, float32 = best["pipeline"], best["naive"], best["float32"]
    print(
        f"{args.dataset} ({info.num_examples} training images), augment={args.augment!r}, "
        f"batch {args.batch_size}, {os.cpu_count()} CPU cores, best of {args.rounds} rounds"
    )
    print(f"  kcnn pipeline alone                      {pipeline:10.0f} images/s")
    for precision in ("float32", "mixed_bfloat16"):
        print(f"  {args.model} training step ({precision:<14}) {best[precision]:10.0f} images/s")
    print(
        f"  pipeline / fastest training step         {pipeline / fastest:10.2f}x "
        f"({'at least 2x: the model never waits' if pipeline >= 2 * fastest else 'BELOW 2x'})"
    )
    print(f"  naive per-image pipeline                 {naive:10.0f} images/s")
    print(
        f"  per-image + parallel map + prefetch      {best['parallel']:10.0f} images/s "
        f"({best['parallel'] / naive:.2f}x naive)"
    )
    print(f"  kcnn pipeline (batched augmentation)     {pipeline / naive:10.2f}x naive")
    for name, label in (("fit_kcnn", "kcnn pipeline"), ("fit_naive", "naive pipeline")):
        print(
            f"  fit, float32, {label:<27}{best[name]:10.0f} images/s "
            f"({best[name] / float32:.0%} of the float32 step alone)"
        )


if __name__ == "__main__":
    main()
