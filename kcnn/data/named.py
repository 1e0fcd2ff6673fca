"""The named datasets -- Fashion-MNIST, MNIST, CIFAR-10, CIFAR-100 -- found on disk first, then
downloaded with ``keras.datasets`` when the network is there.

Where they are looked for, in order: ``data_dir``, ``$KCNN_DATA_DIR``, the Keras cache
(``$KERAS_HOME/datasets``, by default ``~/.keras/datasets``, where ``keras.datasets`` keeps what
it downloaded) and system folders such as Debian's ``/usr/share/datasets/fashion-mnist``
(package ``dataset-fashion-mnist``). Each dataset is read in the formats it is distributed in:
IDX (``.gz`` or not) and Keras's ``mnist.npz`` for the MNISTs; the Python pickles of CIFAR,
extracted or still in their ``.tar.gz``. Pickles are read with an unpickler that accepts only
NumPy arrays, so a file dropped in a data folder cannot run code.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pickle
import tarfile

import numpy as np

from kcnn.data.idx import read_idx

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
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# The fine labels of CIFAR-100 in label order (the `fine_label_names` of its `meta` file).
CIFAR100_CLASSES = tuple(
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo "
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse "
    "mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy "
    "porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper "
    "snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
    "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm".split()
)

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR100_FILES = ("train", "test")
_NUMPY_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)


@dataclasses.dataclass(frozen=True)
class NamedDataset:
    """How one named dataset is found and read.

    Attributes:
        name: the name `kcnn.data.load` takes.
        title: the name people know it by, for messages.
        class_names: the class names in label order.
        folders: sub-folders of each search root that may hold the files.
        wanted: a sentence saying which files to put in those folders.
        debian_package: the Debian/Ubuntu package that installs the files, if there is one.
        system_folders: folders a system package installs the files in.
    """

    name: str
    title: str
    class_names: tuple
    folders: tuple
    wanted: str
    debian_package: str | None = None
    system_folders: tuple = ()


NAMED_DATASETS = {
    spec.name: spec
    for spec in (
        NamedDataset(
            "fashion_mnist",
            "Fashion-MNIST",
            FASHION_MNIST_CLASSES,
            ("fashion-mnist", "fashion_mnist"),
            "the four IDX files " + ", ".join(f + ".gz" for f in IDX_FILES),
            debian_package="dataset-fashion-mnist",
            system_folders=("/usr/share/datasets/fashion-mnist",),
        ),
        NamedDataset(
            "mnist",
            "MNIST",
            MNIST_CLASSES,
            ("mnist",),
            "Keras's mnist.npz, or the four IDX files " + ", ".join(f + ".gz" for f in IDX_FILES),
            system_folders=("/usr/share/datasets/mnist",),
        ),
        NamedDataset(
            "cifar10",
            "CIFAR-10",
            CIFAR10_CLASSES,
            ("cifar-10-batches-py", "cifar-10-batches-py-target/cifar-10-batches-py", "cifar10"),
            "cifar-10-python.tar.gz, or the folder cifar-10-batches-py extracted from it",
        ),
        NamedDataset(
            "cifar100",
            "CIFAR-100",
            CIFAR100_CLASSES,
            ("cifar-100-python", "cifar-100-python-target/cifar-100-python", "cifar100"),
            "cifar-100-python.tar.gz, or the folder cifar-100-python extracted from it",
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class RawDataset:
    """A named dataset's arrays: uint8 images ``(N, H, W, C)`` and int64 labels ``(N,)``."""

    train: tuple
    test: tuple
    source: str


def search_folders(spec: NamedDataset, data_dir=None) -> list[tuple[str, bool]]:
    """The folders searched for ``spec``'s files, in order (they need not exist).

    Returns:
        ``(folder, own)`` pairs: ``own`` is true for a folder meant for this dataset alone
        (``data_dir``, ``$KCNN_DATA_DIR/fashion-mnist``...), where any of its file layouts is
        accepted; a shared root (``~/.keras/datasets``) is searched only for files whose names
        say which dataset they are (``mnist.npz``, ``cifar-10-python.tar.gz``).
    """
    roots = [os.fspath(data_dir)] if data_dir is not None else []
    if os.environ.get("KCNN_DATA_DIR"):
        roots.append(os.environ["KCNN_DATA_DIR"])
    roots.append(os.path.join(keras_home(), "datasets"))
    folders = [(os.fspath(data_dir), True)] if data_dir is not None else []
    for root in roots:
        folders.append((root, False))
        folders += [(os.path.join(root, sub), True) for sub in spec.folders]
    folders += [(folder, True) for folder in spec.system_folders]
    seen, unique = set(), []
    for folder, own in folders:
        folder = os.path.normpath(folder)
        if (folder, own) not in seen and (folder, True) not in seen:
            seen.add((folder, own))
            unique.append((folder, own))
    return unique


