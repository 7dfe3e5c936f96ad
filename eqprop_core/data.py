"""Image-classification datasets as tensors: x (N, C, H, W) float32, y (N,) int64 class indices.

Standard normalization, per channel c, with statistics of the TRAIN split only:

    x̃[n, c] = (x[n, c] − μ_c) / σ_c,   μ_c = mean over (n, h, w) of x_train[:, c],
                                        σ_c = population std over (n, h, w) of x_train[:, c],

applied to the train and the test split alike, so nothing about the test images leaks into the
inputs the model is trained on.

Datasets (`load_dataset(name, root)`):

- "digits": scikit-learn's bundled 8×8 handwritten digits (1,797 images, pixel values 0–16),
  always available offline; fixed-seed split 1,437 train / 360 test (80/20).
- "mnist10k": the official MNIST test set only (t10k IDX files, 10,000 images of 28×28); fixed-seed
  split 8,000 train / 2,000 test, reported as the "MNIST-10k split" — never as the MNIST benchmark.
- "mnist", "fashion_mnist", "svhn", "cifar10": the full datasets with their official train/test
  splits, in torchvision's on-disk layout under the data root.

Data root: the `root` argument, else $EQPROP_DATA, else ~/.cache/eqprop-verify. Missing files raise
`DataUnavailable`, a one-line message carrying the exact command that obtains them
(`python -m eqprop_core.data fetch NAME --root ROOT`, which calls torchvision with
download=True). Damaged files raise `CorruptData` naming the file and the defect.

The files are read here, by small format readers (IDX, SVHN's MATLAB .mat, CIFAR's pickled
batches), not by torchvision's dataset classes: torchvision's SVHN and CIFAR10 refuse any file
whose md5 differs from the published one and MNIST reads only uncompressed files, each with a
generic RuntimeError. Reading the formats directly gives errors that name the file and its defect,
reads .gz and uncompressed IDX alike, and lets plumbing tests feed small synthetic files in the
real formats through the very code that reads the real data. torchvision is used only by `fetch`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import math
import os
import pickle
import shlex
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DATASETS",
    "CorruptData",
    "DataUnavailable",
    "Dataset",
    "MNIST10K_TITLE",
    "data_root",
    "fetch",
    "fetch_command",
    "load_dataset",
    "main",
    "read_idx",
    "standardize_channels",
]

DATASETS: tuple[str, ...] = ("digits", "mnist10k", "mnist", "fashion_mnist", "svhn", "cifar10")
ENV_VAR = "EQPROP_DATA"
DEFAULT_ROOT = Path("~/.cache/eqprop-verify")
MNIST10K_TITLE = "MNIST-10k split (8,000 train / 2,000 test of the official MNIST test set)"
MNIST10K_TRAIN = 8000
DIGITS_TEST_FRACTION = 0.2


class DataUnavailable(Exception):
    """The files of a dataset are not under the data root; `.command` obtains them."""

    def __init__(self, name: str, root: Path, missing: Path | str) -> None:
        self.name = name
        self.root = root
        self.command = fetch_command(name, root)
        super().__init__(f"{name} not found under {root} (missing {missing}); obtain it with: "
                         f"{self.command}")


class CorruptData(ValueError):
    """A dataset file exists but cannot be what it claims to be; the message names the file."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {problem}")


def fetch_command(name: str, root: Path | str) -> str:
    """The shell command that downloads dataset `name` into `root`."""
    return f"python -m eqprop_core.data fetch {name} --root {shlex.quote(str(root))}"


