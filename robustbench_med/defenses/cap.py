"""CAP: Contour Attention Preserving (Xiang et al., AAAI 2023; code Quinn777/CAP).

A training recipe, not a layer: the deployed network is the backbone itself,
deterministic. Per batch (official ``src/trainer/cap.py``):

1. ``x_aug``: the contour augmentation (``contour.py``).
2. ``x_adv``: TRADES-style attack maximising ``KL(f(x) || f(x_adv))`` from
   ``x + 0.001 * N(0, 1)``, model in eval mode.
3. After a warm-up, the "contour attention" weight perturbation (AWP-like):
   the attention weights move by ``gamma * ||w|| * g / ||g||`` with ``g`` the
   gradient of ``CE(f(x), y) - beta * KL(f(x) || f(x_aug))`` -- the official
   proxy model takes one plain-SGD step on the negated loss and keeps the
   rescaled difference, which is this direction -- the training step runs on
   the perturbed weights, and the perturbation is removed after the step.
4. Loss: ``mean ||p(x) - y_s||^2 + beta * mean ||p(x_adv) - p(x)||^2`` on
   softmax probabilities, ``y_s = e * p(x_aug) + (1 - e) * onehot(y)``, with
   ``e`` the attack's eps (the official code reuses that variable), beta 3.

Choices:

- Which weights are "attention": the official code takes every parameter
  whose name contains ``attn`` (ViT attention). Option ``attention`` is a
  regular expression over parameter names (multi-dimensional weights only);
  ``auto`` matches ViT-style ``attn``/``attention`` modules, channel-attention
  modules named ``ca``/``se``, and MAIL's EMCAMs (its channel attention and
  cross-modal attention), the modules CAP would perturb when put into MAIL.
  A plain ResNet has none, so there CAP is "CAP-lite": steps 1, 2 and 4.
- The gradient in step 3 is taken on the model itself in train mode with its
  BatchNorm statistics restored afterwards (the official proxy is a copy).
- Attack settings: the benchmark's eps, step and step count (official 0.03,
  0.00784, 10). Warm-up: 20/200 of the epoch budget (option ``warmup``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustbench_med.attacks.engine import eval_mode, gaussian_start, linf_attack
from robustbench_med.data.spec import DataInfo
from robustbench_med.defenses.base import Defense, register_defense
from robustbench_med.defenses.contour import contour_augment
from robustbench_med.defenses.options import BackboneBuilder, defense_factory, parse_defense_options
from robustbench_med.defenses.recipe import PGDSettings, scaled_delay
from robustbench_med.defenses.surgery import preserved_batchnorm_stats
from robustbench_med.errors import BadInputError
from robustbench_med.models.classifier import task_logits
from robustbench_med.models.losses import labels_per_task
from robustbench_med.training.strategies import TrainingStrategy

NAME = "cap"
WARMUP_FRACTION = 20 / 200  # official awp_warmup 20 of 200 epochs
AUTO_ATTENTION = r"(^|\.)(\w*attn\w*|\w*attention\w*|ca|se|emcams?)(\.|$)"


@dataclass(frozen=True)
class CAPOptions:
    """``--defense-option`` keys of CAP (all of them shape the training recipe)."""

    beta: float = 3.0
    gamma: float = 1e-4  # size of the attention-weight perturbation, relative to each weight's norm
    warmup: int | None = None  # epochs before the perturbation; None: 20/200 of the budget
    attention: str = "auto"  # regex over parameter names, "auto", or "none"
    threshold: float = 127 / 255  # pixels brighter than this keep their values in x_aug
    window: int | None = None  # guided-filter window; None: 3 under 112 px, else 5
    filter_eps: float = 0.003

    def __post_init__(self) -> None:
        if self.attention not in ("auto", "none"):
            try:
                re.compile(self.attention)
            except re.error as exc:
                raise BadInputError(f"CAP attention is not a regular expression: {exc}") from exc

    def pattern(self) -> str | None:
        return {"auto": AUTO_ATTENTION, "none": None}.get(self.attention, self.attention)


def attention_weights(model: nn.Module, pattern: str | None) -> dict[str, nn.Parameter]:
    """The multi-dimensional trainable weights whose names match ``pattern``."""
    if pattern is None:
        return {}
    regex = re.compile(pattern, re.IGNORECASE)
    return {name: p for name, p in model.named_parameters()
            if p.requires_grad and p.ndim > 1 and "weight" in name and regex.search(name)}


@defense_factory(CAPOptions, NAME)
def build(build_backbone: BackboneBuilder, info: DataInfo, options: CAPOptions) -> nn.Module:
    """The backbone unchanged: CAP is all in its training recipe."""
    return build_backbone()


def probabilities(output: Any) -> list[torch.Tensor]:
    return [F.softmax(logits, dim=1) for logits in task_logits(output)]


def trades_examples(model: nn.Module, x: torch.Tensor, pgd: PGDSettings) -> torch.Tensor:
    """L-inf examples maximising KL(p(x) || p(x_adv)), from x + 0.001 N(0, 1), in eval mode.

    The benchmark's loop (:func:`~robustbench_med.attacks.engine.linf_attack`) with TRADES'
    start (at ``x`` itself the KL gradient is zero) and loss; the loss needs no labels, so the
    loop's label slot carries ``x``.
    """
    with eval_mode(model):
        with torch.no_grad():
            clean = probabilities(model(x))

        def kl_to_clean(output: Any, _: torch.Tensor) -> torch.Tensor:
            return sum(F.kl_div(F.log_softmax(logits, 1), p, reduction="sum")
                       for logits, p in zip(task_logits(output), clean, strict=True))

        return linf_attack(model, x, x, eps=pgd.eps, step=pgd.step, steps=pgd.steps,
                           start=gaussian_start(x, 0.001), loss=kl_to_clean)


def hybrid_loss(output: Any, output_aug: Any, output_adv: Any, y: torch.Tensor, smoothing: float,
                beta: float) -> torch.Tensor:
    """CAP's squared-L2 loss on probabilities, averaged over tasks."""
    terms = []
    for p, p_aug, p_adv, yt in zip(probabilities(output), probabilities(output_aug),
                                   probabilities(output_adv), labels_per_task(y), strict=True):
        target = smoothing * p_aug + (1 - smoothing) * F.one_hot(yt, p.shape[1]).to(p.dtype)
        natural = ((p - target) ** 2).sum(1).mean()
        robust = ((p_adv - p) ** 2).sum(1).mean()
        terms.append(natural + beta * robust)
    return sum(terms) / len(terms)


