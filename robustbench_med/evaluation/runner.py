"""The grid runner: evaluate a given model on given test points, one protocol for every caller.

It never obtains a model (no zoo, no training: see :mod:`robustbench_med.workflow`
and :mod:`robustbench_med.pipeline`). For a model and its test points: score the
clean points, then for every attack x preset x eps x protocol cell attack only
the clean-correct points and record one row. With a store, cells already in it
are skipped, so a killed run resumes where it stopped; without one, nothing is
written. What happens reaches the user as events (:mod:`robustbench_med.events`).

Randomized models (declared, or detected by repeated forward passes) are
attacked under the protocols of :mod:`robustbench_med.evaluation.protocols`
and scored by the expected prediction over fresh draws.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from robustbench_med.attacks.catalog import JOINT_CAPABLE
from robustbench_med.attacks.fp32 import in_fp32
from robustbench_med.attacks.spec import (
    AttackContext,
    AttackRequest,
    AttackSettings,
    check_preset,
    parse_attack,
    parse_attacks,
)
from robustbench_med.attacks.square import DEFAULT_QUERIES
from robustbench_med.data.spec import DataInfo, Split
from robustbench_med.device import place_model
from robustbench_med.errors import MedrobustError
from robustbench_med.evaluation.batching import map_batches
from robustbench_med.evaluation.cells import CellBook, cell_label
from robustbench_med.evaluation.estimate import Budget, announce, format_seconds, timed_pass
from robustbench_med.evaluation.masking import LARGE_EPS, CheckResult, run_checks
from robustbench_med.evaluation.metrics import auc
from robustbench_med.evaluation.protocols import cell_settings, protocols_for
from robustbench_med.evaluation.report import CellResult, Report
from robustbench_med.evaluation.scoring import detect_randomness, probabilities, refuse_training_mode
from robustbench_med.evaluation.stored_names import (
    SQUARE_INSIDE,
    SURROGATE,
    stored_attack_name,
    with_square_queries,
)
from robustbench_med.evaluation.subject import Subject, state_sha256
from robustbench_med.evaluation.transfer_cache import TransferCache, tensor_sha256
from robustbench_med.events import Progress, emit
from robustbench_med.models.classifier import ModalitiesAsChannels, TaskView
from robustbench_med.randomness import is_randomized
from robustbench_med.store import ResultKey, ResultStore
from robustbench_med.versions import code_version, library_versions

CLEAN_TOLERANCE = 0.02  # a deterministic model must reproduce its recorded clean accuracy
PROBE = ("pgd-20", "standard", LARGE_EPS)  # the large-eps probe behind the masking checks


@dataclass(frozen=True)
class GridSettings:
    """How a model is evaluated; defaults follow the paper's protocol."""

    attacks: str = "pgd-10"
    presets: tuple[str, ...] = ("paper", "standard")
    eps: tuple[float, ...] = ()
    draws: int = 10
    batch_size: int = 128
    seed: int = 0
    checks: bool = True
    subset: str = "test"  # the stored name of the test points ("test", "test[200]")
    surrogate_name: str = SURROGATE  # a non-default surrogate becomes part of a transfer attack's name
    square_queries: int = DEFAULT_QUERIES  # Square's budget (square, transfer, inside AutoAttack)


@dataclass(frozen=True)
class Series:
    """One attack x preset x protocol over its eps values: each cell's settings and stored key."""

    request: AttackRequest
    cells: tuple[tuple[AttackSettings, ResultKey], ...]


@dataclass
class TaskContext:
    """One task of the evaluated model: what every cell of its grid needs."""

    view: nn.Module
    x: torch.Tensor
    labels: torch.Tensor  # every task's labels, (N,) or (N, m), for joint attacks
    task: str
    n_classes: int
    y: torch.Tensor
    randomized: bool
    draws: int


def subset_label(n_test: int | None, n: int) -> str:
    return "test" if n_test is None else f"test[{n}]"


def needs_surrogate(attacks: str, paired: bool = False) -> bool:
    """True when ``attacks`` includes a transfer attack (``all`` does, for a single dataset)."""
    return any(r.spec.box == "transfer" for r in parse_attacks(attacks, paired=paired))


