"""Dataset loading: bundled digits, the offline MNIST-10k split, and plumbing tests of every format.

The plumbing tests write small synthetic files in each dataset's real on-disk format (IDX, gzip or
not; SVHN's MATLAB .mat; CIFAR-10's pickled batches) into tmp_path and prove that the loading code
reads them back exactly — where possible cross-checked against torchvision's own reader of the
same files. They never back an accuracy number. Nothing here downloads anything.
"""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from eqprop_core.data import (
    DATASETS,
    MNIST10K_TITLE,
    CorruptData,
    Dataset,
    DataUnavailable,
    data_root,
    load_dataset,
    main,
    read_idx,
    standardize_channels,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Label counts of the official MNIST test set (t10k-labels-idx1-ubyte), digits 0..9.
MNIST_T10K_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ---- writers of the real on-disk formats ------------------------------------------------------

def write_idx(path: Path, array: np.ndarray, *, gz: bool) -> Path:
    """IDX: magic 00 00 08 <ndim>, big-endian int32 dims, uint8 data; gzip-compressed if gz."""
    payload = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    payload += np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path = path.with_name(path.name + ".gz") if gz else path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload, compresslevel=1) if gz else payload)
    return path


def indexed_images(n: int, size: int, channels: int, seed: int) -> np.ndarray:
    """Random uint8 images (n, channels, size, size) whose first two pixels spell their index."""
    images = np.random.default_rng(seed).integers(0, 256, (n, channels, size, size), np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256
    images[:, 0, 0, 1] = np.arange(n) // 256
    return images


def image_indices(data: Dataset, x: torch.Tensor) -> np.ndarray:
    """Recover the written index of each loaded image (undoing the standardization)."""
    corner = pixels(data, x)[:, 0, 0, :2].astype(np.int64)
    return corner[:, 0] + 256 * corner[:, 1]


def pixels(data: Dataset, x: torch.Tensor) -> np.ndarray:
    """Loaded images back to uint8 pixel values: x·σ + μ in [0, 1], times 255."""
    mean = torch.tensor(data.channel_mean).view(1, -1, 1, 1)
    std = torch.tensor(data.channel_std).view(1, -1, 1, 1)
    return torch.round((x.double() * std + mean) * 255).numpy().astype(np.uint8)


def write_mnist_raw(folder: Path, split: str, n: int, *, gz: bool, seed: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """{split}-images-idx3-ubyte (n, 28, 28) and {split}-labels-idx1-ubyte (n,) into `folder`."""
    images = indexed_images(n, 28, 1, seed)[:, 0]
    labels = np.random.default_rng(seed + 1).integers(0, 10, n).astype(np.uint8)
    write_idx(folder / f"{split}-images-idx3-ubyte", images, gz=gz)
    write_idx(folder / f"{split}-labels-idx1-ubyte", labels, gz=gz)
    return images, labels


def write_svhn_mat(path: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """SVHN cropped digits: X (32, 32, 3, n) uint8 and y (n, 1) in 1..10 (10 is the digit 0)."""
    from scipy.io import savemat

    images = indexed_images(n, 32, 3, seed)  # (n, 3, 32, 32)
    digits = np.arange(n) % 10
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"X": images.transpose(2, 3, 1, 0),
                   "y": np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]})
    return images, digits


