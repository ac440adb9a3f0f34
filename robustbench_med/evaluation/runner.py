"""The grid runner: one protocol, one function (in the spirit of RobustBench's ``benchmark()``).

For a model on a dataset: get the trained model (train it if the zoo has
none), score the clean test points, then for every attack x preset x eps x
protocol cell attack only the clean-correct points and store one row. Cells
already in the store are skipped, so a killed run resumes where it stopped.

Randomized models (declared, or detected by repeated forward passes) are
attacked under two protocols: ``paper`` (gradients through whatever draw each
pass sees, as the paper and the RPF/CTRW code do) and ``eot`` (each step
averages the gradient over 20 draws). Both are scored by the expected
prediction over fresh draws.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from torch import nn

from robustbench_med.attacks.catalog import JOINT_CAPABLE
from robustbench_med.attacks.eps import format_eps
from robustbench_med.attacks.spec import (
    AttackContext,
    AttackRequest,
    AttackSettings,
    check_preset,
    parse_attack,
    parse_attacks,
)
from robustbench_med.data.loading import load_dataset
from robustbench_med.data.spec import LoadedDataset
from robustbench_med.device import resolve_device
from robustbench_med.errors import MedrobustError
from robustbench_med.evaluation.batching import map_batches
from robustbench_med.evaluation.masking import LARGE_EPS, CheckResult, run_checks
from robustbench_med.evaluation.metrics import auc, bootstrap_ci
from robustbench_med.evaluation.scoring import detect_randomness, probabilities, refuse_training_mode
from robustbench_med.models.classifier import ModalitiesAsChannels, TaskView
from robustbench_med.models.zoo import Checkpoint, Zoo
from robustbench_med.randomness import is_randomized
from robustbench_med.store import DEFAULT_RESULTS_DIR, STORE_NAME, ResultKey, ResultStore, unpack_flags
from robustbench_med.versions import code_version, library_versions
from robustbench_med.workflow import ModelRequest, obtain_model

EOT_ITER = 20
CLEAN_TOLERANCE = 0.02  # a deterministic model must reproduce its recorded clean accuracy
SURROGATE = "resnet101"
SURROGATE_SEED_OFFSET = 1000  # a surrogate never shares the target's seed (same arch = same weights)
PROBE = ("pgd-20", "standard", LARGE_EPS)  # the large-eps probe behind the masking checks


@dataclass
class RunConfig:
    """Everything ``medrobust run`` needs; defaults follow the paper's protocol."""

    request: ModelRequest
    attacks: str = "pgd-10"
    presets: tuple[str, ...] = ("paper", "standard")
    eps: tuple[float, ...] = ()
    n_test: int | None = None
    data_root: str | Path | None = None
    download: bool = False
    results_dir: Path = DEFAULT_RESULTS_DIR
    checkpoint: Path | None = None
    device: str | None = None
    batch_size: int = 128
    draws: int = 10
    seed: int = 0
    progress: bool = True
    surrogate: str = SURROGATE
    checks: bool = True


@dataclass
class CellResult:
    """One grid cell's outcome, as printed and as stored."""

    key: ResultKey
    accuracy: float
    ci_low: float
    ci_high: float
    n: int
    n_attacked: int
    wall_s: float
    cached: bool
    notes: str = ""
    flags: np.ndarray | None = field(default=None, repr=False)


@dataclass
class RunReport:
    cells: list[CellResult] = field(default_factory=list)
    store_path: Path | None = None
    checkpoint: Checkpoint | None = None
    randomized: bool = False


@dataclass
class TaskContext:
    """One task of one trained model: what every cell of its grid needs."""

    view: nn.Module
    data: LoadedDataset
    ckpt: Checkpoint
    task: str
    n_classes: int
    y: torch.Tensor
    randomized: bool
    draws: int

    @property
    def x(self) -> torch.Tensor:
        return self.data.test.x


