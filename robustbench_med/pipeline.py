"""``medrobust run`` as a function: obtain the model (and the surrogate), then evaluate it.

The two steps stay apart: :mod:`robustbench_med.workflow` obtains models (zoo
lookup, training when missing); :mod:`robustbench_med.evaluation.runner`
evaluates the models it is given. This module only composes them, in the spirit
of RobustBench's ``benchmark()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robustbench_med.attacks.spec import check_preset, parse_attacks
from robustbench_med.attacks.square import DEFAULT_QUERIES
from robustbench_med.data.loading import load_dataset
from robustbench_med.device import resolve_device
from robustbench_med.evaluation.report import Report
from robustbench_med.evaluation.runner import GridRunner, GridSettings, needs_surrogate, subset_label
from robustbench_med.evaluation.stored_names import SURROGATE, check_square_queries
from robustbench_med.evaluation.subject import from_checkpoint
from robustbench_med.events import Progress
from robustbench_med.models.zoo import Zoo
from robustbench_med.store import DEFAULT_RESULTS_DIR, STORE_NAME, ResultStore
from robustbench_med.workflow import ModelRequest, obtain_model, obtain_surrogate


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
    progress: bool = True  # training's progress bars
    surrogate: str = SURROGATE
    checks: bool = True
    square_queries: int = DEFAULT_QUERIES  # Square's budget (square, transfer, inside AutoAttack)


def benchmark(cfg: RunConfig, events: Progress | None = None) -> Report:
    """Obtain ``cfg``'s model (training it if the zoo has none) and the surrogate when a transfer
    attack asks for one, then run and store its grid; ``events`` hears what happens."""
    store = ResultStore(Path(cfg.results_dir) / STORE_NAME)  # a bad store is refused before training
    parse_attacks(cfg.attacks)  # fail on a bad name or preset before any data or training
    for preset in cfg.presets:
        check_preset(preset)
    check_square_queries(cfg.square_queries)
    r = cfg.request
    device = resolve_device(cfg.device)
    zoo = Zoo(Path(cfg.results_dir) / "zoo")
    data = load_dataset(r.dataset, data_root=cfg.data_root, image_size=r.image_size, augment=r.augment,
                        n_train=r.n_train, n_val=r.n_val, n_test=cfg.n_test, download=cfg.download)
    ckpt = obtain_model(r, data, zoo, device, events, checkpoint=cfg.checkpoint, progress=cfg.progress)
    surrogate = None
    if needs_surrogate(cfg.attacks, paired=data.info.modalities > 1):
        surrogate = obtain_surrogate(r, data, zoo, device, cfg.surrogate, events, progress=cfg.progress)
    settings = GridSettings(attacks=cfg.attacks, presets=tuple(cfg.presets), eps=tuple(cfg.eps),
                            draws=cfg.draws, batch_size=cfg.batch_size, seed=cfg.seed, checks=cfg.checks,
                            subset=subset_label(cfg.n_test, len(data.test)), surrogate_name=cfg.surrogate,
                            square_queries=cfg.square_queries)
    report = GridRunner(from_checkpoint(ckpt), data.test, data.info, settings, device=device, store=store,
                        surrogate=surrogate, progress=events).run()
    report.checkpoint = ckpt
    return report
