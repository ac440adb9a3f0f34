"""One MAIL-RN18 training step over one ResNet18 training step, measured in one run.

A step is forward + backward + SGD update on the same random batch, both
models single-modality (m = 1) so they see the same input; the project's
torchvision ResNet18 comes from the registry. Each side is warmed up, then
the median of several interleaved repeats is taken. Target: ratio <= 1.5.

Threads default to 1: on a CPU shared with other processes, OpenMP threads
that wait at every operator's barrier for a descheduled sibling dominate the
time, and MAIL, with ~5x more (smaller) operators than ResNet18, pays that
far more often -- two threads on a busy 2-core machine measured 4.6x, one
thread 1.38x. ``--threads 0`` keeps torch's default (use it on a dedicated
machine).

``--model`` takes a comma-separated list (``mail_rn18,robust_mail``): every
model is timed in the same interleaved rounds and gets its own ratio.

``--device cuda`` times the steps on the GPU: batch and models live there, the
models placed as medrobust places them (:func:`robustbench_med.device.place_model`:
channels-last on CUDA; cuDNN autotuning on), and every timing synchronises the
device before reading the clock (``benchmarks/gpu_check.sh`` runs it so).

Usage: python benchmarks/mail_step_ratio.py [--image-size 128] [--batch 16] [--repeats 5]
       [--model mail_rn18[,robust_mail]] [--baseline resnet18] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from timing import sync
from torch import nn

from robustbench_med.data.spec import DataInfo, TaskInfo
from robustbench_med.device import place_model, resolve_device
from robustbench_med.errors import MedrobustError
from robustbench_med.models import build_model


def step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def timed(fn: Callable[[], None], device: torch.device) -> float:
    sync(device)  # nothing queued from before is counted
    start = time.perf_counter()
    fn()
    sync(device)  # CUDA runs asynchronously: wait for this step's kernels
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="mail_rn18", help="comma-separated models to time")
    parser.add_argument("--baseline", default="resnet18")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the steps run (cuda: synchronised timings)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)  # cuda: cuDNN autotuning, as medrobust runs
        info = DataInfo("bench", 3, args.image_size, (TaskInfo("bench", 2),), ((0.5,) * 3,),
                        ((0.25,) * 3,))
        torch.manual_seed(0)
        x = torch.rand(args.batch, 3, args.image_size, args.image_size, device=device)
        y = torch.randint(0, 2, (args.batch,), device=device)
        models = [name for name in args.model.split(",") if name]
        steps = {name: step_fn(place_model(build_model(name, info, seed=0), device), x, y)
                 for name in (*models, args.baseline)}
    except MedrobustError as error:  # no GPU, unknown model: one line, exit 2
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    for step in steps.values():  # warm-up: allocator, oneDNN primitives, cuDNN autotuning
        step()
        step()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):  # interleaved, so load changes hit both sides alike
        for name, step in steps.items():
            times[name].append(timed(step, device))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for name, median in medians.items():
        print(f"{name:>12}: {median * 1000:8.1f} ms/step (median of {args.repeats})")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    for name in models:
        ratio = medians[name] / medians[args.baseline]
        print(f"ratio {name}/{args.baseline} = {ratio:.2f} (target <= 1.5; "
              f"{medians[name] * 1000:.1f} / {medians[args.baseline] * 1000:.1f} ms), batch {args.batch}, "
              f"{args.image_size}x{args.image_size}, {where}, threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
