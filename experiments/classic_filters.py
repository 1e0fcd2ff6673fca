"""What do the course's classic filters (section 2.3) do to real images, and does a Keras
``Conv2D`` compute exactly the course's convolution?

Applies every filter of `kcnn.models.CLASSIC_FILTERS` (vertical and horizontal edges, box blur,
Sobel x and y, Gaussian, Laplacian, sharpen) to a Fashion-MNIST test item and to the photograph
of Grace Hopper that ships with matplotlib, twice: with the NumPy reference of the course's
formula (`kcnn.convmath.conv2d`) on the grey-level image, and with the fixed Keras layer
(`kcnn.models.fixed_conv2d`) on the image as stored (one channel, or RGB whose mean the layer
filters). It prints the largest difference between the two, writes ``report.json`` and a figure
(one row per image: the image, then each filter's response; the zero-sum filters -- edges,
Laplacian -- in a diverging colour map centred on 0).

Example:
    python experiments/classic_filters.py --index 0 --output-dir results/classic_filters
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_IMAGES = "t10k-images-idx3-ubyte.gz"
FASHION_MNIST_LABELS = "t10k-labels-idx1-ubyte.gz"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
PHOTO = "grace_hopper.jpg"


def fashion_mnist_item(data_dir, index: int):
    """Test item ``index`` of Fashion-MNIST: a 28x28x1 float image in [0, 1] and its class name.

    Raises:
        FileNotFoundError: when the IDX files are not in ``data_dir``.
        ValueError: for an index outside the test set.
    """
    paths = [os.path.join(data_dir, name) for name in (FASHION_MNIST_IMAGES, FASHION_MNIST_LABELS)]
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST is not in {data_dir!r} (missing {', '.join(missing)}): install "
            "Debian's dataset-fashion-mnist package or pass --data-dir with the IDX .gz files"
        )
    from kcnn.data.idx import read_idx

    images, labels = (read_idx(path) for path in paths)
    if not 0 <= index < len(images):
        raise ValueError(f"index must be in [0, {len(images)}), got {index}")
    return images[index, :, :, None] / 255.0, FASHION_MNIST_CLASSES[labels[index]]


def sample_photo() -> np.ndarray:
    """The photograph of Grace Hopper that ships with matplotlib, RGB float in [0, 1]."""
    import matplotlib.cbook
    import matplotlib.image

    path = matplotlib.cbook.get_sample_data(PHOTO, asfileobj=False)
    return matplotlib.image.imread(path)[..., :3] / 255.0


def apply_filters(image, names):
    """Each filter's response on ``image`` (H, W, C): the NumPy reference on the channel mean,
    and the fixed Keras layer on the image itself.

    Returns:
        ``(reference, keras_output)``, two (H, W, len(names)) arrays.
    """
    from kcnn.convmath import conv2d
    from kcnn.models import classic_kernel, fixed_conv2d

    grey = image.mean(axis=-1)
    reference = np.stack(
        [conv2d(grey, classic_kernel(name), padding="same") for name in names], axis=-1
    )
    layer = fixed_conv2d(names, input_channels=image.shape[-1], padding="same")
    keras_output = np.asarray(layer(image[None].astype("float32")))[0]
    return reference, keras_output


def plot_responses(rows, names):
    """A figure with one row per ``(title, image, responses)``: the image, then each response."""
    from matplotlib.figure import Figure

    from kcnn.models import classic_kernel

    figure = Figure(figsize=(2.0 * (len(names) + 1), 2.3 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), len(names) + 1, squeeze=False)
    for row, (title, image, responses) in zip(axes, rows):
        row[0].imshow(image if image.shape[-1] == 3 else image[..., 0], cmap="gray")
        row[0].set_title(title, fontsize=8)
        for ax, name, response in zip(row[1:], names, np.moveaxis(responses, -1, 0)):
            # Colour limits at the 99.5th percentile, so that the strong responses along the
            # zero-padded border of a photograph do not wash the rest out.
            if abs(classic_kernel(name).sum()) < 1e-6:
                limit = np.percentile(np.abs(response), 99.5) or 1.0
                ax.imshow(response, cmap="RdBu_r", vmin=-limit, vmax=limit)
            else:
                low, high = np.percentile(response, [0.5, 99.5])
                ax.imshow(response, cmap="gray", vmin=low, vmax=high)
            ax.set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.set_axis_off()
    return figure


def parse_args(argv=None):
    from kcnn.models import CLASSIC_FILTERS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=FASHION_MNIST_DIR,
        help="folder with Fashion-MNIST's t10k IDX .gz files",
    )
    parser.add_argument("--index", type=int, default=0, help="Fashion-MNIST test item to filter")
    parser.add_argument(
        "--filters",
        nargs="+",
        default=list(CLASSIC_FILTERS),
        choices=CLASSIC_FILTERS,
        metavar="NAME",
        help=f"filters to apply (default: all of {', '.join(CLASSIC_FILTERS)})",
    )
    parser.add_argument(
        "--output-dir",
        default="results/classic_filters",
        help="where report.json and classic_filters.png are written",
    )
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    item, label = fashion_mnist_item(args.data_dir, args.index)
    images = [
        (f"fashion-mnist[{args.index}]: {label}", item),
        (PHOTO, sample_photo()),
    ]
    rows, report = [], {"filters": args.filters, "images": {}}
    for title, image in images:
        reference, keras_output = apply_filters(image, args.filters)
        difference = float(np.abs(reference - keras_output).max())
        report["images"][title] = {
            "shape": list(image.shape),
            "max_abs_difference_numpy_vs_keras": difference,
            "mean_abs_response": {
                name: float(np.abs(reference[..., i]).mean()) for i, name in enumerate(args.filters)
            },
        }
        print(
            f"{title} ({'x'.join(map(str, image.shape))}): {len(args.filters)} filters, "
            f"NumPy reference vs Keras Conv2D: max |difference| = {difference:.2e}"
        )
        rows.append((title, image, reference))
    from kcnn.files import write_json
    from kcnn.viz import save_figure

    figure_path = save_figure(
        plot_responses(rows, args.filters), os.path.join(args.output_dir, "classic_filters.png")
    )
    report_path = os.path.join(args.output_dir, "report.json")
    write_json(report_path, report)
    print(f"wrote {figure_path} and {report_path}")
    return report


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"classic_filters: error: {error}")
