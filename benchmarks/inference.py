"""How fast does an exported model serve? Images/s of one model in each runtime, in one run.

The same model (a registered one with a ``normalize`` input layer, as `kcnn train` builds it,
or a trained ``.keras`` file) runs on the same random 0-255 images in:

1. Keras on TensorFlow (``model.predict_on_batch``, the baseline),
2. its SavedModel through ``tf.saved_model.load`` (``serving_default``),
3. its TFLite file in LiteRT, in float32 and quantized (dynamic, float16, int8),
4. its ONNX file in onnxruntime (CPU),

at batch 1 (latency) and batch 64 (throughput). For each it prints the size on disk, images/s,
the ratio to the Keras baseline and the largest difference of its probabilities from Keras's.
Every measurement is repeated in ``--rounds`` interleaved rounds and its best is kept, so that
a burst of load from other processes on a shared machine does not decide a ratio; the load
average is recorded.

Usage:
    python benchmarks/inference.py                        # simple_cnn, about a minute on 2 cores
    python benchmarks/inference.py --model resnet18 --image-size 64 --channels 3
    python benchmarks/inference.py --keras saved_models/simple_cnn-fashion_mnist/best.keras
    python benchmarks/inference.py --quick                # a smoke run

Writes ``results/inference.json``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

RUNTIMES = (
    ("keras", None, None),
    ("saved_model", "saved_model", None),
    ("tflite", "tflite", None),
    ("tflite_dynamic", "tflite", "dynamic"),
    ("tflite_float16", "tflite", "float16"),
    ("tflite_int8", "tflite", "int8"),
    ("onnx", "onnx", None),
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="simple_cnn", help="registered model (random weights)")
    parser.add_argument("--keras", help="a trained .keras file instead of --model")
    parser.add_argument(
        "--image-size", type=int, help="input height and width (default the model's)"
    )
    parser.add_argument("--channels", type=int, help="input channels (default the model's)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--quick", action="store_true", help="tiny run, to check the script")
    parser.add_argument("--output", default="results/inference.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 0.3, 1
    return args


def baseline_model(args):
    """The model to export: ``--keras``, or ``--model`` built as `kcnn train` builds it."""
    import kcnn
    from kcnn.data import DatasetInfo
    from kcnn.training import build_model

    if args.keras:
        return kcnn.load_model(args.keras, compile=False)
    height, width, channels = kcnn.model_info(args.model).input_shape
    size, channels = args.image_size, args.channels or channels
    shape = (size or height, size or width, channels)
    info = DatasetInfo(
        name="random",
        class_names=tuple(str(i) for i in range(10)),
        num_classes=10,
        image_shape=shape,
        num_examples=0,
        source="random",
        mean=(0.5,) * channels,
        std=(0.25,) * channels,
    )
    return build_model(args.model, info)


def random_images(rng, count: int, shape) -> np.ndarray:
    """``count`` float32 images of ``shape`` with uniform 0-255 pixels."""
    return rng.uniform(0, 255, (count, *shape)).astype("float32")


def images_per_second(predict, images, seconds: float) -> float:
    """Call ``predict(images)`` for about ``seconds`` (after two warm-up calls); images/s."""
    predict(images)
    predict(images)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        predict(images)
        calls += 1
    return calls * len(images) / (time.perf_counter() - start)


def exported_runtimes(model, folder, calibration):
    """``{runtime: (predict, bytes on disk)}`` for Keras and every export of ``model``."""
    from kcnn import export
    from kcnn.files import save_model

    keras_file = save_model(model, os.path.join(folder, "model.keras"))
    runtimes = {"keras": (model.predict_on_batch, export.size_on_disk(keras_file))}
    for name, format, quantize in RUNTIMES[1:]:
        path = os.path.join(folder, name if format == "saved_model" else f"{name}.{format}")
        export.export(
            model,
            path,
            format,
            quantize=quantize,
            representative_data=calibration if quantize == "int8" else None,
        )
        runtimes[name] = (export.load_exported(path), export.size_on_disk(path))
    return runtimes


def main(argv=None) -> dict:
    from kcnn.files import write_json
    from kcnn.report import describe_hardware

    args = parse_args(argv)
    load = os.getloadavg()[0]
    model = baseline_model(args)
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(0)
    batches = {size: random_images(rng, size, shape) for size in args.batch_sizes}
    largest = batches[max(batches)]
    with tempfile.TemporaryDirectory() as folder:
        runtimes = exported_runtimes(model, folder, random_images(rng, 64, shape))
        reference = np.asarray(model.predict_on_batch(largest))
        differences = {
            name: float(np.abs(np.asarray(predict(largest)) - reference).max())
            for name, (predict, _) in runtimes.items()
        }
        best = {(name, size): 0.0 for name in runtimes for size in batches}
        for _ in range(args.rounds):
            for name, size in best:
                rate = images_per_second(runtimes[name][0], batches[size], args.seconds)
                best[name, size] = max(best[name, size], rate)
    results = {
        "machine": describe_hardware(),
        "load_average": [load, os.getloadavg()[0]],
        "model": args.keras or args.model,
        "input_shape": list(shape),
        "rounds": args.rounds,
        "seconds_per_measurement": args.seconds,
        "quick": args.quick,
        "runtimes": {
            name: {
                "bytes": size,
                "max_abs_difference_from_keras": differences[name],
                **{f"batch_{batch}_images_per_s": round(best[name, batch], 1) for batch in batches},
                **{
                    f"batch_{batch}_ratio_to_keras": round(
                        best[name, batch] / best["keras", batch], 2
                    )
                    for batch in batches
                },
            }
            for name, (_, size) in runtimes.items()
        },
    }
    report(results, list(batches))
    write_json(args.output, results)
    print(f"written {args.output}")
    return results


def report(results, batch_sizes) -> None:
    print(
        f"{results['model']} {'x'.join(map(str, results['input_shape']))}, best of "
        f"{results['rounds']} rounds of {results['seconds_per_measurement']} s; load average "
        f"{results['load_average'][0]:.1f} -> {results['load_average'][1]:.1f}"
    )
    print(f"  {results['machine']}")
    header = "".join(f"  batch {b:>3} img/s   x keras" for b in batch_sizes)
    print(f"  {'runtime':<16}{'size MB':>9}{header}   max |diff|")
    for name, row in results["runtimes"].items():
        cells = "".join(
            f"{row[f'batch_{b}_images_per_s']:>17,.0f} {row[f'batch_{b}_ratio_to_keras']:>8.2f}x"
            for b in batch_sizes
        )
        difference = row["max_abs_difference_from_keras"]
        print(f"  {name:<16}{row['bytes'] / 1e6:>9.2f}{cells}   {difference:.1e}")


if __name__ == "__main__":
    main()
