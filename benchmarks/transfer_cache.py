"""Ratio (b) on a two-target grid: ``--attacks all`` with the transfer cache / the naive loop.

Two undefended ResNet18 targets (train seeds 0 and 1) on the same D12 test points share one
surrogate. Our side runs the evaluation runner of ``medrobust run`` with ``--attacks all`` (paper
preset, no masking checks) on each target in turn against one results store, so the second target
reuses the surrogate's transfer examples from ``<results>/transfer-cache``. The naive side runs every
torchattacks attack (PGD-10/20/50/100, BIM-10, MIFGSM-10, Square, AutoAttack, and both transfer
attacks crafted on the surrogate) over every test point of each target, as a user without the
protocol would. Square's budget is ``--square-queries`` on both sides, inside AutoAttack too.
Printed: the ratio for the grid (both targets) and for one target (the first, a cache miss), and
where our side's time goes. Training is not timed.

Usage: OMP_NUM_THREADS=1 python benchmarks/transfer_cache.py [--n-test 20] [--image-size 28]
       [--square-queries 100] [--surrogate resnet18] [--n-train 400] [--epochs 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torchattacks

from robustbench_med.attacks.autoattack import AutoAttackFn
from robustbench_med.attacks.spec import PAPER_EPS, PAPER_STEP
from robustbench_med.data import load_dataset
from robustbench_med.evaluation.runner import GridRunner, GridSettings
from robustbench_med.evaluation.subject import from_checkpoint
from robustbench_med.models.zoo import Zoo
from robustbench_med.store import STORE_NAME, ResultStore
from robustbench_med.training import TrainConfig
from robustbench_med.workflow import ModelRequest, surrogate_request, train_and_save

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CPU = torch.device("cpu")


def naive_loop(model: torch.nn.Module, surrogate: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
               queries: int) -> float:
    """Every attack over every test point of one target (pyautoattack's AutoAttack with our binary
    plan: torchattacks' cannot run a binary task)."""
    eps, alpha = PAPER_EPS, PAPER_STEP

    def autoattack(net: torch.nn.Module) -> AutoAttackFn:
        return AutoAttackFn(net, eps, 2, "standard", CPU, 0, [], queries)

    attacks = [torchattacks.PGD(model, eps, alpha, k) for k in (10, 20, 50, 100)]
    attacks += [torchattacks.BIM(model, eps, alpha, 10), torchattacks.MIFGSM(model, eps, alpha, 10),
                torchattacks.Square(model, eps=eps, n_queries=queries, seed=0), autoattack(model),
                autoattack(surrogate), torchattacks.Square(surrogate, eps=eps, n_queries=queries, seed=0)]
    start = time.perf_counter()
    for attack in attacks:
        x_adv = attack(x, y)
        with torch.no_grad():
            model(x_adv).argmax(1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--square-queries", type=int, default=100)
    parser.add_argument("--surrogate", default="resnet18")
    parser.add_argument("--data-root", default=str(DATA))
    args = parser.parse_args()
    results = Path(tempfile.mkdtemp(prefix="medrobust-transfer-cache-"))
    zoo = Zoo(results / "zoo")
    data = load_dataset("d12", data_root=args.data_root, image_size=args.image_size,
                        n_train=args.n_train, n_test=args.n_test)

    def request(model: str, seed: int) -> ModelRequest:
        return ModelRequest(model=model, dataset="d12", image_size=args.image_size, augment=False,
                            train=TrainConfig(epochs=args.epochs, batch_size=32, seed=seed),
                            n_train=args.n_train)

    targets = [train_and_save(request("resnet18", seed), data, zoo, CPU)
               for seed in (0, 1)]
    surrogate = train_and_save(surrogate_request(request("resnet18", 0), args.surrogate), data, zoo,
                               CPU).model.eval()
    settings = GridSettings(attacks="all", presets=("paper",), checks=False, batch_size=128,
                            square_queries=args.square_queries, surrogate_name=args.surrogate)
    store = ResultStore(results / STORE_NAME)
    ours, cells = [], []
    for ckpt in targets:
        start = time.perf_counter()
        report = GridRunner(from_checkpoint(ckpt), data.test, data.info, settings, device=CPU,
                            store=store, surrogate=surrogate).run()
        ours.append(time.perf_counter() - start)
        cells.append(report.cells)
    naive = [naive_loop(ckpt.model.eval(), surrogate, data.test.x, data.test.y, args.square_queries)
             for ckpt in targets]
    print(f"threads {torch.get_num_threads()}, n_test {args.n_test}, {args.image_size} px, square "
          f"queries {args.square_queries}, targets resnet18 seeds 0/1 ({args.epochs} epoch(s) on "
          f"{args.n_train} images), surrogate {args.surrogate}")
    for i, target_cells in enumerate(cells):
        where = ", ".join(f"{c.key.attack} {c.wall_s:.1f} s"
                          + (f" ({c.settings['transfer_cache']})" if "transfer_cache" in c.settings else "")
                          for c in target_cells)
        print(f"target {i}: ours {ours[i]:.1f} s, naive {naive[i]:.1f} s; cells: {where}")
    print(f"(b) one target: {ours[0] / naive[0]:.3f} ({ours[0]:.1f} s / {naive[0]:.1f} s)")
    print(f"(b) two-target grid: {sum(ours) / sum(naive):.3f} ({sum(ours):.1f} s / {sum(naive):.1f} s) "
          "(target <= 0.3)")


if __name__ == "__main__":
    main()