def data_root(root: Path | str | None = None) -> Path:
    """Data root: `root` if given, else $EQPROP_DATA if set and non-empty, else the user cache."""
    if root is None:
        root = os.environ.get(ENV_VAR) or DEFAULT_ROOT
    return Path(root).expanduser()


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset split into train and test tensors, already normalized.

    x_train (N, C, H, W) float, y_train (N,) int64 in [0, n_classes); x_test, y_test likewise.
    `channel_mean` / `channel_std` are the train statistics the normalization used (μ_c, σ_c) and
    `files` the paths the data was read from (empty for bundled data).
    """

    name: str
    title: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    n_classes: int
    channel_mean: tuple[float, ...] = ()
    channel_std: tuple[float, ...] = ()
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train),
                            ("test", self.x_test, self.y_test)):
            if x.ndim != 4:
                raise ValueError(f"{self.name}: x_{split} must be (N, C, H, W), "
                                 f"got {tuple(x.shape)}")
            if y.shape != (x.shape[0],):
                raise ValueError(f"{self.name}: y_{split} has shape {tuple(y.shape)}, "
                                 f"expected ({x.shape[0]},)")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"{self.name}: train images {tuple(self.x_train.shape[1:])} and test "
                             f"images {tuple(self.x_test.shape[1:])} differ in shape")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def n_features(self) -> int:
        """C·H·W: the length of a flattened image (the model's n_in)."""
        return math.prod(self.image_shape)

    def validation_split(self, fraction: float, seed: int) -> Dataset:
        """Carve round(fraction·N_train) train samples out as a validation set (fixed seed).

        Returns a Dataset whose train part is the rest of train and whose TEST part is the
        validation set; the original test split is not in it. The normalization is kept (its
        statistics came from the whole train split, which contains the validation samples).
        """
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"validation fraction must lie in (0, 1), got {fraction!r}")
        n = self.x_train.shape[0]
        n_val = round(fraction * n)
        if not 0 < n_val < n:
            raise ValueError(f"validation fraction {fraction!r} of {n} train samples leaves an "
                             f"empty part ({n_val} validation)")
        keep, val = _split_indices(n, n_val, seed)
        return dataclasses.replace(
            self,
            title=f"{self.title}, validation split ({n - n_val:,} train / {n_val:,} validation, "
                  f"seed {seed})",
            x_train=self.x_train[keep], y_train=self.y_train[keep],
            x_test=self.x_train[val], y_test=self.y_train[val],
        )

    def subset(self, n_train: int, n_test: int, seed: int) -> Dataset:
        """Fixed-seed random subsets of n_train train and n_test test samples (no replacement)."""
        for split, k, x in (("n_train", n_train, self.x_train), ("n_test", n_test, self.x_test)):
            if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= x.shape[0]:
                raise ValueError(f"{split} must be an integer in [1, {x.shape[0]}], got {k!r}")
        generator = torch.Generator().manual_seed(seed)
        train = torch.randperm(self.x_train.shape[0], generator=generator)[:n_train].sort().values
        test = torch.randperm(self.x_test.shape[0], generator=generator)[:n_test].sort().values
        return dataclasses.replace(
            self,
            title=f"{self.title}, subset {n_train:,} train / {n_test:,} test (seed {seed})",
            x_train=self.x_train[train], y_train=self.y_train[train],
            x_test=self.x_test[test], y_test=self.y_test[test],
        )

    def to(self, dtype: torch.dtype | None = None,
           device: torch.device | str | None = None) -> Dataset:
        """The same data with images cast to `dtype` and all tensors moved to `device`."""
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"images must stay floating point, got dtype {dtype}")
        return dataclasses.replace(
            self,
            x_train=self.x_train.to(device=device, dtype=dtype),
            x_test=self.x_test.to(device=device, dtype=dtype),
            y_train=self.y_train.to(device=device),
            y_test=self.y_test.to(device=device),
        )


def load_dataset(name: str, root: Path | str | None = None, *, seed: int = 0) -> Dataset:
    """Load dataset `name` (one of DATASETS) from the data root, normalized by train statistics.

    `seed` fixes the train/test split of "digits" and "mnist10k" (same seed ⇒ identical
    tensors); the other datasets have official splits and ignore it.
    Raises DataUnavailable (files absent, with the fetch command) or CorruptData (bad files).
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return _LOADERS[name](data_root(root), seed)


def standardize_channels(x_train: Tensor, x_test: Tensor
                         ) -> tuple[Tensor, Tensor, tuple[float, ...], tuple[float, ...]]:
    """x̃ = (x − μ_c)/σ_c per channel c, with μ_c, σ_c (population) from x_train (N, C, H, W) only.

    Returns (x̃_train, x̃_test, μ, σ). A channel constant over the train split has σ_c = 0 and
    no standardization; that is a ValueError, not a silent division by zero.
    """
    mean = x_train.mean(dim=(0, 2, 3), dtype=torch.float64)
    std = x_train.to(torch.float64).std(dim=(0, 2, 3), correction=0)
    if bool((std == 0).any()):
        raise ValueError(f"channel(s) {std.eq(0).nonzero().flatten().tolist()} are constant over "
                         "the train split: per-channel standardization is undefined")
    shift = mean.to(x_train.dtype).view(1, -1, 1, 1)
    scale = std.to(x_train.dtype).view(1, -1, 1, 1)
    return ((x_train - shift) / scale, (x_test - shift) / scale,
            tuple(mean.tolist()), tuple(std.tolist()))


# ---- fixed-seed splits and assembly ----------------------------------------------------------

def _split_indices(n: int, n_second: int, seed: int) -> tuple[Tensor, Tensor]:
    """A random partition of range(n) into n − n_second and n_second indices (each sorted)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_second:].sort().values, perm[:n_second].sort().values