def protocols_for(request: AttackRequest, randomized: bool) -> list[str]:
    spec = request.spec
    if not randomized:
        return ["deterministic"]
    if spec.adaptive:
        return ["eot"]
    if spec.box == "white-box" and spec.iterative:
        return ["paper", "eot"]
    return ["paper"]


def cell_settings(request: AttackRequest, preset: str, eps: float | None,
                  protocol: str) -> AttackSettings:
    settings = request.spec.settings(preset, eps, request.steps)
    if protocol == "eot" and settings.eot_iter < 2:
        settings = dataclasses.replace(settings, eot_iter=EOT_ITER)
    if protocol == "paper":
        settings = dataclasses.replace(settings, eot_iter=1)
    return settings


def subset_label(n_test: int | None, n: int) -> str:
    return "test" if n_test is None else f"test[{n}]"


class GridRunner:
    """Runs the cells of one model on one dataset and writes them to the store."""

    def __init__(self, cfg: RunConfig, console: Console | None = None) -> None:
        self.cfg = cfg
        self.console = console or Console(stderr=True)
        self.device = resolve_device(cfg.device)
        self.store = ResultStore(Path(cfg.results_dir) / STORE_NAME)
        self.zoo = Zoo(Path(cfg.results_dir) / "zoo")
        self._surrogate: nn.Module | None = None

    # -- setup -----------------------------------------------------------
    def load(self) -> tuple[LoadedDataset, Checkpoint]:
        r = self.cfg.request
        data = load_dataset(r.dataset, data_root=self.cfg.data_root, image_size=r.image_size,
                            augment=r.augment, n_train=r.n_train, n_val=r.n_val,
                            n_test=self.cfg.n_test, download=self.cfg.download)
        ckpt = obtain_model(r, data, self.zoo, self.device, self.console,
                            checkpoint=self.cfg.checkpoint, progress=self.cfg.progress)
        return data, ckpt

    def surrogate(self, data: LoadedDataset) -> nn.Module:
        """The paper's black-box surrogate: a ResNet101 trained on the same data (cached)."""
        if data.info.modalities != 1:
            raise MedrobustError("transfer attacks need a single dataset (a surrogate is trained on "
                                 f"one dataset), got the pair {data.info.dataset}")
        if self._surrogate is None:
            request = dataclasses.replace(self.cfg.request, model=self.cfg.surrogate, defense=None,
                                          model_options={}, defense_options={})
            request = dataclasses.replace(request, train=dataclasses.replace(
                request.train, adversarial=False, seed=request.train.seed + SURROGATE_SEED_OFFSET))
            self.console.print(f"[dim]surrogate for transfer attacks: {self.cfg.surrogate}[/]")
            self._surrogate = obtain_model(request, data, self.zoo, self.device, self.console,
                                           progress=self.cfg.progress).model.eval()
        return self._surrogate

    # -- the grid ----------------------------------------------------------
    def run(self) -> RunReport:
        cfg = self.cfg
        parse_attacks(cfg.attacks)  # fail on a bad name or preset before any data or training
        for preset in cfg.presets:
            check_preset(preset)
        data, ckpt = self.load()
        model = ckpt.model.to(self.device).eval()
        randomized = is_randomized(model)
        if not randomized and detect_randomness(model, data.test.x, self.device):
            randomized = True
            self.console.print("[yellow]model output changes between identical passes: "
                               "evaluating it as a randomized model (EOT)[/]")
        paired = data.info.modalities > 1
        requests = parse_attacks(cfg.attacks, randomized=randomized, paired=paired)
        report = RunReport(store_path=self.store.path, checkpoint=ckpt, randomized=randomized)
        for task_index, task in enumerate(data.info.tasks):
            view = TaskView(model, task_index).eval()
            y = data.test.y if data.test.y.ndim == 1 else data.test.y[:, task_index]
            task_name = task.name if data.info.modalities == 1 else f"{data.info.dataset}:{task.name}"
            tc = TaskContext(view=view, data=data, ckpt=ckpt, task=task_name,
                             n_classes=task.n_classes, y=y, randomized=randomized,
                             draws=cfg.draws if randomized else 1)
            report.cells += self._task_cells(tc, requests)
        return report

    def _key(self, ckpt: Checkpoint, task: str, attack: str, preset: str, eps: float,
             protocol: str, n: int) -> ResultKey:
        c = ckpt.config
        return ResultKey(model=c.model, defense=c.defense or "", dataset=c.dataset, task=task,
                         attack=attack, preset=preset, eps=eps, protocol=protocol,
                         seed=int(c.train.get("seed", 0)), subset=subset_label(self.cfg.n_test, n),
                         checkpoint_sha=ckpt.sha256, code_version=code_version())

    def _task_cells(self, tc: TaskContext, requests: list[AttackRequest]) -> list[CellResult]:
        cfg = self.cfg
        n = len(tc.x)
        torch.manual_seed(cfg.seed)
        started = time.perf_counter()
        probs = probabilities(tc.view, tc.x, self.device, draws=tc.draws, batch_size=cfg.batch_size)
        clean_flags = (probs.argmax(1) == tc.y).numpy()
        noise = self._draw_noise(tc, probs) if tc.randomized else None
        self._check_recorded_accuracy(tc.ckpt, clean_flags, tc.randomized)
        clean_key = self._key(tc.ckpt, tc.task, "clean", "-", 0.0,
                              "randomized" if tc.randomized else "deterministic", n)
        cells = [self._stored(clean_key, "clean") or self._store_cell(
            clean_key, clean_flags, n_attacked=0, wall_s=time.perf_counter() - started,
            settings={"draws": tc.draws, "train": training_budget(tc.ckpt), "draw_noise": noise},
            auc_value=auc(probs.numpy(), tc.y.numpy()))]
        attacked = torch.from_numpy(np.flatnonzero(clean_flags))
        for request in requests:
            for preset in request.presets_for(list(cfg.presets)):
                for protocol in protocols_for(request, tc.randomized):
                    cells += self._eps_series(tc, attacked, request, preset, protocol)
        if cfg.checks:
            probe = parse_attack(PROBE[0])
            for protocol in protocols_for(probe, tc.randomized)[-1:]:
                cells += self._eps_series(tc, attacked, probe, PROBE[1], protocol,
                                          eps_values=(PROBE[2],))
            self._run_checks(tc, n, clean_flags, noise)
        return cells

    def _draw_noise(self, tc: TaskContext, probs: torch.Tensor) -> float:
        """How often a second, independent scoring of the same clean points changes a prediction:
        the per-point noise of scoring a randomized model, which the masking checks must not read
        as a difference between attacks."""
        again = probabilities(tc.view, tc.x, self.device, draws=tc.draws, batch_size=self.cfg.batch_size)
        return float((again.argmax(1) != probs.argmax(1)).float().mean())

    def _attack_name(self, request: AttackRequest) -> str:
        """The stored name; a non-default surrogate is part of it, so cells never mix."""
        if request.spec.box == "transfer" and self.cfg.surrogate != SURROGATE:
            return f"{request.name}[{self.cfg.surrogate}]"
        return request.name

    def _eps_series(self, tc: TaskContext, attacked: torch.Tensor, request: AttackRequest,
                    preset: str, protocol: str,
                    eps_values: tuple[float, ...] | None = None) -> list[CellResult]:
        """One attack over eps ascending. The balls are nested, so for a deterministic model a
        point broken at a smaller eps stays broken: only the survivors are attacked again."""
        cells = []
        eps_list = sorted(eps_values or self.cfg.eps or (request.spec.settings(preset, None, None).eps,))
        targets, previous = attacked, None
        for eps in eps_list:
            settings = cell_settings(request, preset, eps, protocol)
            if not tc.randomized and previous is not None:
                settings = dataclasses.replace(settings, extra={**settings.extra, "nested_from": previous})
            key = self._key(tc.ckpt, tc.task, self._attack_name(request), preset, settings.eps,
                            protocol, len(tc.x))
            cell, flags = self._attack_cell(tc, key, targets, request, settings)
            cells.append(cell)
            if not tc.randomized:
                targets, previous = torch.from_numpy(np.flatnonzero(flags)), settings.eps
        return cells

    def _run_checks(self, tc: TaskContext, n: int, clean_flags: np.ndarray,
                    draw_noise: float | None) -> list[CheckResult]:
        """Gradient-masking checks over every stored row of this checkpoint on this task, and the
        one-class check on this run's clean predictions."""
        key = self._key(tc.ckpt, tc.task, "clean", "-", 0.0, "-", n).as_dict()
        filters = {k: key[k] for k in ("model", "defense", "dataset", "task", "seed", "subset",
                                       "checkpoint_sha", "code_version")}
        results = run_checks(self.store.frame(with_flags=True, **filters), n_classes=tc.n_classes,
                             randomized=tc.randomized, clean=(clean_flags, tc.y.numpy()),
                             draw_noise=draw_noise)
        for result in results:
            self.store.put_check({**filters, "protocol": "all"}, result.name, result.status,
                                 result.detail, statistic=result.statistic,
                                 p_value=result.p_value)
            colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}.get(result.status, "dim")
            self.console.print(f"  [{colour}]check {result.name}: {result.status}[/] "
                               f"[dim]({escape(result.detail)})[/]")
        return results

    def _check_recorded_accuracy(self, ckpt: Checkpoint, flags: np.ndarray, randomized: bool) -> None:
        """Catch a normalisation or data mismatch before attacking (RobustBench #105)."""
        recorded = ckpt.metrics.get("test_accuracy")
        if randomized or recorded is None or ckpt.metrics.get("n_test") != len(flags):
            return
        if ckpt.info.modalities == 1 and abs(float(flags.mean()) - recorded) > CLEAN_TOLERANCE:
            raise MedrobustError(
                f"clean accuracy {flags.mean():.3f} differs from the {recorded:.3f} recorded with "
                f"checkpoint {ckpt.path}: the data or the normalisation does not match its training"
            )

    def _attack_cell(self, tc: TaskContext, key: ResultKey, attacked: torch.Tensor,
                     request: AttackRequest, settings: AttackSettings) -> tuple[CellResult, np.ndarray]:
        label = f"{key.attack} ({key.preset}, eps {format_eps(key.eps)}, {key.protocol})"
        cached = self._stored(key, label)
        if cached is not None:
            assert cached.flags is not None
            return cached, cached.flags
        torch.manual_seed(self.cfg.seed)
        # A paired model is attacked as its official code does: every input at once, with the
        # sum of the task losses (our loop); library attacks see one task's logits.
        paired = tc.data.info.modalities > 1
        joint = paired and request.spec.name in JOINT_CAPABLE
        target: nn.Module = tc.view.model if joint else tc.view
        labels = tc.data.test.y if joint else tc.y
        packed = paired and not joint  # a library attack: show it m x C channels of one image
        if packed:
            target = ModalitiesAsChannels(tc.view, tc.data.info.modalities)
        ctx = AttackContext(device=self.device, n_classes=tc.n_classes, seed=self.cfg.seed,
                            randomized=tc.randomized, joint=joint,
                            surrogate=lambda: self.surrogate(tc.data))
        started = time.perf_counter()
        refuse_training_mode(target)
        attack = request.spec.build(target, settings, ctx)
        x_att, y_att, label_att = tc.x[attacked], tc.y[attacked], labels[attacked]

        def run(part: slice) -> torch.Tensor:
            xb = x_att[part].to(self.device)
            if packed:
                return target.unpack(attack(target.pack(xb), label_att[part].to(self.device))).detach()
            return attack(xb, label_att[part].to(self.device)).detach()

        x_adv = map_batches(run, len(attacked), self.cfg.batch_size) if len(attacked) else x_att
        check_threat_model(x_adv, x_att, settings.eps, key.attack)
        flags = np.zeros(len(tc.x), dtype=bool)
        if len(attacked):
            preds = probabilities(tc.view, x_adv, self.device, draws=tc.draws,
                                  batch_size=self.cfg.batch_size).argmax(1)
            flags[attacked.numpy()] = (preds == y_att).numpy()
        wall = time.perf_counter() - started
        record = settings.as_record() | {"draws": tc.draws, "library": request.spec.library,
                                         "box": request.spec.box}
        if paired:
            record["perturbation"] = ("joint: all inputs, sum of task losses" if joint
                                      else "all inputs, this task's loss")
        cell = self._store_cell(key, flags, n_attacked=len(attacked), wall_s=wall,
                                settings=record, notes="; ".join(ctx.notes), label=label)
        return cell, flags

    def _stored(self, key: ResultKey, label: str) -> CellResult | None:
        """The stored result of a finished cell, or None when it still has to run."""
        row = self.store.get(key)
        if row is None:
            return None
        self.console.print(f"  {label}: {row['accuracy']:.2%} (stored, not recomputed)", markup=False)
        return CellResult(key, row["accuracy"], row["ci_low"], row["ci_high"], row["n"],
                          row["n_attacked"], row["wall_s"], True, row["notes"] or "",
                          unpack_flags(row["flags"], row["n"]))

    def _store_cell(self, key: ResultKey, flags: np.ndarray, *, n_attacked: int, wall_s: float,
                    settings: dict, notes: str = "", auc_value: float | None = None,
                    label: str | None = None) -> CellResult:
        lo, hi = bootstrap_ci(flags, seed=key.seed)
        accuracy = float(flags.mean()) if len(flags) else float("nan")
        self.store.put(key, flags=flags, settings=settings, versions=library_versions(),
                       n=len(flags), n_attacked=n_attacked, accuracy=accuracy, ci_low=lo,
                       ci_high=hi, auc=auc_value, image_size=self.cfg.request.image_size,
                       device=str(self.device), wall_s=wall_s, notes=notes)
        label = label or f"{key.attack} ({key.protocol})"
        self.console.print(f"  {label}: {accuracy:.2%} (95% CI {lo:.2%}-{hi:.2%}, n={len(flags)}"
                           f"{f', AUC {auc_value:.3f}' if auc_value is not None else ''}, "
                           f"{wall_s:.1f} s)", markup=False)
        return CellResult(key, accuracy, lo, hi, len(flags), n_attacked, wall_s, False, notes)