def write_cifar_batches(root: Path, per_batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta (pickled dicts, protocol 2)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    n = 6 * per_batch
    images = indexed_images(n, 32, 3, seed)
    labels = np.random.default_rng(seed).integers(0, 10, n)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        rows = slice(i * per_batch, (i + 1) * per_batch)
        batch = {"batch_label": name, "labels": labels[rows].tolist(),
                 "data": images[rows].reshape(per_batch, 3072),
                 "filenames": [f"img_{j}.png" for j in range(rows.start, rows.stop)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                            "horse", "ship", "truck"], "num_cases_per_batch": per_batch,
            "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return images, labels


# ---- digits (real, bundled) -------------------------------------------------------------------

def test_digits_shapes_and_train_normalization() -> None:
    data = load_dataset("digits")
    assert data.x_train.shape == (1437, 1, 8, 8) and data.x_test.shape == (360, 1, 8, 8)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.n_classes == 10 and data.n_features == 64 and data.image_shape == (1, 8, 8)
    assert set(data.y_train.tolist()) == set(range(10)) == set(data.y_test.tolist())
    assert abs(data.x_train.mean().item()) < 1e-5
    assert abs(data.x_train.std(correction=0).item() - 1.0) < 1e-5
    # Statistics are the train split's only: the test split is near, not exactly, standardized.
    assert abs(data.x_test.mean().item()) > 1e-6
    # Raw pixels are 0..16, scaled to [0, 1]: the mean pixel of digits is about 4.9/16.
    assert 0.25 < data.channel_mean[0] < 0.35


def test_digits_split_is_deterministic_in_the_seed() -> None:
    a, b, c = load_dataset("digits", seed=3), load_dataset("digits", seed=3), load_dataset(
        "digits", seed=4)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_train, c.y_train)
    assert a.x_train.shape == c.x_train.shape


def test_validation_split_subset_and_dtype() -> None:
    data = load_dataset("digits")
    val = data.validation_split(0.2, seed=1)
    assert val.x_train.shape[0] == 1437 - 287 and val.x_test.shape[0] == 287
    # Train and validation partition the original train split.
    assert torch.equal(torch.bincount(torch.cat([val.y_train, val.y_test]), minlength=10),
                       torch.bincount(data.y_train, minlength=10))
    assert torch.allclose(torch.cat([val.x_train, val.x_test]).sum(), data.x_train.sum())
    assert torch.equal(val.x_test, data.validation_split(0.2, seed=1).x_test)
    sub = data.subset(100, 50, seed=0)
    assert sub.x_train.shape[0] == 100 and sub.y_test.shape == (50,)
    assert torch.equal(sub.x_train, data.subset(100, 50, seed=0).x_train)
    assert data.to(torch.float64).x_train.dtype == torch.float64
    for bad in (lambda: data.validation_split(1.0, 0), lambda: data.subset(2000, 1, 0),
                lambda: data.to(torch.int64)):
        with pytest.raises(ValueError):
            bad()


# ---- the offline MNIST-10k split (real files) -------------------------------------------------

def test_mnist10k_offline_split() -> None:
    root = os.environ.get("EQPROP_DATA") or SHARED_DATA
    try:
        data = load_dataset("mnist10k", root)
    except DataUnavailable as missing:
        pytest.skip(str(missing))
    assert data.title == MNIST10K_TITLE
    assert data.x_train.shape == (8000, 1, 28, 28) and data.x_test.shape == (2000, 1, 28, 28)
    counts = torch.bincount(torch.cat([data.y_train, data.y_test]), minlength=10).tolist()
    assert counts == MNIST_T10K_LABEL_COUNTS
    assert abs(data.x_train.mean().item()) < 1e-5
    assert abs(data.channel_mean[0] - 0.1325) < 0.005  # MNIST's mean pixel intensity


# ---- plumbing: synthetic files in the real formats --------------------------------------------

@pytest.mark.parametrize("folder", ["mnist", "MNIST/raw"])
@pytest.mark.parametrize("gz", [True, False])
def test_mnist10k_reads_idx_files(tmp_path: Path, folder: str, gz: bool) -> None:
    images, labels = write_mnist_raw(tmp_path / folder, "t10k", 10_000, gz=gz, seed=0)
    data = load_dataset("mnist10k", tmp_path, seed=5)
    train, test = image_indices(data, data.x_train), image_indices(data, data.x_test)
    assert len(train) == 8000 and len(test) == 2000
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(10_000))
    assert np.array_equal(pixels(data, data.x_test)[:, 0], images[test])
    assert np.array_equal(data.y_train.numpy(), labels[train])


