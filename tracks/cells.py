"""One training run of a dataset benchmark (tracks 25–28) as a pure task: `run_cell(spec)`.

A cell is an arm (variant × SN mode) trained from one seed at one learning rate, for one of
three roles: `rate` (on the train subset less its validation split, scored on that split, to
choose the arm's rate), `seed` (on the whole train subset, evaluated on the test subset) and
`control` (as `seed`, with the training labels permuted). `run_cell` loads the data itself (so
a Ray worker on another node needs only the data root), checks that it is the data the driver
measured (`DataIdentity.digest`), trains, and returns a small JSON-able record: accuracy,
per-epoch history, outcome, scipy σ and L, raw σ, converged share, wall time and a digest of
the initial raw parameters (the matched-initialization check compares digests). The track
assembles records; it never needs a model back.

Records are cached as `OUT/cells/track-NN/<key>.json`, the key a hash of the spec and of the
code a cell runs (`code_version`): rerunning a command computes only the missing cells.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from eqprop_core import LoopedMLP
from eqprop_core.data import Dataset, load_dataset
from eqprop_core.solvers import all_finite
from eqprop_core.train import EpochRecord, EqProp, TrainingRun, evaluate, train
from eqprop_core.variants import build
from properties.learning import raw_norm, spectrum_monitor
from tracks.records import atomic_write_text

GAMMA = 0.95
ROLES = ("rate", "seed", "control")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# The source a cell's result depends on: the models, training and data, the scipy measurements,
# this module. A change to any of them is a new code version (a cached record is not reused).
CODE = ("eqprop_core", "properties/learning.py", "theory", "tracks/cells.py")


@dataclass(frozen=True)
class DataIdentity:
    """The data every cell of a matrix trains on: the dataset's loader name, the subset sizes
    (None: the whole splits) and the sha256 of the subset's tensors as the driver loaded them."""

    name: str
    n_train: int | None
    n_test: int | None
    digest: str