class GridRunner:
    """Runs the cells of one given model on its test points; writes rows only to a given store."""

    def __init__(self, subject: Subject, test: Split, info: DataInfo, settings: GridSettings, *,
                 device: torch.device, store: ResultStore | None = None,
                 surrogate: nn.Module | None = None, progress: Progress | None = None,
                 transfer_cache: TransferCache | None = None) -> None:
        self.subject = subject
        self.test = test
        self.info = info
        self.settings = settings
        self.device = device
        self.store = store
        self.surrogate = surrogate
        self.progress = progress
        self.transfer_cache = transfer_cache or TransferCache.beside(store.path if store else None)
        self._surrogate_sha: str | None = None
        self._started = time.perf_counter()
        self.book = CellBook(store, progress, device, int(test.x.shape[-1]), self._elapsed)

    @in_fp32  # clean scoring, attacks and checks: whatever autocast the caller left on
    def run(self) -> Report:
        s, subject = self.settings, self.subject
        self._started = time.perf_counter()
        parse_attacks(s.attacks)  # fail on a bad name or preset before any scoring
        for preset in s.presets:
            check_preset(preset)
        model = place_model(subject.model, self.device).eval()
        randomized = is_randomized(model)
        if not randomized and detect_randomness(model, self.test.x, self.device):
            randomized = True
            emit(self.progress, "randomized", "model output changes between identical passes: "
                 "evaluating it as a randomized model (EOT)", level="warning")
        paired = self.info.modalities > 1
        requests = with_square_queries(parse_attacks(s.attacks, randomized=randomized, paired=paired),
                                       s.square_queries)
        if self.surrogate is None and any(r.spec.box == "transfer" for r in requests):
            raise MedrobustError("transfer attacks need a surrogate model (pass one; medrobust run "
                                 "trains the paper's ResNet101 before evaluating)")
        report = Report(model=subject.label, randomized=randomized,
                        store_path=self.store.path if self.store else None)
        for task_index, task in enumerate(self.info.tasks):
            y = self.test.y if self.test.y.ndim == 1 else self.test.y[:, task_index]
            tc = TaskContext(view=TaskView(model, task_index).eval(), x=self.test.x, labels=self.test.y,
                             task=task.name if not paired else f"{self.info.dataset}:{task.name}",
                             n_classes=task.n_classes, y=y, randomized=randomized,
                             draws=s.draws if randomized else 1)
            cells, checks = self._task_cells(tc, requests)
            report.cells += cells
            report.checks += checks
        return report

    def _key(self, task: str, attack: str, preset: str, eps: float, protocol: str) -> ResultKey:
        sub = self.subject
        return ResultKey(model=sub.name, defense=sub.defense, dataset=sub.dataset, task=task,
                         attack=attack, preset=preset, eps=eps, protocol=protocol, seed=sub.seed,
                         subset=self.settings.subset, checkpoint_sha=sub.checkpoint_sha,
                         code_version=code_version())

    def _task_cells(self, tc: TaskContext,
                    requests: list[AttackRequest]) -> tuple[list[CellResult], list[CheckResult]]:
        s = self.settings
        planned = self._planned(tc, requests)
        clean_key = self._key(tc.task, "clean", "-", 0.0, "randomized" if tc.randomized else "deterministic")
        stored = self.store is not None and all(self.book.has(key) for series in planned
                                                for _, key in series.cells)
        clean = self.book.stored(clean_key, "clean") if stored else None
        if clean is not None and clean.flags is not None:
            # Every cell of this task is stored: its clean row says what the clean pass would.
            clean_flags, noise = clean.flags, clean.settings.get("draw_noise")
            self._check_recorded_accuracy(clean_flags, tc.randomized)
            cells = [clean]
        else:
            torch.manual_seed(s.seed)
            started = time.perf_counter()
            probs = probabilities(tc.view, tc.x, self.device, draws=tc.draws, batch_size=s.batch_size)
            clean_flags = (probs.argmax(1) == tc.y).numpy()
            noise = self._draw_noise(tc, probs) if tc.randomized else None
            self._check_recorded_accuracy(clean_flags, tc.randomized)
            cells = [self.book.stored(clean_key, "clean") or self.book.record(
                clean_key, clean_flags, n_attacked=0, wall_s=time.perf_counter() - started,
                settings={"draws": tc.draws, "train": self.subject.training, "draw_noise": noise},
                auc_value=auc(probs.numpy(), tc.y.numpy()))]
            self._announce(tc, planned, int(clean_flags.sum()))
        attacked = torch.from_numpy(np.flatnonzero(clean_flags))
        for series in planned:
            cells += self._eps_series(tc, attacked, series)
        checks = self._run_checks(tc, cells, clean_flags, noise) if s.checks else []
        return cells, checks

    def _planned(self, tc: TaskContext, requests: list[AttackRequest]) -> list[Series]:
        """Every attack cell of this task in the order it runs (the masking probe last)."""
        s = self.settings
        planned = [self._series(tc, request, preset, protocol)
                   for request in requests for preset in request.presets_for(list(s.presets))
                   for protocol in protocols_for(request, tc.randomized)]
        if s.checks:
            probe = parse_attack(PROBE[0])
            planned += [self._series(tc, probe, PROBE[1], protocol, eps_values=(PROBE[2],))
                        for protocol in protocols_for(probe, tc.randomized)[-1:]]
        return planned

    def _announce(self, tc: TaskContext, planned: list[Series], n_attacked: int) -> None:
        """Each cell still to compute and its estimated cost (:mod:`~robustbench_med.evaluation.estimate`):
        from stored similar cells, else from a forward+backward timed here (at most once per task on
        the model, once on the surrogate)."""
        sub = self.subject
        todo = [(cell_label(key), {"model": sub.name, "defense": sub.defense, "attack": key.attack,
                                   "preset": key.preset, "protocol": key.protocol,
                                   "image_size": int(tc.x.shape[-1])},
                 self._budget(tc, series, settings, key, n_attacked))
                for series in planned for settings, key in series.cells if not self.book.has(key)]
        rows = self.store.frame(model=sub.name) if self.store is not None and todo else pd.DataFrame()
        timed: dict[bool, float | None] = {}

        def seconds_per_pass(on_surrogate: bool) -> float | None:
            if on_surrogate not in timed:
                model = self.surrogate if on_surrogate else tc.view
                assert model is not None
                timed[on_surrogate] = timed_pass(model, tc.x, tc.y, self.device, self.settings.batch_size)
            return timed[on_surrogate]

        announce(self.progress, rows, todo, sub.dataset, len(tc.x), tc.task, seconds_per_pass)

    def _budget(self, tc: TaskContext, series: Series, settings: AttackSettings, key: ResultKey,
                n_attacked: int) -> Budget:
        """A cell's attack budget: a transfer attack crafts on the surrogate for every test point,
        unless the transfer cache already holds its examples."""
        spec = series.request.spec
        passes = None if spec.passes is None else spec.passes(settings, tc.n_classes)
        if spec.box == "transfer" and n_attacked:  # crafted for every point, or taken from the cache
            cached = (self.transfer_cache.folder is not None
                      and self.transfer_cache.holds(self._transfer_key(tc, key, settings)))
            return Budget(passes, len(tc.x), on_surrogate=True, cached=cached)
        return Budget(passes, n_attacked)

    def _draw_noise(self, tc: TaskContext, probs: torch.Tensor) -> float:
        """How often a second, independent scoring of the same clean points changes a prediction:
        the per-point noise of scoring a randomized model, which the masking checks must not read
        as a difference between attacks."""
        again = probabilities(tc.view, tc.x, self.device, draws=tc.draws, batch_size=self.settings.batch_size)
        return float((again.argmax(1) != probs.argmax(1)).float().mean())

    def _series(self, tc: TaskContext, request: AttackRequest, preset: str, protocol: str,
                eps_values: tuple[float, ...] | None = None) -> Series:
        """One attack over eps ascending. The balls are nested, so for a deterministic model a
        point broken at a smaller eps stays broken: only the survivors are attacked again."""
        eps_list = sorted(eps_values or self.settings.eps or (request.spec.settings(preset, None, None).eps,))
        cells, previous = [], None
        for eps in eps_list:
            settings = cell_settings(request, preset, eps, protocol)
            if request.spec.name in SQUARE_INSIDE:
                settings = dataclasses.replace(settings, square_queries=self.settings.square_queries)
            if not tc.randomized and previous is not None:
                settings = dataclasses.replace(settings, extra={**settings.extra, "nested_from": previous})
            name = stored_attack_name(request, self.settings.surrogate_name, self.settings.square_queries)
            cells.append((settings, self._key(tc.task, name, preset, settings.eps, protocol)))
            previous = settings.eps
        return Series(request, tuple(cells))

    def _eps_series(self, tc: TaskContext, attacked: torch.Tensor, series: Series) -> list[CellResult]:
        cells = []
        targets = attacked
        for settings, key in series.cells:
            cell, flags = self._attack_cell(tc, key, targets, series.request, settings)
            cells.append(cell)
            if not tc.randomized:
                targets = torch.from_numpy(np.flatnonzero(flags))
        return cells

    def _run_checks(self, tc: TaskContext, cells: list[CellResult],
                    clean_flags: np.ndarray, draw_noise: float | None) -> list[CheckResult]:
        """Gradient-masking checks over every row of this model on this task (the store's, which
        may hold earlier runs', or this run's), and the one-class check on the clean predictions."""
        key = self._key(tc.task, "clean", "-", 0.0, "-").as_dict()
        filters = {k: key[k] for k in ("model", "defense", "dataset", "task", "seed", "subset",
                                       "checkpoint_sha", "code_version")}
        rows = (self.store.frame(with_flags=True, **filters) if self.store is not None
                else pd.DataFrame([c.row(with_flags=True) for c in cells]))
        results = run_checks(rows, n_classes=tc.n_classes, randomized=tc.randomized,
                             clean=(clean_flags, tc.y.numpy()), draw_noise=draw_noise)
        for result in results:
            if self.store is not None:
                self.store.put_check({**filters, "protocol": "all"}, result.name, result.status,
                                     result.detail, statistic=result.statistic, p_value=result.p_value)
            emit(self.progress, "check", f"  check {result.name}: {result.status} ({result.detail})",
                 data=result)
        return results

    def _check_recorded_accuracy(self, flags: np.ndarray, randomized: bool) -> None:
        """Catch a normalisation or data mismatch before attacking (RobustBench #105)."""
        sub = self.subject
        recorded = sub.recorded_accuracy
        if randomized or recorded is None or sub.recorded_n not in (None, len(flags)):
            return
        if abs(float(flags.mean()) - recorded) > CLEAN_TOLERANCE:
            raise MedrobustError(
                f"clean accuracy {flags.mean():.3f} differs from the {recorded:.3f} recorded with "
                f"{sub.source}: the data or the normalisation does not match its training (models "
                "take images in [0, 1] and normalise inside themselves)"
            )

    def _attack_cell(self, tc: TaskContext, key: ResultKey, attacked: torch.Tensor,
                     request: AttackRequest, settings: AttackSettings) -> tuple[CellResult, np.ndarray]:
        label = cell_label(key)
        cached = self.book.stored(key, label)
        if cached is not None:
            assert cached.flags is not None
            return cached, cached.flags
        s = self.settings
        emit(self.progress, "cell-start", f"  {label}: attacking {len(attacked)} points "
             f"({format_seconds(self._elapsed())} into the run)", level="detail", data=key)
        torch.manual_seed(s.seed)
        # A paired model is attacked as its official code does: every input at once, with the
        # sum of the task losses (our loop); library attacks see one task's logits.
        paired = self.info.modalities > 1
        joint = paired and request.spec.name in JOINT_CAPABLE
        target: Any = tc.view.model if joint else tc.view
        labels = tc.labels if joint else tc.y
        packed = paired and not joint  # a library attack: show it m x C channels of one image
        if packed:
            target = ModalitiesAsChannels(tc.view, self.info.modalities)
        surrogate = self.surrogate
        ctx = AttackContext(device=self.device, n_classes=tc.n_classes, seed=s.seed,
                            randomized=tc.randomized, joint=joint,
                            surrogate=None if surrogate is None else lambda: surrogate)
        started = time.perf_counter()
        refuse_training_mode(target)
        attack = request.spec.build(target, settings, ctx)
        x_att, y_att, label_att = tc.x[attacked], tc.y[attacked], labels[attacked]
        transfer = request.spec.box == "transfer"

        def run(part: slice) -> torch.Tensor:
            xb = x_att[part].to(self.device)
            if packed:
                out = target.unpack(attack(target.pack(xb), label_att[part].to(self.device))).detach()
            else:
                out = attack(xb, label_att[part].to(self.device)).detach()
            self._batch_done(label, part, len(x_att), started)
            return out

        cache_status = None
        if transfer and len(attacked):
            x_adv, cache_status = self._transfer_examples(tc, key, settings, attack, label, started)
            x_adv = x_adv[attacked]
        else:
            x_adv = (map_batches(run, len(attacked), s.batch_size, on_backoff=self._backoff(label))
                     if len(attacked) else x_att)
        check_threat_model(x_adv, x_att, settings.eps, key.attack)
        flags = np.zeros(len(tc.x), dtype=bool)
        if len(attacked):
            preds = probabilities(tc.view, x_adv, self.device, draws=tc.draws,
                                  batch_size=s.batch_size).argmax(1)
            flags[attacked.numpy()] = (preds == y_att).numpy()
        wall = time.perf_counter() - started
        record = settings.as_record() | {"draws": tc.draws, "library": request.spec.library,
                                         "box": request.spec.box}
        if cache_status is not None:
            record["transfer_cache"] = cache_status
        if paired:
            record["perturbation"] = ("joint: all inputs, sum of task losses" if joint
                                      else "all inputs, this task's loss")
        cell = self.book.record(key, flags, n_attacked=len(attacked), wall_s=wall,
                                 settings=record, notes="; ".join(ctx.notes), label=label)
        return cell, flags

    def _transfer_key(self, tc: TaskContext, key: ResultKey, settings: AttackSettings) -> dict[str, Any]:
        """What a transfer attack's examples depend on: the surrogate, the attack and its settings,
        the points and labels, and what else decides the draws (seed, batch, device, libraries)."""
        s = self.settings
        if self._surrogate_sha is None:
            assert self.surrogate is not None
            self._surrogate_sha = state_sha256(self.surrogate)
        return {"surrogate_sha256": self._surrogate_sha, "attack": key.attack,
                "settings": {k: v for k, v in settings.as_record().items() if k != "nested_from"},
                "dataset": self.subject.dataset, "task": key.task,
                "image_size": int(tc.x.shape[-1]), "points": tensor_sha256(tc.x),
                "labels": tensor_sha256(tc.y), "seed": s.seed, "batch_size": s.batch_size,
                "device": self.device.type, "versions": library_versions()}

    def _transfer_examples(self, tc: TaskContext, key: ResultKey, settings: AttackSettings,
                           attack: Any, label: str, started: float) -> tuple[torch.Tensor, str]:
        """A transfer attack's examples for *every* test point (on the CPU), from the transfer cache
        or crafted now on the surrogate: they do not depend on the target, so each target of the
        dataset indexes its own clean-correct points and all of them share one entry."""
        s = self.settings
        cache_key = self._transfer_key(tc, key, settings)

        def craft() -> torch.Tensor:
            torch.manual_seed(s.seed)

            def part_of(part: slice) -> torch.Tensor:
                out = attack(tc.x[part].to(self.device), tc.y[part].to(self.device)).detach().cpu()
                self._batch_done(f"{label} on the surrogate", part, len(tc.x), started)
                return out

            return map_batches(part_of, len(tc.x), s.batch_size, on_backoff=self._backoff(label))

        x_adv, status = self.transfer_cache.examples(cache_key, craft)
        if status == "hit":
            emit(self.progress, "transfer-cache", f"  {label}: surrogate examples reused from "
                 f"{self.transfer_cache.folder}", level="detail")
        return x_adv, status

    def _backoff(self, label: str) -> Callable[[int], None]:
        def say(size: int) -> None:
            emit(self.progress, "backoff", f"    {label}: out of memory, batch halved to {size}")
        return say

    def _elapsed(self) -> float:
        return time.perf_counter() - self._started

    def _batch_done(self, label: str, part: slice, total: int, started: float) -> None:
        """Where a long cell's time goes as it goes: one event per finished batch."""
        if part.stop < total or part.start > 0:
            emit(self.progress, "batch", f"    {label}: {part.stop}/{total} points in "
                 f"{format_seconds(time.perf_counter() - started)}", level="detail")


def check_threat_model(x_adv: torch.Tensor, x: torch.Tensor, eps: float, attack: str) -> None:
    """Every adversarial example must be an image in [0, 1] within eps of its original."""
    if len(x) == 0:
        return
    gap = float((x_adv - x).abs().max())
    if gap > eps + 1e-5 or float(x_adv.min()) < -1e-6 or float(x_adv.max()) > 1 + 1e-6:
        raise MedrobustError(f"attack {attack} left the threat model (max |delta| {gap:.5f} > eps "
                             f"{eps:.5f}, or pixels outside [0, 1]); its row was not stored")