@pytest.mark.parametrize(("name", "folder", "torchvision_class"),
                         [("mnist", "MNIST", "MNIST"),
                          ("fashion_mnist", "FashionMNIST", "FashionMNIST")])
def test_full_idx_datasets_read_torchvision_layout(tmp_path: Path, name: str, folder: str,
                                                   torchvision_class: str) -> None:
    from torchvision import datasets

    raw = tmp_path / folder / "raw"
    train_images, train_labels = write_mnist_raw(raw, "train", 30, gz=False, seed=1)
    test_images, test_labels = write_mnist_raw(raw, "t10k", 12, gz=False, seed=2)
    data = load_dataset(name, tmp_path)
    assert data.x_train.shape == (30, 1, 28, 28) and data.x_test.shape == (12, 1, 28, 28)
    assert np.array_equal(pixels(data, data.x_train)[:, 0], train_images)
    assert np.array_equal(data.y_test.numpy(), test_labels)
    # torchvision's own reader (download=False) sees the same images in the same files.
    reference = getattr(datasets, torchvision_class)(tmp_path, train=False, download=False)
    assert np.array_equal(reference.data.numpy(), pixels(data, data.x_test)[:, 0])
    assert np.array_equal(reference.targets.numpy(), data.y_test.numpy())


def test_svhn_reads_mat_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision import datasets

    train_images, train_digits = write_svhn_mat(tmp_path / "svhn" / "train_32x32.mat", 20, 0)
    test_images, test_digits = write_svhn_mat(tmp_path / "svhn" / "test_32x32.mat", 15, 1)
    data = load_dataset("svhn", tmp_path)
    assert data.x_train.shape == (20, 3, 32, 32) and data.image_shape == (3, 32, 32)
    assert np.array_equal(pixels(data, data.x_train), train_images)
    assert np.array_equal(data.y_test.numpy(), test_digits)  # label 10 read as the digit 0
    assert len(data.channel_mean) == 3
    # torchvision's SVHN reads these files identically once its md5 check (of the published
    # files, which synthetic ones cannot pass) is bypassed.
    monkeypatch.setattr(datasets.SVHN, "_check_integrity", lambda self: True)
    reference = datasets.SVHN(tmp_path / "svhn", split="test", download=False)
    assert np.array_equal(reference.data, test_images)
    assert np.array_equal(reference.labels, data.y_test.numpy())


def test_cifar10_reads_pickled_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision import datasets

    images, labels = write_cifar_batches(tmp_path, per_batch=4, seed=0)
    data = load_dataset("cifar10", tmp_path)
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert np.array_equal(pixels(data, data.x_train), images[:20])
    assert np.array_equal(data.y_test.numpy(), labels[20:])
    monkeypatch.setattr(datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    reference = datasets.CIFAR10(tmp_path, train=True, download=False)
    assert np.array_equal(reference.data.transpose(0, 3, 1, 2), pixels(data, data.x_train))
    assert reference.targets == data.y_train.tolist()


# ---- missing and damaged data -----------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in DATASETS if n != "digits"])
def test_missing_data_names_the_fetch_command(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataUnavailable) as caught:
        load_dataset(name, tmp_path / "nowhere")
    message = str(caught.value)
    assert "\n" not in message
    assert f"python -m eqprop_core.data fetch {name} --root" in message
    assert caught.value.command in message and str(tmp_path / "nowhere") in caught.value.command


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    write_mnist_raw(tmp_path / "mnist", "t10k", 10_000, gz=True, seed=0)
    images = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    with pytest.raises(CorruptData, match="t10k-images-idx3-ubyte.gz.*gzip"):
        load_dataset("mnist10k", tmp_path)


def test_idx_defects_are_corrupt_data(tmp_path: Path) -> None:
    good = write_idx(tmp_path / "a-idx1-ubyte", np.arange(10, dtype=np.uint8), gz=False)
    assert read_idx(good).tolist() == list(range(10))
    wrong_magic = tmp_path / "magic-idx1-ubyte"
    wrong_magic.write_bytes(b"\x08\x03\x00\x00" + good.read_bytes()[4:])
    with pytest.raises(CorruptData, match="magic-idx1-ubyte: not an IDX file"):
        read_idx(wrong_magic)
    short = tmp_path / "short-idx1-ubyte"
    short.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(CorruptData, match="length 17 bytes, expected 18"):
        read_idx(short)
    long = tmp_path / "long-idx1-ubyte"
    long.write_bytes(good.read_bytes() + b"\x00")
    with pytest.raises(CorruptData, match="length 19 bytes, expected 18"):
        read_idx(long)


def test_label_defects_are_corrupt_data(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    write_mnist_raw(raw, "train", 8, gz=False, seed=0)
    write_mnist_raw(raw, "t10k", 6, gz=False, seed=1)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(5, np.uint8), gz=False)
    with pytest.raises(CorruptData, match="5 labels for 6 images"):
        load_dataset("mnist", tmp_path)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.full(6, 10, np.uint8), gz=False)
    with pytest.raises(CorruptData, match=r"t10k-labels-idx1-ubyte: labels out of range"):
        load_dataset("mnist", tmp_path)