def _assemble(name: str, title: str, x_train: np.ndarray, y_train: np.ndarray,
              x_test: np.ndarray, y_test: np.ndarray, *, scale: float, n_classes: int,
              files: Sequence[Path] = ()) -> Dataset:
    """Images (N, C, H, W) of raw values in [0, scale] → float32 in [0, 1] → train-standardized."""
    xtr = torch.from_numpy(np.ascontiguousarray(x_train)).to(torch.float32) / scale
    xte = torch.from_numpy(np.ascontiguousarray(x_test)).to(torch.float32) / scale
    xtr, xte, mean, std = standardize_channels(xtr, xte)
    return Dataset(
        name=name, title=title,
        x_train=xtr, y_train=torch.from_numpy(np.asarray(y_train, dtype=np.int64)),
        x_test=xte, y_test=torch.from_numpy(np.asarray(y_test, dtype=np.int64)),
        n_classes=n_classes, channel_mean=mean, channel_std=std,
        files=tuple(str(f) for f in files),
    )


def _check_labels(path: Path, labels: np.ndarray, n_images: int, n_classes: int) -> None:
    if labels.shape[0] != n_images:
        raise CorruptData(path, f"{labels.shape[0]} labels for {n_images} images")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise CorruptData(path, f"labels out of range [0, {n_classes}): found "
                                f"{int(labels.min())}..{int(labels.max())}")


# ---- IDX (MNIST, Fashion-MNIST) ---------------------------------------------------------------

# IDX type code → big-endian numpy dtype (LeCun's format: 0x08 ubyte … 0x0E double).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    """File contents, gunzipped when the file starts with the gzip magic 1f 8b."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptData(path, f"bad gzip stream ({error})") from error


