"""Gradient scale at initialisation: each model's first-conv gradient norm / mail_rn18's, real images.

Why it is here: with the official notebook's modulated attention noise
(``man=code``), Robust-MAIL never left the majority class at our CPU budgets
(leaderboards/README.md). That noise multiplies features by powers of noisy,
clipped gates ((s * gate)^3 in every EMILA, A * A_n^5 in EMCAM); the next
BatchNorm rescales the shrunken activations and so scales their gradients
up, block after block. The paper's own equations (``man=paper``, App. B,
Eqs. 21, 24-26: eta' multiplies the pre-sigmoid terms) have no powers and no
clipping. This script measures both forms side by side, one training-mode
step on a batch of real training images, over a few seeds, so the claim can
be rechecked. A model without MAN gets the ``man=off`` column only.

    python benchmarks/init_gradients.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys

import torch
from torch import nn

from robustbench_med.data.loading import load_dataset
from robustbench_med.errors import MedrobustError
from robustbench_med.models.builder import build_model
from robustbench_med.models.losses import multitask_loss
from robustbench_med.registry import MODELS

MODELS_MEASURED = ("mail_rn18", "robust_mail-no-rpan", "robust_mail-rpf-only", "robust_mail-man-only",
                   "robust_mail-rpf-man", "robust_mail", "robust_mail_code")
FORMS = ("paper", "code")


def first_conv_grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """L2 norm of the loss gradient on the first convolution's weights, training mode."""
    model.train()
    model.zero_grad(set_to_none=True)
    multitask_loss(model(x), y).backward()
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.grad is not None)
    return float(conv.weight.grad.norm())


def man_default(name: str) -> str | None:
    """The model's ``man`` option default ("paper", "code", "off"), None when it has no such option."""
    parameter = inspect.signature(MODELS.get(MODELS.resolve(name))).parameters.get("man")
    return None if parameter is None else parameter.default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--dataset", default="d12")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS_MEASURED))
    args = parser.parse_args()
    try:
        data = load_dataset(args.dataset, data_root=args.data_root, image_size=args.image_size,
                            n_train=args.batch)
        x, y = data.train.x, data.train.y
        print(f"{args.dataset}, {len(x)} training images at {args.image_size} px, {args.seeds} seeds, "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        norms: dict[str, dict[str, float]] = {}
        for name in args.models.split(","):
            default = man_default(name)
            forms = FORMS if default in FORMS else (None,)
            norms[name] = {}
            for form in forms:
                options = {} if form is None else {"man": form}
                values = [first_conv_grad_norm(build_model(name, data.info, model_options=options, seed=s),
                                               x, y) for s in range(args.seeds)]
                norms[name][form or default or "off"] = statistics.median(values)
    except MedrobustError as error:  # bad model or dataset name, missing data: one line, exit 2
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    reference = "mail_rn18" if "mail_rn18" in norms else next(iter(norms))
    base = next(iter(norms[reference].values()))
    columns = ("paper", "code", "off")
    print(f"first-conv gradient norm at init (median over seeds), and its ratio to {reference}'s")
    print(f"{'model':24s}" + "".join(f"{'man=' + form:>14s} {'ratio':>8s}" for form in columns))
    for name, by_form in norms.items():
        cells = [f"{by_form[form]:14.4g} {by_form[form] / base:8.3g}" if form in by_form else " " * 23
                 for form in columns]
        print(f"{name:24s}" + "".join(cells))

if __name__ == "__main__":
    main()
