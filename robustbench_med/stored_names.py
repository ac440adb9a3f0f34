"""The name under which ``medrobust run`` stores an attack's cells, for code that looks cells up
without running them (``grid plan``, the sweep plot).

It is :class:`~robustbench_med.evaluation.runner.GridRunner`'s rule, built from the runner's own
pieces: Square at a non-default budget names its queries (``square-500``), a non-default surrogate
names a transfer attack (``aa-surrogate[resnet18]``), and a non-default Square budget inside
AutoAttack names it (``autoattack[square-500]``). A lookup under any other name would miss the
stored cell and plan it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustbench_med.errors import BadInputError

if TYPE_CHECKING:
    from robustbench_med.attacks.spec import AttackRequest

MAX_SQUARE_QUERIES = 10000  # the bound of any <family>-K name, so square-K stays a valid name


def check_square_queries(value: object, what: str = "square_queries") -> None:
    """Refuse a Square budget that is not an integer in 1..10000 (``what`` names the setting in the
    one-line error), before any data is read or a model trained."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInputError(f"{what} must be an integer number of queries, got {value!r}")
    if not 1 <= value <= MAX_SQUARE_QUERIES:
        raise BadInputError(f"{what} must be between 1 and {MAX_SQUARE_QUERIES}, got {value}")


def budgeted(request: AttackRequest, square_queries: int) -> AttackRequest:
    """``request`` as the runner runs it: ``square`` at ``square_queries`` when that is not the default."""
    from robustbench_med.evaluation.runner import with_square_queries

    return with_square_queries([request], square_queries)[0]


def stored_attack_name(request: AttackRequest, surrogate_name: str, square_queries: int) -> str:
    """The ``attack`` column of ``request``'s rows under ``surrogate_name`` and ``square_queries``."""
    from robustbench_med.attacks.square import DEFAULT_QUERIES
    from robustbench_med.evaluation.runner import SQUARE_INSIDE, SURROGATE

    request = budgeted(request, square_queries)
    name = request.name
    if request.spec.box == "transfer" and surrogate_name != SURROGATE:
        name += f"[{surrogate_name}]"
    if request.spec.name in SQUARE_INSIDE and square_queries != DEFAULT_QUERIES:
        name += f"[square-{square_queries}]"
    return name
