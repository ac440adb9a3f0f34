"""Attack cost, as ratios measured in one run (never as timed assertions in tests).

(a) engine overhead: our PGD-K time / (K x one forward+backward of the same
    model on the same batch). Target <= 1.05 with early stop off (pure
    overhead); with early stop on, an undefended model costs much less.
(b) protocol saving: ``medrobust run --attacks all`` (paper preset; clean-correct
    points only, broken points stop, one clean pass) / the naive loop that runs
    every torchattacks attack (PGD-10/20/50/100, BIM-10, MIFGSM-10, Square,
    AutoAttack, and the two transfer attacks from the same surrogate) over every
    test point. Target <= 0.3 on an undefended ResNet18. The surrogate is trained
    before either side is timed.

Usage: python benchmarks/attack_overhead.py [--n-test 100] [--image-size 28] [--square-queries 5000]
       [--overhead-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchattacks
from rich.console import Console

from robustbench_med.attacks.autoattack import AutoAttackFn
from robustbench_med.attacks.iterative import IterativeLinf
from robustbench_med.attacks.spec import PAPER_EPS, PAPER_STEP, parse_attacks
from robustbench_med.pipeline import RunConfig, benchmark
from robustbench_med.training.config import TrainConfig
from robustbench_med.workflow import ModelRequest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def median_time(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def engine_overhead(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> dict:
    def forward_backward() -> None:
        xr = x.detach().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xr), y), xr)

    def attack(early_stop: bool):
        return lambda: IterativeLinf(model, eps=PAPER_EPS, alpha=PAPER_STEP, steps=steps,
                                     random_start=True, early_stop=early_stop)(x, y)

    one = median_time(forward_backward)
    full = median_time(attack(False), repeats=3)
    stopped = median_time(attack(True), repeats=3)
    return {"fwd_bwd_s": one, "pgd_s": full, "ratio": full / (steps * one),
            "ratio_early_stop": stopped / (steps * one)}


def autoattack(model: torch.nn.Module):
    """torchattacks' AutoAttack cannot run a binary task (targeted DLR needs >= 4 classes), so the
    naive side runs pyautoattack with the same binary plan as ours, over every point."""
    return AutoAttackFn(model, PAPER_EPS, 2, "standard", torch.device("cpu"), 0, [])


def naive_loop(model, surrogate, x, y, queries: int) -> float:
    """Every torchattacks attack over every test point, as a user without the protocol would."""
    eps, alpha = PAPER_EPS, PAPER_STEP
    white = [torchattacks.PGD(model, eps, alpha, k) for k in (10, 20, 50, 100)]
    white += [torchattacks.BIM(model, eps, alpha, 10), torchattacks.MIFGSM(model, eps, alpha, 10),
              torchattacks.Square(model, eps=eps, n_queries=queries, seed=0),
              autoattack(model)]
    transfer = [autoattack(surrogate), torchattacks.Square(surrogate, eps=eps, n_queries=queries, seed=0)]
    start = time.perf_counter()
    for attack in white + transfer:
        x_adv = attack(x, y)
        with torch.no_grad():
            model(x_adv).argmax(1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--square-queries", type=int, default=5000)
    parser.add_argument("--data-root", default=str(DATA))
    parser.add_argument("--overhead-only", action="store_true",
                        help="measure (a) only: no surrogate, no --attacks all, no naive loop")
    args = parser.parse_args()
    console = Console(stderr=True)
    torch.manual_seed(0)
    results = Path(tempfile.mkdtemp(prefix="medrobust-bench-"))
    request = ModelRequest(model="resnet18", dataset="d12", image_size=args.image_size,
                           train=TrainConfig(epochs=args.epochs), augment=False, n_train=1000)
    cfg = RunConfig(request=request, attacks="pgd-10", presets=("paper",), n_test=args.n_test,
                    data_root=args.data_root, results_dir=results, progress=False, checks=False)
    # Train the target first (and the surrogate before (b)): training is not attack time.
    runner_report = benchmark(cfg, lambda event: console.print(event.message, markup=False))
    model = runner_report.checkpoint.model.eval()
    from robustbench_med.data import load_dataset
    from robustbench_med.device import resolve_device
    from robustbench_med.models.zoo import Zoo
    from robustbench_med.workflow import obtain_surrogate

    data = load_dataset("d12", data_root=args.data_root, image_size=args.image_size, n_test=args.n_test)
    x, y = data.test.x, data.test.y

    overhead = {k: engine_overhead(model, x, y, k) for k in (10, 100)}
    print(f"device {next(model.parameters()).device}, threads {torch.get_num_threads()}, "
          f"n_test {args.n_test}, image {args.image_size}px", flush=True)
    for k, o in overhead.items():
        print(f"(a) PGD-{k}: {o['pgd_s']:.3f} s vs {k} x fwd+bwd {o['fwd_bwd_s']:.4f} s -> ratio "
              f"{o['ratio']:.3f} (target <= 1.05); with early stop {o['ratio_early_stop']:.3f}", flush=True)
    if args.overhead_only:
        return
    # trained here: training is not attack time
    surrogate = obtain_surrogate(request, data, Zoo(results / "zoo"),
                                 resolve_device(cfg.device), "resnet101")
    paper_set = ",".join(r.spec.name_for(args.square_queries) if r.spec.name.startswith("square")
                         else r.name for r in parse_attacks("all"))
    all_cfg = dataclasses.replace(cfg, attacks=paper_set, results_dir=results / "all")
    (results / "all").mkdir()
    import shutil

    shutil.copytree(results / "zoo", results / "all" / "zoo")
    start = time.perf_counter()
    benchmark(all_cfg, lambda event: console.print(event.message, markup=False))
    ours = time.perf_counter() - start
    naive = naive_loop(model, surrogate, x, y, args.square_queries)

    print(f"square queries {args.square_queries}; "
          f"(b) --attacks all (paper preset: {paper_set}): {ours:.1f} s; "
          f"naive torchattacks loop: {naive:.1f} s; ratio {ours / naive:.3f} (target <= 0.3)")


if __name__ == "__main__":
    main()