def read_idx(path: Path | str) -> np.ndarray:
    """The array stored in an IDX file (gzip or not): magic 0 0 <type> <ndim>, dims, data.

    The header is 4 + 4·ndim bytes (big-endian int32 dims); the data must be exactly
    prod(dims)·itemsize bytes after it. Anything else is CorruptData naming the file.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _IDX_DTYPES:
        raise CorruptData(path, f"not an IDX file (magic {data[:4].hex() or 'missing'})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptData(path, f"truncated header: {len(data)} bytes, expected {header}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        raise CorruptData(path, f"length {len(data)} bytes, expected {expected} for "
                                f"{dtype.name} array of shape {dims}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def _find_idx(name: str, root: Path, directories: Sequence[Path], stems: Sequence[str]
              ) -> list[Path]:
    """The first directory holding every `stem` (as STEM or STEM.gz) → their paths."""
    for directory in directories:
        found = [next((p for p in (directory / s, directory / f"{s}.gz") if p.is_file()), None)
                 for s in stems]
        if all(p is not None for p in found):
            return [p for p in found if p is not None]
    raise DataUnavailable(name, root, f"{', '.join(stems)} (.gz or not) in "
                                      f"{' or '.join(str(d) for d in directories)}")


def _read_idx_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """28×28 uint8 images (N, 1, 28, 28) and labels (N,) in 0..9 from an IDX image/label pair."""
    images = read_idx(images_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise CorruptData(images_path, f"expected uint8 images (N, 28, 28), got {images.dtype} "
                                       f"{images.shape}")
    labels = read_idx(labels_path)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise CorruptData(labels_path, f"expected uint8 labels (N,), got {labels.dtype} "
                                       f"{labels.shape}")
    _check_labels(labels_path, labels, images.shape[0], 10)
    return images[:, None], labels


def _load_mnist10k(root: Path, seed: int) -> Dataset:
    images_path, labels_path = _find_idx(
        "mnist10k", root, [root / "mnist", root / "MNIST" / "raw"],
        ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
    images, labels = _read_idx_split(images_path, labels_path)
    if images.shape[0] != 10_000:
        raise CorruptData(images_path, f"{images.shape[0]} images, the MNIST test set has 10,000")
    train, test = _split_indices(images.shape[0], images.shape[0] - MNIST10K_TRAIN, seed)
    return _assemble("mnist10k", MNIST10K_TITLE, images[train.numpy()], labels[train.numpy()],
                     images[test.numpy()], labels[test.numpy()], scale=255.0, n_classes=10,
                     files=(images_path, labels_path))


def _idx_loader(name: str, folder: str, label: str) -> Callable[[Path, int], Dataset]:
    """Loader of a full IDX dataset (official train/test) in torchvision's ROOT/<folder>/raw."""

    def load(root: Path, seed: int) -> Dataset:
        paths = _find_idx(name, root, [root / folder / "raw", root / name],
                          ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
        x_train, y_train = _read_idx_split(paths[0], paths[1])
        x_test, y_test = _read_idx_split(paths[2], paths[3])
        return _assemble(name, f"{label} ({len(y_train):,} train / {len(y_test):,} test)",
                         x_train, y_train, x_test, y_test, scale=255.0, n_classes=10, files=paths)

    return load


# ---- SVHN (MATLAB .mat) -----------------------------------------------------------------------

def _read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN cropped digits: X (32, 32, 3, N) uint8 → (N, 3, 32, 32); y (N, 1) in 1..10, 10 ↦ 0."""
    from scipy.io import loadmat  # scipy is a dependency; imported late to keep imports light

    try:
        mat = loadmat(path, variable_names=("X", "y"))
    except Exception as error:  # scipy raises ValueError, TypeError, OSError… on damaged files
        raise CorruptData(path, f"unreadable MATLAB file ({type(error).__name__}: {error})"
                          ) from error
    if "X" not in mat or "y" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise CorruptData(path, f"variables X and y expected, found {found}")
    x, y = mat["X"], mat["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise CorruptData(path, f"X must be uint8 (32, 32, 3, N), got {x.dtype} {x.shape}")
    y = np.asarray(y).reshape(-1).astype(np.int64)
    if y.size and (y.min() < 1 or y.max() > 10):
        raise CorruptData(path, f"labels out of range 1..10: found {y.min()}..{y.max()}")
    labels = np.where(y == 10, 0, y)
    _check_labels(path, labels, x.shape[3], 10)
    return x.transpose(3, 2, 0, 1), labels


def _load_svhn(root: Path, seed: int) -> Dataset:
    for directory in (root / "svhn", root):
        train, test = directory / "train_32x32.mat", directory / "test_32x32.mat"
        if train.is_file() and test.is_file():
            break
    else:
        raise DataUnavailable("svhn", root, root / "svhn" / "{train,test}_32x32.mat")
    x_train, y_train = _read_svhn_mat(train)
    x_test, y_test = _read_svhn_mat(test)
    return _assemble("svhn", f"SVHN cropped digits ({len(y_train):,} train / {len(y_test):,} test)",
                     x_train, y_train, x_test, y_test, scale=255.0, n_classes=10,
                     files=(train, test))


# ---- CIFAR-10 (pickled batches) ---------------------------------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and nothing else (a data file must not run code)."""

    _ALLOWED = {("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        # numpy 2 renamed numpy.core to numpy._core; old pickles (CIFAR's) name the old module.
        return super().find_class(module.replace("numpy.core.", "numpy._core."), name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch: dict with data (N, 3072) uint8 (R, G, B planes of 32×32) and labels."""
    try:
        with path.open("rb") as f:
            entry = _ArrayUnpickler(f, encoding="latin1").load()
    except Exception as error:  # truncated or foreign pickles raise many types
        raise CorruptData(path, f"unreadable pickle ({type(error).__name__}: {error})"
                          ) from error
    if not isinstance(entry, dict):
        raise CorruptData(path, f"expected a dict batch, got {type(entry).__name__}")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    if "data" not in entry or "labels" not in entry:
        raise CorruptData(path, f"keys data and labels expected, found {sorted(entry)}")
    data = np.asarray(entry["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CorruptData(path, f"data must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    labels = np.asarray(entry["labels"], dtype=np.int64).reshape(-1)
    _check_labels(path, labels, data.shape[0], 10)
    return data.reshape(-1, 3, 32, 32), labels


def _load_cifar10(root: Path, seed: int) -> Dataset:
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    paths = [folder / n for n in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataUnavailable("cifar10", root, ", ".join(map(str, missing)))
    batches = [_read_cifar_batch(p) for p in paths]
    x_train = np.concatenate([b[0] for b in batches[:5]])
    y_train = np.concatenate([b[1] for b in batches[:5]])
    x_test, y_test = batches[5]
    return _assemble("cifar10", f"CIFAR-10 ({len(y_train):,} train / {len(y_test):,} test)",
                     x_train, y_train, x_test, y_test, scale=255.0, n_classes=10, files=paths)


# ---- scikit-learn digits ----------------------------------------------------------------------

def _load_digits(root: Path, seed: int) -> Dataset:
    from sklearn.datasets import load_digits  # bundled with scikit-learn; slow to import

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)[:, None]  # (1797, 1, 8, 8), values 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    n_test = math.ceil(DIGITS_TEST_FRACTION * len(labels))  # 360, as sklearn's train_test_split
    train, test = _split_indices(len(labels), n_test, seed)
    return _assemble(
        "digits",
        f"scikit-learn digits (8×8; {len(labels) - n_test:,} train / {n_test:,} test, seed {seed})",
        images[train.numpy()], labels[train.numpy()], images[test.numpy()], labels[test.numpy()],
        scale=16.0, n_classes=10)


_LOADERS: dict[str, Callable[[Path, int], Dataset]] = {
    "digits": _load_digits,
    "mnist10k": _load_mnist10k,
    "mnist": _idx_loader("mnist", "MNIST", "MNIST"),
    "fashion_mnist": _idx_loader("fashion_mnist", "FashionMNIST", "Fashion-MNIST"),
    "svhn": _load_svhn,
    "cifar10": _load_cifar10,
}


# ---- download (the only use of torchvision) ---------------------------------------------------

def fetch(name: str, root: Path | str | None = None) -> Dataset:
    """Download dataset `name` into the data root with torchvision (download=True), then load it.

    Layout written (what the loaders read): MNIST/raw, FashionMNIST/raw, svhn/*_32x32.mat,
    cifar-10-batches-py. "mnist10k" downloads MNIST (its t10k files land in MNIST/raw).
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    path = data_root(root)
    if name != "digits":
        from torchvision import datasets

        if name in ("mnist", "mnist10k"):
            datasets.MNIST(path, train=True, download=True)
        elif name == "fashion_mnist":
            datasets.FashionMNIST(path, train=True, download=True)
        elif name == "svhn":
            for split in ("train", "test"):
                datasets.SVHN(path / "svhn", split=split, download=True)
        else:
            datasets.CIFAR10(path, train=True, download=True)
    return load_dataset(name, path)


def main(argv: Sequence[str] | None = None, prog: str = "python -m eqprop_core.data") -> int:
    """`python -m eqprop_core.data fetch NAME [--root ROOT]`: download a dataset; exit status."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Datasets of eqprop-verify. Data root: --root, else $EQPROP_DATA, "
                    f"else {DEFAULT_ROOT}.")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_parser = commands.add_parser(
        "fetch", help="download a dataset with torchvision (needs internet)",
        description=f"Download a dataset with torchvision. Names: {', '.join(DATASETS)}.")
    fetch_parser.add_argument("name", help=f"one of {', '.join(DATASETS)}")
    fetch_parser.add_argument("--root", default=None, help="data root (default: $EQPROP_DATA)")
    args = parser.parse_args(argv)
    if args.name not in _LOADERS:
        # One line, not argparse's usage block: scripts grep this.
        print(f"error: unknown dataset {args.name!r}; choose from {', '.join(DATASETS)}",
              file=sys.stderr)
        return 2
    try:
        data = fetch(args.name, args.root)
    except Exception as error:  # offline, checksum mismatch, disk full: one line, not a trace
        message = " ".join(str(error).split())
        print(f"error: fetching {args.name} into {data_root(args.root)} failed: "
              f"{type(error).__name__}: {message}", file=sys.stderr)
        return 1
    print(f"{data.name}: {data.title}, images {data.image_shape}, under {data_root(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