def training_budget(ckpt: Checkpoint) -> dict:
    """How the evaluated model was trained, recorded with its clean row."""
    train, data = ckpt.config.train, ckpt.config.data
    return {"epochs": train.get("epochs"), "recipe": train.get("recipe"),
            "batch_size": train.get("batch_size"), "image_size": ckpt.config.image_size,
            "augment": data.get("augment"), "n_train": data.get("n_train"),
            "adversarial": train.get("adversarial", False),
            "best_epoch": ckpt.metrics.get("best_epoch"), "device": ckpt.metrics.get("device"),
            "selection": ckpt.metrics.get("selection", "val_accuracy"),
            "bn_settle": train.get("bn_settle", "none")}


def check_threat_model(x_adv: torch.Tensor, x: torch.Tensor, eps: float, attack: str) -> None:
    """Every adversarial example must be an image in [0, 1] within eps of its original."""
    if len(x) == 0:
        return
    gap = float((x_adv - x).abs().max())
    if gap > eps + 1e-5 or float(x_adv.min()) < -1e-6 or float(x_adv.max()) > 1 + 1e-6:
        raise MedrobustError(f"attack {attack} left the threat model (max |delta| {gap:.5f} > eps "
                             f"{eps:.5f}, or pixels outside [0, 1]); its row was not stored")


def benchmark(cfg: RunConfig, console: Console | None = None) -> RunReport:
    """Run one model's grid and store every cell (see module docstring)."""
    return GridRunner(cfg, console).run()
