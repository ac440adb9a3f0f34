"""Batched EOT: time of one EOT-K gradient / (K x one forward+backward of the batch), batched and looped.

Why it is here: EOT over K draws costs K forward+backward passes when each
draw is its own pass. For a model whose every random module draws afresh per
sample (:func:`robustbench_med.randomness.draws_per_sample`: Robust-MAIL's
modulated noise without RPF, ``robust_mail-man-only``), the attack engine runs
the K draws as one pass over the batch repeated K times
(:func:`robustbench_med.attacks.engine.eot_gradient`). A ratio under 1 is the
gain of the larger batch; the looped ratio is the reference (about 1 plus the
re-draw overhead). Real training images, model in eval mode, median of a few
repetitions; models whose draws are not per sample are timed on the loop only.

``--device cuda`` runs it on the GPU: images and models live there (placed as
medrobust places them, :func:`robustbench_med.device.place_model`: channels-last,
cuDNN autotuning on) and every timing synchronises the device before reading the
clock (``benchmarks/gpu_check.sh`` runs it so).

    python benchmarks/eot_batching.py --data-root ../shared/data [--device cpu]
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F
from timing import median_seconds

from robustbench_med.attacks.engine import eot_gradient
from robustbench_med.data.loading import load_dataset
from robustbench_med.device import place_model, resolve_device
from robustbench_med.errors import MedrobustError
from robustbench_med.models.builder import build_model
from robustbench_med.randomness import draws_per_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--dataset", default="d12")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="robust_mail-man-only,robust_mail")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where it runs (cuda: synchronised timings)")
    args = parser.parse_args()
    if args.batch < 1 or args.draws < 2 or args.repeats < 1:
        print("error: --batch and --repeats must be at least 1, --draws at least 2", file=sys.stderr)
        raise SystemExit(2)
    try:
        device = resolve_device(args.device)  # cuda: cuDNN autotuning, as medrobust runs
        data = load_dataset(args.dataset, data_root=args.data_root, image_size=args.image_size,
                            n_train=args.batch)
        nets = {name: place_model(build_model(name, data.info, seed=0), device).eval()
                for name in args.models.split(",")}
    except MedrobustError as error:  # no GPU, bad model or dataset name, missing data: one line, exit 2
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    x, y = data.train.x.to(device), data.train.y.to(device)
    k = args.draws
    where = (f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda"
             else f"cpu, threads {torch.get_num_threads()}")
    print(f"{args.dataset}, batch {len(x)} at {args.image_size} px, EOT-{k}, median of {args.repeats}, "
          f"torch {torch.__version__}, {where}")
    print(f"{'model':24s} {'per sample':>10s} {'fwd+bwd s':>10s} {'looped':>8s} {'batched':>8s}"
          "   (EOT time / (K x fwd+bwd))")
    for name, net in nets.items():
        one = median_seconds(lambda n=net: eot_gradient(n, x, y, F.cross_entropy, 1, n), device,
                             args.repeats)
        looped = median_seconds(lambda n=net: eot_gradient(n, x, y, F.cross_entropy, k, n, batched=False),
                                device, args.repeats)
        per_sample = draws_per_sample(net)
        batched = (median_seconds(lambda n=net: eot_gradient(n, x, y, F.cross_entropy, k, n, batched=True),
                                  device, args.repeats) if per_sample else None)
        shown = f"{batched / (k * one):8.3f}" if batched is not None else f"{'loop':>8s}"
        print(f"{name:24s} {per_sample!s:>10s} {one:10.4f} {looped / (k * one):8.3f} {shown}")


if __name__ == "__main__":
    main()