@dataclass(frozen=True)
class CellSpec:
    """One training run. `permutation_seed` (role `control` only) seeds the label permutation;
    `root` is the data root the cell reads (not part of its identity: `data.digest` is)."""

    track: int
    role: str
    variant: str
    sn: str
    seed: int
    lr: float
    data: DataIdentity
    hidden: int
    epochs: int
    steps: tuple[int, int]
    batch_size: int
    validation: float
    permutation_seed: int | None = None
    device: str = "cpu"
    root: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"cell role {self.role!r}: choose one of {ROLES}")
        if (self.role == "control") != (self.permutation_seed is not None):
            raise ValueError("a permutation seed is given exactly for a control cell")

    def identity(self) -> dict[str, Any]:
        """The JSON of everything that determines the cell's result (as JSON reads it back)."""
        out = dataclasses.asdict(self)
        out.pop("root")
        return json.loads(json.dumps(out))

    def key(self) -> str:
        """sha256 (24 hex digits) of the identity and the code version."""
        text = json.dumps({"cell": self.identity(), "code": code_version()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def label(self) -> str:
        return f"{self.role} {self.variant}/{self.sn}/seed {self.seed}/lr {self.lr:g}"

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> CellSpec:
        values = dict(values)
        values["data"] = DataIdentity(**values["data"])
        values["steps"] = tuple(values["steps"])
        return cls(**values)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 over the source files a cell's result depends on (`CODE`) and the versions of
    torch, NumPy and scipy."""
    import numpy
    import scipy

    digest = hashlib.sha256(f"{torch.__version__} {numpy.__version__} {scipy.__version__}"
                            .encode())
    for entry in CODE:
        path = PACKAGE_ROOT / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(PACKAGE_ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def data_digest(data: Dataset) -> str:
    """sha256 of the title and the train / test tensors (their bytes, dtype and shape)."""
    digest = hashlib.sha256(data.title.encode())
    for tensor in (data.x_train, data.y_train, data.x_test, data.y_test):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def subset(data: Dataset, n_train: int | None, n_test: int | None) -> Dataset:
    """The benchmark's subset of a dataset loaded with split seed 0 (sizes capped at the
    splits'; None: the whole splits), drawn with seed 0."""
    if n_train is not None and n_test is not None:
        data = data.subset(min(n_train, data.x_train.shape[0]),
                           min(n_test, data.x_test.shape[0]), seed=0)
    return data


# The data a process's cells train on, by (identity, root): loaded and checked once per
# process, or handed over by the driver that loaded it (`remember_data`, the serial executor).
_DATA: dict[tuple[DataIdentity, str | None], Dataset] = {}


def remember_data(identity: DataIdentity, root: str | None, data: Dataset) -> None:
    """Let this process's cells use `data`, which the driver loaded and digested."""
    _DATA.clear()  # one matrix at a time: the previous one's data is not kept alive
    _DATA[identity, root] = data


def _cell_data(identity: DataIdentity, root: str | None) -> Dataset:
    if (identity, root) in _DATA:
        return _DATA[identity, root]
    data = subset(load_dataset(identity.name, root, seed=0), identity.n_train, identity.n_test)
    found = data_digest(data)
    if found != identity.digest:
        raise ValueError(
            f"the data of {identity.name} read here (root {root or 'the default'}) is not the "
            f"data the driver measured (sha256 {found[:12]} vs {identity.digest[:12]}): every "
            "node must see the same data root")
    remember_data(identity, root, data)
    return data


def parameter_digest(model: LoopedMLP) -> str:
    """sha256 of the raw parameters' names and bytes (the matched-initialization identity)."""
    digest = hashlib.sha256()
    for name, p in model.named_parameters():
        digest.update(name.encode())
        digest.update(p.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _scipy_spectrum(model: LoopedMLP) -> tuple[float | None, float | None]:
    """σ_max(W_dyn) and L by scipy on a CPU copy; None for a model with non-finite parameters."""
    cpu = copy.deepcopy(model).cpu()
    if not all_finite(*cpu.parameters()):
        return None, None
    spectrum = spectrum_monitor(cpu)
    return spectrum["sigma_scipy"], spectrum["lipschitz_scipy"]


def final_accuracy(model: LoopedMLP, rule: EqProp, data: Dataset, run: TrainingRun) -> float:
    """A completed run's last test accuracy; a diverged run's model is re-evaluated as it stands
    (its early history would flatter it)."""
    if run.outcome == "completed":
        return run.final_test_accuracy
    return evaluate(model, rule, data.x_test, data.y_test).accuracy


def run_cell(spec: CellSpec | dict[str, Any]) -> dict[str, Any]:
    """Train the cell and return its record (JSON-able; JSON round-trips it exactly). One torch
    thread, whatever the executor: a cell's floating-point result does not depend on where it
    ran. A diverged run is a recorded outcome, not an error."""
    spec = CellSpec.from_json(spec) if isinstance(spec, dict) else spec
    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = _cell_data(spec.data, spec.root)
        evaluated = data
        if spec.role == "rate":
            data = evaluated = data.validation_split(spec.validation, seed=0)
        elif spec.role == "control":
            assert spec.permutation_seed is not None  # a control cell has one (__post_init__)
            generator = torch.Generator().manual_seed(spec.permutation_seed)
            order = torch.randperm(data.y_train.shape[0], generator=generator)
            data = dataclasses.replace(data, y_train=data.y_train[order])
        model, rule = build(spec.variant, data.n_features, spec.hidden, data.n_classes,
                            sn=spec.sn, seed=spec.seed, gamma=GAMMA, steps=spec.steps)
        start = parameter_digest(model)
        model.to(spec.device)
        data, evaluated = data.to(device=spec.device), evaluated.to(device=spec.device)
        run = train(model, rule, data, epochs=spec.epochs, lr=spec.lr,
                    batch_size=spec.batch_size, seed=spec.seed,
                    monitors=(lambda _: {"sigma_raw": raw_norm(model)},), progress=False)
        sigma, lipschitz = _scipy_spectrum(model) if spec.role == "seed" else (None, None)
        record = {
            "key": spec.key(), "spec": spec.identity(), "code_version": code_version(),
            "run": run.to_json(), "accuracy": final_accuracy(model, rule, evaluated, run),
            "sigma_scipy": sigma, "lipschitz_scipy": lipschitz, "sigma_raw": raw_norm(model),
            "init_digest": start, "cell_s": time.perf_counter() - started,
        }
    finally:
        torch.set_num_threads(threads)
    return json.loads(json.dumps(record))


def training_run(record: dict[str, Any]) -> TrainingRun:
    """The TrainingRun a cell record holds."""
    run = dict(record["run"])
    run["history"] = [EpochRecord(**epoch) for epoch in run["history"]]
    return TrainingRun(**run)


def rate_score(record: dict[str, Any]) -> float:
    """A rate cell's validation score: its final accuracy, −∞ for a diverged run."""
    score = record["accuracy"]
    if record["run"]["outcome"] != "completed" or score is None or not math.isfinite(score):
        return -math.inf
    return float(score)


class CellCache:
    """Finished records under `folder` (None: no cache), one `<key>.json` each, written
    atomically: a killed run leaves whole records or none."""

    def __init__(self, folder: Path | None, *, fresh: bool = False) -> None:
        self.folder, self.fresh = folder, fresh

    def get(self, spec: CellSpec) -> dict[str, Any] | None:
        if self.folder is None or self.fresh:
            return None
        path = self.folder / f"{spec.key()}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if record.get("spec") == spec.identity() else None

    def put(self, spec: CellSpec, record: dict[str, Any]) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        # NaN allowed: a diverged run's history holds it (the record JSON round-trips it).
        atomic_write_text(self.folder / f"{spec.key()}.json", json.dumps(record))
