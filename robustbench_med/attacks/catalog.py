"""The built-in attacks, registered under the names users type."""

from __future__ import annotations

from torch import nn

from robustbench_med.attacks.iterative import IterativeLinf
from robustbench_med.attacks.spec import AttackContext, AttackFn, AttackSettings, AttackSpec
from robustbench_med.registry import ATTACKS

PAPER_STEPS = (10, 20, 50, 100)


def _iterative(decay: float):
    def build(model: nn.Module, settings: AttackSettings, ctx: AttackContext) -> AttackFn:
        assert settings.steps is not None and settings.alpha is not None
        return IterativeLinf(model, eps=settings.eps, alpha=settings.alpha, steps=settings.steps,
                             random_start=settings.random_start, decay=decay,
                             eot_iter=settings.eot_iter if ctx.randomized else 1,
                             early_stop=not ctx.randomized)
    return build


def register(spec: AttackSpec) -> AttackSpec:
    ATTACKS.add(spec.name, spec, origin="medrobust")
    return spec


register(AttackSpec(
    name="pgd", build=_iterative(0.0), box="white-box", library="medrobust (torchattacks Attack)",
    description="PGD (Madry et al. 2018): random start, sign steps, projection to the eps-ball",
    cost="K forward+backward per point (fewer: a broken point stops)", default_steps=10,
    listed_steps=PAPER_STEPS, in_all=PAPER_STEPS, random_start=True,
))
register(AttackSpec(
    name="bim", build=_iterative(0.0), box="white-box", library="medrobust (torchattacks Attack)",
    description="BIM (Kurakin et al. 2017): PGD from the clean image",
    cost="K forward+backward per point", default_steps=10, listed_steps=(10,), in_all=(10,),
))
register(AttackSpec(
    name="mim", build=_iterative(1.0), box="white-box", library="medrobust (torchattacks Attack)",
    description="MIM (Dong et al. 2018): momentum 1.0 on L1-normalised gradients",
    cost="K forward+backward per point", default_steps=10, listed_steps=(10,), in_all=(10,),
))
register(AttackSpec(
    name="eot-pgd", build=_iterative(0.0), box="white-box", library="medrobust (torchattacks Attack)",
    description="PGD with EOT: each step averages the gradient over 20 fresh random draws",
    cost="20 x K forward+backward per point", default_steps=10, listed_steps=(10, 20, 100),
    in_all=(20,), adaptive=True, random_start=True, eot_iter=20,
))
