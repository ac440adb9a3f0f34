"""The name under which an attack's cells are stored, one rule for the runner that writes them and
for the code that looks them up without running them (``grid plan``, the sweep plot).

Square at a non-default budget names its queries (``square-500``), a non-default surrogate names
a transfer attack (``aa-surrogate[resnet18]``), and a non-default Square budget inside AutoAttack
names it (``autoattack[square-500]``), so cells made under different settings never mix; a lookup
under any other name would miss the stored cell and plan it again.
"""

from __future__ import annotations

from robustbench_med.attacks.spec import AttackRequest
from robustbench_med.attacks.square import DEFAULT_QUERIES
from robustbench_med.errors import BadInputError

SURROGATE = "resnet101"  # the paper's surrogate for the transfer attacks
SQUARE_INSIDE = ("autoattack", "aa-surrogate")  # attacks that run Square with its own query budget
MAX_SQUARE_QUERIES = 10000  # the bound of any <family>-K name, so square-K stays a valid name


def check_square_queries(value: object, what: str = "square_queries") -> None:
    """Refuse a Square budget that is not an integer in 1..10000 (``what`` names the setting in the
    one-line error), before any data is read or a model trained."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInputError(f"{what} must be an integer number of queries, got {value!r}")
    if not 1 <= value <= MAX_SQUARE_QUERIES:
        raise BadInputError(f"{what} must be between 1 and {MAX_SQUARE_QUERIES}, got {value}")


def with_square_queries(requests: list[AttackRequest], queries: int) -> list[AttackRequest]:
    """``square`` and ``square-surrogate`` at their default budget take ``queries`` instead (their
    name then says it, ``square-500``); an explicit ``square-K`` keeps its K."""
    if queries == DEFAULT_QUERIES:
        return requests
    return [AttackRequest(r.spec, queries) if not r.spec.uses_step and r.spec.default_steps
            == DEFAULT_QUERIES and r.steps == DEFAULT_QUERIES else r for r in requests]


def budgeted(request: AttackRequest, square_queries: int) -> AttackRequest:
    """``request`` as the runner runs it: ``square`` at ``square_queries`` when that is not the default."""
    return with_square_queries([request], square_queries)[0]


def stored_attack_name(request: AttackRequest, surrogate_name: str, square_queries: int) -> str:
    """The ``attack`` column of ``request``'s rows under ``surrogate_name`` and ``square_queries``."""
    request = budgeted(request, square_queries)
    name = request.name
    if request.spec.box == "transfer" and surrogate_name != SURROGATE:
        name += f"[{surrogate_name}]"
    if request.spec.name in SQUARE_INSIDE and square_queries != DEFAULT_QUERIES:
        name += f"[square-{square_queries}]"
    return name
