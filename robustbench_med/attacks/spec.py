"""What an attack is: a registered family, its settings under a preset, and how names parse.

An attack family (``pgd``) is registered once; a name such as ``pgd-37``
picks its iteration count. A preset fixes the step rule and the start:

- ``paper``: eps 4/255, step 10/255, as the paper writes it (the step is
  larger than eps, so each step jumps to a corner of the ball);
- ``standard``: step 2.5 * eps / K;
- ``code``: eps 4/255, step 1/255, no random start (what the notebook ran).

PGD starts at a uniform random point of the ball under ``paper`` and
``standard`` (Madry et al.); BIM and MIM start at the clean image under every
preset, as their papers define them.

Attacks without a step (AutoAttack, Square, transfer) run under ``standard``
only and say so in their row; a preset never changes an attack silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from robustbench_med.errors import BadInputError, UnknownNameError
from robustbench_med.registry import ATTACKS, nearest

PRESETS = ("paper", "standard", "code")
PAPER_EPS = 4 / 255
PAPER_STEP = 10 / 255
CODE_STEP = 1 / 255

AttackFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_preset(preset: str) -> None:
    """A clear error for a preset name that does not exist."""
    if preset not in PRESETS:
        near = nearest(preset, list(PRESETS))
        raise BadInputError(f"unknown preset '{preset}'" + (f"; did you mean '{near}'?" if near
                            else "") + f" (allowed: {', '.join(PRESETS)})")


@dataclass(frozen=True)
class AttackSettings:
    """The resolved numbers an attack runs with; stored with its row."""

    eps: float
    preset: str
    steps: int | None = None
    alpha: float | None = None
    random_start: bool = False
    eot_iter: int = 1
    square_queries: int | None = None  # Square's query budget inside a composite attack (AutoAttack)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        out = {"eps": self.eps, "preset": self.preset, "steps": self.steps, "alpha": self.alpha,
               "random_start": self.random_start, "eot_iter": self.eot_iter}
        if self.square_queries is not None:
            out["square_queries"] = self.square_queries
        out.update(self.extra)
        return out


@dataclass
class AttackContext:
    """What an attack may need beyond the model: device, classes, seed, a surrogate."""

    device: torch.device
    n_classes: int
    seed: int = 0
    randomized: bool = False
    joint: bool = False  # multi-task model: perturb all inputs with the sum of task losses
    surrogate: Callable[[], nn.Module] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack family and its metadata."""

    name: str
    build: Callable[[nn.Module, AttackSettings, AttackContext], AttackFn]
    description: str
    box: str  # "white-box", "black-box" or "transfer"
    library: str
    cost: str  # forward/backward passes, in words
    presets: tuple[str, ...] = PRESETS
    default_steps: int | None = None
    listed_steps: tuple[int, ...] = ()
    in_all: tuple[int | None, ...] = ()  # steps values run by ``--attacks all``
    adaptive: bool = False  # built for randomized models (EOT)
    random_start: bool = False  # starts at a random point of the ball (except under ``code``)
    eot_iter: int = 1  # gradient samples per step against randomized models
    count_in_name: bool = True  # pgd-10 names its steps; square names its queries only if not default
    uses_step: bool = True  # a gradient step size (PGD); False: K counts queries (Square)
    threat: str = "Linf"
    # At most how many forward+backward passes the attack spends on one point, from its settings and
    # the task's classes (a transfer attack's are on the surrogate, over every test point); what a
    # cell's cost is estimated from when no similar cell is stored. None: unknown.
    passes: Callable[[AttackSettings, int], float | None] | None = None

    @property
    def iterative(self) -> bool:
        return self.default_steps is not None

    def listed_names(self) -> list[str]:
        if not self.iterative:
            return [self.name]
        return [self.name_for(k) for k in self.listed_steps]

    def name_for(self, steps: int | None) -> str:
        if steps is None or (not self.count_in_name and steps == self.default_steps):
            return self.name
        return f"{self.name}-{steps}"

    def settings(self, preset: str, eps: float | None, steps: int | None) -> AttackSettings:
        """The settings under ``preset`` (``eps`` None: the preset's eps)."""
        check_preset(preset)
        eps = PAPER_EPS if eps is None else eps
        k = steps if steps is not None else self.default_steps
        if k is None or not self.uses_step:
            return AttackSettings(eps=eps, preset=preset, steps=k, eot_iter=self.eot_iter)
        alpha = {"paper": PAPER_STEP, "code": CODE_STEP}.get(preset, 2.5 * eps / k)
        return AttackSettings(eps=eps, preset=preset, steps=k, alpha=alpha,
                              random_start=self.random_start and preset != "code",
                              eot_iter=self.eot_iter)


