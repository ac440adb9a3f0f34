"""Gradient scale at initialisation: each model's first-conv gradient norm / mail_rn18's, real images.

Why it is here: Robust-MAIL never leaves the majority class at our CPU budgets
(leaderboards/README.md), with SGD, clipped SGD or the notebook's Adam. Its
modulated attention noise multiplies features by powers of noisy gates
((s * gate)^3 in every EMILA, A * A_n^5 in EMCAM); the next BatchNorm
rescales the shrunken activations and so scales their gradients up, block
after block. This script measures that, one training-mode step on a batch of
real training images, over a few seeds, so the claim can be rechecked.

    python benchmarks/init_gradients.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
from torch import nn

from robustbench_med.data.loading import load_dataset
from robustbench_med.errors import MedrobustError
from robustbench_med.models.builder import build_model
from robustbench_med.training import multitask_loss

MODELS = ("mail_rn18", "robust_mail-no-rpan", "robust_mail-rpf-only", "robust_mail-man-only",
          "robust_mail", "robust_mail_code")


def first_conv_grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """L2 norm of the loss gradient on the first convolution's weights, training mode."""
    model.train()
    model.zero_grad(set_to_none=True)
    multitask_loss(model(x), y).backward()
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.grad is not None)
    return float(conv.weight.grad.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--dataset", default="d12")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    try:
        data = load_dataset(args.dataset, data_root=args.data_root, image_size=args.image_size,
                            n_train=args.batch)
        x, y = data.train.x, data.train.y
        print(f"{args.dataset}, {len(x)} training images at {args.image_size} px, {args.seeds} seeds, "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        norms = {}
        for name in args.models.split(","):
            values = [first_conv_grad_norm(build_model(name, data.info, seed=s), x, y)
                      for s in range(args.seeds)]
            norms[name] = statistics.median(values)
    except MedrobustError as error:  # bad model or dataset name, missing data: one line, exit 2
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    reference = "mail_rn18" if "mail_rn18" in norms else next(iter(norms))
    for name, value in norms.items():
        print(f"{name:24s} first-conv gradient norm {value:12.4g}   / {reference} "
              f"{value / norms[reference]:10.3g}")


if __name__ == "__main__":
    main()