def keras_home() -> str:
    """Where Keras keeps its cache: ``$KERAS_HOME``, else ``~/.keras``."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def load_named(name: str, data_dir=None, download: bool = True) -> RawDataset:
    """Read a named dataset from the first folder that has it, else download it with Keras.

    Args:
        name: a key of `NAMED_DATASETS`.
        data_dir: a folder to search first.
        download: whether to try ``keras.datasets`` when no folder has the files.

    Returns:
        The train and test arrays and where they came from.

    Raises:
        FileNotFoundError: when the files are nowhere and cannot be downloaded; the message
            lists the folders searched, the files to put there and the package to install.
        ValueError: naming the file, when a file is there but is corrupt or inconsistent.
    """
    spec = NAMED_DATASETS[name]
    incomplete = []
    for folder, own in search_folders(spec, data_dir):
        found, missing = _locate(name, folder, own)
        if found is not None:
            return _read_cached(name, folder, own, _modification_times(found))
        if missing:
            incomplete.append(f"{folder} (missing {', '.join(missing)})")
    download_error = "download=False"
    if download:
        try:
            return _download(name)
        except Exception as error:  # keras.datasets raises a bare Exception on a failed fetch
            download_error = f"{type(error).__name__}: {error}"
    raise FileNotFoundError(_missing_message(spec, data_dir, incomplete, download_error))


def _missing_message(spec, data_dir, incomplete, download_error) -> str:
    places = ["data_dir=..."] if data_dir is None else [os.fspath(data_dir)]
    places += [
        os.path.join("$KCNN_DATA_DIR", spec.folders[0]),
        os.path.join(keras_home(), "datasets", spec.folders[0]),
    ]
    message = (
        f"{spec.title} was not found and could not be downloaded ({download_error}). "
        f"Put {spec.wanted} in one of: {', '.join(places)}"
    )
    if spec.debian_package:
        message += f"; or, on Debian/Ubuntu, install them: apt-get install {spec.debian_package}"
    if incomplete:
        message += f". Incomplete copies: {'; '.join(incomplete)}"
    searched = ", ".join(folder for folder, _ in search_folders(spec, data_dir))
    return message + f". Searched: {searched}"


def _locate(name: str, folder: str, own: bool) -> tuple:
    """The files of dataset ``name`` in ``folder`` (a dict), or ``None`` and what is missing.

    In a shared root (``own`` false) only the files named after the dataset count.
    """
    if not os.path.isdir(folder):
        return None, []
    if name in ("fashion_mnist", "mnist"):
        if name == "mnist" and os.path.isfile(os.path.join(folder, "mnist.npz")):
            return {"npz": os.path.join(folder, "mnist.npz")}, []
        return _locate_idx(folder) if own else (None, [])
    archive_name, inner, wanted = (
        ("cifar-10-python.tar.gz", "cifar-10-batches-py", CIFAR10_FILES)
        if name == "cifar10"
        else ("cifar-100-python.tar.gz", "cifar-100-python", CIFAR100_FILES)
    )
    if os.path.isfile(os.path.join(folder, archive_name)):
        return {"archive": os.path.join(folder, archive_name), "inner": inner, "files": wanted}, []
    if not own:
        return None, []
    present = [f for f in wanted if os.path.isfile(os.path.join(folder, f))]
    if len(present) == len(wanted):
        return {"folder": folder, "files": wanted}, []
    return None, [f for f in wanted if f not in present] if present else []


def _locate_idx(folder: str) -> tuple:
    paths, missing = {}, []
    for stem in IDX_FILES:
        for candidate in (stem + ".gz", stem):
            if os.path.isfile(os.path.join(folder, candidate)):
                paths[stem] = os.path.join(folder, candidate)
                break
        else:
            missing.append(stem + ".gz")
    if missing:
        return None, missing if paths else []
    return {"idx": paths}, []


def _modification_times(found: dict) -> tuple:
    paths = [found.get("npz"), found.get("archive")] + list(found.get("idx", {}).values())
    if "folder" in found:
        paths += [os.path.join(found["folder"], f) for f in found["files"]]
    return tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in paths if p)


@functools.lru_cache(maxsize=2)
def _read_cached(name: str, folder: str, own: bool, modification_times) -> RawDataset:
    """`_read`, remembered for the last two datasets read (keyed on the files' sizes and
    modification times), so loading train, validation and test reads the files once."""
    found, _ = _locate(name, folder, own)
    return _read(name, found)


def _read(name: str, found: dict) -> RawDataset:
    if "npz" in found:
        return _read_npz(found["npz"])
    if "idx" in found:
        paths = found["idx"]
        train = _idx_pair(paths[IDX_FILES[0]], paths[IDX_FILES[1]])
        test = _idx_pair(paths[IDX_FILES[2]], paths[IDX_FILES[3]])
        return _frozen(train, test, os.path.dirname(paths[IDX_FILES[0]]))
    label_key = b"labels" if name == "cifar10" else b"fine_labels"
    if "archive" in found:
        batches = _cifar_archive_batches(found["archive"], found["inner"], found["files"])
        source = found["archive"]
    else:
        batches = {f: _unpickle(os.path.join(found["folder"], f)) for f in found["files"]}
        source = found["folder"]
    parts = [_cifar_arrays(batches[f], label_key, f) for f in found["files"]]
    train = tuple(np.concatenate(arrays) for arrays in zip(*parts[:-1]))
    return _frozen(train, parts[-1], source)


def _frozen(train, test, source) -> RawDataset:
    for array in (*train, *test):
        array.flags.writeable = False
    return RawDataset(train=train, test=test, source=source)


def _idx_pair(images_path: str, labels_path: str) -> tuple:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{images_path!r} should hold uint8 images (N, height, width), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"{labels_path!r} holds {labels.shape} labels for the {len(images)} images of "
            f"{images_path!r}"
        )
    return images[..., np.newaxis], labels.astype(np.int64)


def _read_npz(path: str) -> RawDataset:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path!r} is not a readable mnist.npz ({error})") from error
    train = (arrays["x_train"][..., np.newaxis], arrays["y_train"].astype(np.int64))
    test = (arrays["x_test"][..., np.newaxis], arrays["y_test"].astype(np.int64))
    return _frozen(train, test, path)


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and plain Python values, nothing that could run code."""

    def find_class(self, module, name):
        if (module, name) in _NUMPY_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def _unpickle(path_or_file, name=None) -> dict:
    name = name or path_or_file
    try:
        if isinstance(path_or_file, str):
            with open(path_or_file, "rb") as file:
                return _NumpyUnpickler(file, encoding="bytes").load()
        return _NumpyUnpickler(path_or_file, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise ValueError(f"{name!r} is not a readable CIFAR batch ({error})") from error


def _cifar_archive_batches(archive: str, inner: str, files) -> dict:
    batches = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for f in files:
                member = tar.extractfile(f"{inner}/{f}")
                if member is None:
                    raise KeyError(f)
                batches[f] = _unpickle(member, f"{archive}:{inner}/{f}")
    except (OSError, EOFError, KeyError, tarfile.TarError) as error:
        raise ValueError(f"{archive!r} is not a readable CIFAR archive ({error})") from error
    return batches


def _cifar_arrays(batch: dict, label_key: bytes, name: str) -> tuple:
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise ValueError(f"CIFAR batch {name!r} has no {label_key.decode()!r} or 'data' entry")
    data = np.asarray(batch[b"data"], np.uint8)
    labels = np.asarray(batch[label_key], np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(
            f"CIFAR batch {name!r} should hold (N, 3072) pixels and N labels, "
            f"got {data.shape} and {labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _download(name: str) -> RawDataset:
    import keras

    module = getattr(keras.datasets, name)
    arguments = {"label_mode": "fine"} if name == "cifar100" else {}
    (x_train, y_train), (x_test, y_test) = module.load_data(**arguments)
    if x_train.ndim == 3:
        x_train, x_test = x_train[..., np.newaxis], x_test[..., np.newaxis]
    train = (np.asarray(x_train, np.uint8), np.asarray(y_train, np.int64).reshape(-1))
    test = (np.asarray(x_test, np.uint8), np.asarray(y_test, np.int64).reshape(-1))
    return _frozen(train, test, f"keras.datasets.{name} ({os.path.join(keras_home(), 'datasets')})")
