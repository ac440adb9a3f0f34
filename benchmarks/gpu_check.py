"""The measurements behind ``benchmarks/gpu_check.sh``; each subcommand prints ``key: value`` lines.

- ``pgd``: PGD-100 images/s at 128 px (early stop off: every image takes all 100 steps) on
  ResNet18 and MAIL-RN18 (untrained, D12's shape: 1 channel, 2 classes), placed as medrobust
  places them (:func:`robustbench_med.device.place_model`: channels-last on CUDA), and the ratio
  of a PGD-100 batch to 100 x one forward+backward of the same batch (target <= 1.05); then
  what channels-last buys: one forward+backward in contiguous memory over one in channels-last.
  CUDA timings synchronise before reading the clock.
- ``train-epoch``: one training epoch of MAIL-RN18 at 128 px on D12 through the benchmark's own
  ``train_model`` (batch 32, no augmentation; the time includes the epoch's validation pass),
  in images/s; ``--precision bf16`` trains with ``TrainConfig(amp="bf16")`` (bf16 autocast).

``GPU_CHECK_DRY_RUN=1`` runs everything on the CPU at toy sizes: a check of this script, not a
measurement.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from timing import median_seconds, sync

DRY = os.environ.get("GPU_CHECK_DRY_RUN") == "1"


def device() -> torch.device:
    if DRY:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA GPU visible to torch")
    return torch.device("cuda")


def pgd(args: argparse.Namespace) -> None:
    from robustbench_med.data.spec import DataInfo, TaskInfo
    from robustbench_med.device import place_model
    from robustbench_med.models.builder import build_model

    dev, size = device(), 32 if DRY else args.image_size
    steps, batch = (5 if DRY else 100), (4 if DRY else args.batch)
    info = DataInfo("d12", 1, size, (TaskInfo("d12", 2),), ((0.5,),), ((0.25,),))
    torch.manual_seed(0)
    x = torch.rand(batch, 1, size, size, device=dev)
    y = torch.randint(0, 2, (batch,), device=dev)
    for name in args.models:
        model = place_model(build_model(name, info, seed=0), dev).eval()
        one, full = pgd_seconds(model, x, y, steps, dev)
        print(f"pgd-{steps} {name}: {batch / full:.1f} images/s at {size} px, batch {batch}; "
              f"ratio to {steps} x fwd+bwd {full / (steps * one):.3f} (fwd+bwd {one * 1000:.2f} ms)",
              flush=True)
        plain, last = (median_seconds(forward_backward(
            place_model(build_model(name, info, seed=0), dev, channels_last=layout).eval(), x, y), dev,
            2 if DRY else 10)
            for layout in (False, True))
        print(f"channels-last {name}: fwd+bwd contiguous / channels-last = {plain / last:.2f} "
              f"({plain * 1000:.2f} / {last * 1000:.2f} ms, fp32, {size} px, batch {batch}; "
              "medrobust uses channels-last on CUDA)", flush=True)


def forward_backward(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One forward+backward to the inputs, as an attack step computes it."""
    def run() -> None:
        xr = x.detach().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xr), y), xr)
    return run


def pgd_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
                dev: torch.device) -> tuple[float, float]:
    """(one forward+backward, one PGD-``steps`` batch), median seconds."""
    from robustbench_med.attacks.iterative import IterativeLinf
    from robustbench_med.attacks.spec import PAPER_EPS, PAPER_STEP

    attack = IterativeLinf(model, eps=PAPER_EPS, alpha=PAPER_STEP, steps=steps, random_start=True,
                           early_stop=False)
    return (median_seconds(forward_backward(model, x, y), dev, 10),
            median_seconds(lambda: attack(x, y), dev, 3))


def train_epoch(args: argparse.Namespace) -> None:
    from robustbench_med.data.loading import load_dataset
    from robustbench_med.models.builder import build_model
    from robustbench_med.training.config import TrainConfig
    from robustbench_med.training.loop import train_model
    from robustbench_med.training.strategies import default_strategy

    dev, size = device(), 32 if DRY else args.image_size
    data = load_dataset("d12", data_root=args.data_root, image_size=size, augment=False,
                        n_train=64 if DRY else None, n_val=32 if DRY else None, n_test=32 if DRY else None)
    config = TrainConfig(recipe="paper", epochs=1, batch_size=32,
                         amp="bf16" if args.precision == "bf16" else "off")
    model = build_model(args.model, data.info, seed=0)
    sync(dev)
    start = time.perf_counter()
    result = train_model(model, data, config, dev, strategy=default_strategy(config))
    sync(dev)
    seconds = time.perf_counter() - start
    backoff = result.history[0].get("micro_batch")
    note = f"; out of memory: micro-batches of {backoff}" if backoff else ""
    print(f"train-epoch {args.model} {args.precision} (amp={config.amp}): "
          f"{len(data.train) / seconds:.1f} images/s ({len(data.train)} images at {size} px, batch 32, "
          f"{seconds:.1f} s incl. validation{note})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pgd")
    p.add_argument("--models", nargs="+", default=["resnet18", "mail_rn18"])
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch", type=int, default=128)
    t = sub.add_parser("train-epoch")
    t.add_argument("--model", default="mail_rn18")
    t.add_argument("--image-size", type=int, default=128)
    t.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    t.add_argument("--data-root", default=os.environ.get("MEDROBUST_DATA"))
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True  # as robustbench_med.device.prepare_device does on CUDA
    {"pgd": pgd, "train-epoch": train_epoch}[args.command](args)


if __name__ == "__main__":
    main()