class CAPTraining(TrainingStrategy):
    """Contour augmentation, TRADES-KL attack, attention-weight perturbation, hybrid L2 loss."""

    name = "cap"

    def __init__(self, pgd: PGDSettings, options: CAPOptions, warmup: int) -> None:
        self.pgd, self.options, self.warmup = pgd, options, warmup
        self._applied: list[tuple[nn.Parameter, torch.Tensor]] = []

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.name, **self.pgd.as_dict(), "beta": self.options.beta,
                "gamma": self.options.gamma, "warmup": self.warmup,
                "attention": self.options.attention, "smoothing": self.pgd.eps,
                "attack": "trades-kl", "loss": "l2(p, y_smooth) + beta * l2(p_adv, p)"}

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        o = self.options
        return contour_augment(x, threshold=o.threshold, window=o.window, eps=o.filter_eps)

    def perturbation(self, model: nn.Module, x: torch.Tensor, x_aug: torch.Tensor,
                     y: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """``gamma * ||w|| * g / ||g||`` per attention weight, g the gradient of CE - beta * KL."""
        weights = list(attention_weights(model, self.options.pattern()).values())
        if not weights:
            return []
        with preserved_batchnorm_stats(model):
            clean, aug = task_logits(model(x)), task_logits(model(x_aug))
        loss = sum(F.cross_entropy(c, yt) - self.options.beta * F.kl_div(
            F.log_softmax(a, 1), F.softmax(c, 1), reduction="batchmean")
            for c, a, yt in zip(clean, aug, labels_per_task(y), strict=True))
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
        return [(w, self.options.gamma * w.detach().norm() / (g.norm() + 1e-20) * g)
                for w, g in zip(weights, grads, strict=True) if g is not None]

    def batch_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   epoch: int) -> torch.Tensor:
        x_aug = self.augment(x)
        x_adv = trades_examples(model, x, self.pgd)
        self._restore()
        if epoch > self.warmup:
            self._applied = self.perturbation(model, x, x_aug, y)
            with torch.no_grad():
                for weight, delta in self._applied:
                    weight.add_(delta)
        return hybrid_loss(model(x), model(x_aug), model(x_adv), y, self.pgd.eps, self.options.beta)

    def _restore(self) -> None:
        with torch.no_grad():
            for weight, delta in self._applied:
                weight.sub_(delta)
        self._applied = []

    def after_step(self, model: nn.Module, epoch: int) -> None:
        """Remove the perturbation once the optimiser has stepped (official ``restore``)."""
        self._restore()
        super().after_step(model, epoch)


def strategy(config: Any, defense_options: dict[str, Any]) -> CAPTraining:
    options = parse_defense_options(CAPOptions, defense_options, NAME)
    return CAPTraining(PGDSettings.of(config), options,
                       scaled_delay(WARMUP_FRACTION, config.epochs, options.warmup))


DEFENSE = register_defense(Defense(
    name=NAME, build=build, randomized=False,
    reference="Xiang et al., AAAI 2023, 37(3):2928-2937 (arXiv 2211.16806); code Quinn777/CAP",
    summary="Training recipe: guided-filter contour augmentation, TRADES-KL attack, attention-weight "
            "perturbation (none on a plain CNN), squared-L2 loss on probabilities with "
            "contour-smoothed labels (beta 3).",
    strategy=strategy,
    evaluation="Deterministic: standard PGD and AutoAttack. Its contour augmentation assumes CT-like "
               "intensities (dark lungs below 127/255); on colour images it works on the luma.",
))