def test_damaged_mat_and_pickle_are_corrupt_data(tmp_path: Path) -> None:
    svhn = tmp_path / "svhn"
    write_svhn_mat(svhn / "train_32x32.mat", 4, 0)
    (svhn / "test_32x32.mat").write_bytes((svhn / "train_32x32.mat").read_bytes()[:300])
    with pytest.raises(CorruptData, match="test_32x32.mat"):
        load_dataset("svhn", tmp_path)
    write_cifar_batches(tmp_path, per_batch=2, seed=0)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(CorruptData, match="data_batch_3: unreadable pickle"):
        load_dataset("cifar10", tmp_path)
    # A pickle that would call a function is refused, not executed.
    batch.write_bytes(b"\x80\x02cos\ngetcwd\n)R.")  # protocol 2: os.getcwd()
    with pytest.raises(CorruptData, match="refusing to load os.getcwd"):
        load_dataset("cifar10", tmp_path)


# ---- root, arguments, CLI ---------------------------------------------------------------------

def test_data_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EQPROP_DATA", str(tmp_path))
    assert data_root() == tmp_path and data_root("/elsewhere") == Path("/elsewhere")
    monkeypatch.delenv("EQPROP_DATA")
    assert data_root() == Path.home() / ".cache" / "eqprop-verify"


def test_bad_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="'nosuch'"):
        load_dataset("nosuch")
    x = torch.ones(4, 2, 3, 3)
    with pytest.raises(ValueError, match=r"channel\(s\) \[0, 1\]"):
        standardize_channels(x, x)


def test_cli_rejects_unknown_dataset_in_one_line() -> None:
    result = subprocess.run([sys.executable, "-m", "eqprop_core.data", "fetch", "nosuch"],
                            capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown dataset 'nosuch'" in result.stderr


def test_cli_help_and_fetch_plumbing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from torchvision import datasets

    for argv in (["--help"], ["fetch", "--help"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0
    assert "svhn" in capsys.readouterr().out

    calls: list[tuple[Path, str, bool]] = []

    def fake_svhn(root: Path, split: str, download: bool) -> None:  # stands in for the download
        calls.append((Path(root), split, download))
        write_svhn_mat(Path(root) / f"{split}_32x32.mat", 3, len(calls))

    monkeypatch.setattr(datasets, "SVHN", fake_svhn)
    assert main(["fetch", "svhn", "--root", str(tmp_path)]) == 0
    assert calls == [(tmp_path / "svhn", "train", True), (tmp_path / "svhn", "test", True)]
    assert "SVHN" in capsys.readouterr().out

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried a mirror")

    monkeypatch.setattr(datasets, "MNIST", offline)
    assert main(["fetch", "mnist", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fetching mnist" in err and str(tmp_path) in err
