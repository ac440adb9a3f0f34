"""The built-in attacks, registered under the names users type."""

from __future__ import annotations

from torch import nn

from robustbench_med.attacks.autoattack import FORWARD_SHARE, autoattack_passes, build_autoattack
from robustbench_med.attacks.iterative import IterativeLinf
from robustbench_med.attacks.spec import AttackContext, AttackFn, AttackSettings, AttackSpec
from robustbench_med.attacks.square import DEFAULT_QUERIES, build_square
from robustbench_med.attacks.transfer import build_aa_surrogate, build_square_surrogate
from robustbench_med.models.losses import multitask_loss
from robustbench_med.registry import ATTACKS

PAPER_STEPS = (10, 20, 50, 100)


def _iterative(decay: float):
    def build(model: nn.Module, settings: AttackSettings, ctx: AttackContext) -> AttackFn:
        assert settings.steps is not None and settings.alpha is not None
        return IterativeLinf(model, eps=settings.eps, alpha=settings.alpha, steps=settings.steps,
                             random_start=settings.random_start, decay=decay,
                             eot_iter=settings.eot_iter if ctx.randomized else 1,
                             early_stop=not ctx.randomized,
                             loss_fn=multitask_loss if ctx.joint else None)
    return build


def stepped_passes(settings: AttackSettings, n_classes: int) -> float | None:
    """PGD, BIM, MIM: one forward+backward per step and gradient sample."""
    return None if settings.steps is None else float(settings.steps * settings.eot_iter)


def query_passes(settings: AttackSettings, n_classes: int) -> float:
    """Square: one forward per query (a third of a forward+backward)."""
    return (settings.steps or DEFAULT_QUERIES) * FORWARD_SHARE


def autoattack_standard_passes(settings: AttackSettings, n_classes: int) -> float:
    return autoattack_passes(n_classes, "standard", settings.square_queries)


def autoattack_rand_passes(settings: AttackSettings, n_classes: int) -> float:
    return autoattack_passes(n_classes, "rand", settings.square_queries)


# Our own loop: it can attack a multi-task model jointly (ctx.joint), as the paper's code does.
JOINT_CAPABLE = ("pgd", "bim", "mim", "eot-pgd")


def register(spec: AttackSpec) -> AttackSpec:
    ATTACKS.add(spec.name, spec, origin="medrobust")
    return spec


register(AttackSpec(
    name="pgd", build=_iterative(0.0), box="white-box", library="medrobust (torchattacks Attack)",
    description="PGD (Madry et al. 2018): random start, sign steps, projection to the eps-ball",
    cost="K forward+backward per point (fewer: a broken point stops)", default_steps=10,
    listed_steps=PAPER_STEPS, in_all=PAPER_STEPS, random_start=True,
    passes=stepped_passes,
))
register(AttackSpec(
    name="bim", build=_iterative(0.0), box="white-box", library="medrobust (torchattacks Attack)",
    description="BIM (Kurakin et al. 2017): PGD from the clean image",
    cost="K forward+backward per point", default_steps=10, listed_steps=(10,), in_all=(10,),
    passes=stepped_passes,
))
register(AttackSpec(
    name="mim", build=_iterative(1.0), box="white-box", library="medrobust (torchattacks Attack)",
    description="MIM (Dong et al. 2018): momentum 1.0 on L1-normalised gradients",
    cost="K forward+backward per point", default_steps=10, listed_steps=(10,), in_all=(10,),
    passes=stepped_passes,
))
register(AttackSpec(
    name="eot-pgd", build=_iterative(0.0), box="white-box", library="medrobust (torchattacks Attack)",
    description="PGD with EOT: each step averages the gradient over 20 fresh random draws",
    cost="20 x K forward+backward per point", default_steps=10, listed_steps=(10, 20, 100),
    in_all=(20,), adaptive=True, random_start=True, eot_iter=20,
    passes=stepped_passes,
))
register(AttackSpec(
    name="square", build=build_square, box="black-box", library="pyautoattack",
    description="Square Attack (Andriushchenko et al. 2020): random square updates, margin loss",
    cost="up to K forward passes per point (K = queries, default 5000)", presets=("standard",),
    default_steps=DEFAULT_QUERIES, listed_steps=(DEFAULT_QUERIES,), in_all=(DEFAULT_QUERIES,),
    count_in_name=False, uses_step=False,
    passes=query_passes,
))
register(AttackSpec(
    name="autoattack", build=build_autoattack("standard"), box="white-box", library="pyautoattack",
    description="AutoAttack standard (APGD-CE, APGD-T, FAB-T, Square); few-class substitutions noted",
    cost="about 100 x (1 + targets) forward+backward per point, plus Square", presets=("standard",),
    in_all=(None,),
    passes=autoattack_standard_passes,
))
register(AttackSpec(
    name="autoattack-rand", build=build_autoattack("rand"), box="white-box", library="pyautoattack",
    description="AutoAttack for randomized defenses: APGD-CE and APGD-DLR with EOT over 20 draws",
    cost="20 x 100 forward+backward per point per attack", presets=("standard",), in_all=(None,),
    adaptive=True,
    passes=autoattack_rand_passes,
))
register(AttackSpec(
    name="aa-surrogate", build=build_aa_surrogate, box="transfer", library="pyautoattack",
    description="the paper's black-box AutoAttack: crafted on a ResNet101 surrogate, transferred",
    cost="AutoAttack on the surrogate + 1 forward on the target", presets=("standard",),
    in_all=(None,),
    passes=autoattack_standard_passes,
))
register(AttackSpec(
    name="square-surrogate", build=build_square_surrogate, box="transfer", library="pyautoattack",
    description="the paper's black-box Square: crafted on a ResNet101 surrogate, transferred",
    cost="Square on the surrogate + 1 forward on the target", presets=("standard",),
    default_steps=DEFAULT_QUERIES, listed_steps=(DEFAULT_QUERIES,), in_all=(DEFAULT_QUERIES,),
    count_in_name=False, uses_step=False,
    passes=query_passes,
))