@dataclass(frozen=True)
class AttackRequest:
    """A parsed attack name: the family and its iteration count."""

    spec: AttackSpec
    steps: int | None

    @property
    def name(self) -> str:
        return self.spec.name_for(self.steps)

    def presets_for(self, wanted: list[str]) -> list[str]:
        """The requested presets this attack distinguishes (at least one)."""
        chosen = [p for p in wanted if p in self.spec.presets]
        return chosen or [self.spec.presets[0]]


# The order of ``--attacks all``: white-box first (as the paper's table), then black-box.
ALL_ORDER = ("pgd", "bim", "mim", "eot-pgd", "autoattack", "autoattack-rand", "square",
             "square-surrogate", "aa-surrogate")
_NAME = re.compile(r"^(?P<family>[a-z][a-z0-9-]*?)-(?P<k>\d+)$")


def all_listed_names() -> list[str]:
    return [n for entry in ATTACKS for n in entry.obj.listed_names()]


def parse_attack(name: str) -> AttackRequest:
    """``pgd-37`` -> (pgd, 37); ``autoattack`` -> (autoattack, None); clear error otherwise."""
    key = name.strip().lower()
    if key in ATTACKS:
        spec: AttackSpec = ATTACKS.get(key)
        return AttackRequest(spec, spec.default_steps)
    match = _NAME.match(key)
    if match and match["family"] in ATTACKS:
        spec = ATTACKS.get(match["family"])
        k = int(match["k"])
        if not spec.iterative:
            raise BadInputError(f"attack '{spec.name}' takes no iteration count; use '{spec.name}'")
        if not 1 <= k <= 10000:
            raise BadInputError(f"attack '{name}': iterations must be between 1 and 10000")
        return AttackRequest(spec, k)
    listed = all_listed_names()
    near = nearest(key, listed)
    raise UnknownNameError(
        f"unknown attack '{name}'" + (f"; did you mean '{near}'?" if near else "")
        + f" (known attacks: {', '.join(listed)}, or any <family>-K such as pgd-37)"
    )


def parse_attacks(text: str, *, randomized: bool = False, paired: bool = False) -> list[AttackRequest]:
    """A comma-separated list; ``all`` expands to the paper's full set (plus EOT when randomized;
    without the transfer attacks for a paired dataset, whose surrogate would see one dataset)."""
    requests: list[AttackRequest] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.lower() == "all":
            specs = sorted((e.obj for e in ATTACKS), key=lambda sp: (
                ALL_ORDER.index(sp.name) if sp.name in ALL_ORDER else len(ALL_ORDER), sp.name))
            for spec in specs:
                if (spec.adaptive and not randomized) or (paired and spec.box == "transfer"):
                    continue
                requests.extend(AttackRequest(spec, k) for k in spec.in_all)
        else:
            request = parse_attack(part)
            if paired and request.spec.box == "transfer":
                raise BadInputError(f"attack '{request.name}' transfers from a surrogate trained on one "
                                    "dataset; it cannot attack a paired dataset (use it per dataset)")
            requests.append(request)
    if not requests:
        raise BadInputError("no attack given (e.g. --attacks pgd-10 or --attacks all)")
    unique: dict[str, AttackRequest] = {}
    for request in requests:
        unique.setdefault(request.name, request)
    return list(unique.values())
