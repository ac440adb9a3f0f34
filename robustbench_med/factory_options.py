"""Keyword options of registered factories (models, defenses, plugins), checked before anything runs.

``--model-option`` / ``--defense-option`` values arrive as JSON scalars
(``levels=3`` -> 3, ``levels=abc`` -> 'abc'). A factory that got a wrong-typed
value would fail deep inside training with its own traceback, after minutes of
work; so each value is checked, and converted where that loses nothing
(``3.0`` -> 3 for an int, ``5`` -> "5" for a string), against the keyword's
annotation or, when it has none, the type of its default. Keywords typed otherwise (lists, classes)
are passed through for the factory to judge.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from robustbench_med.errors import BadInputError

SCALARS: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str, "None": type(None)}
TYPE_WORDS = {bool: "a bool (true or false)", int: "an int", float: "a float", str: "a string",
              type(None): "null"}
_NO = object()  # "cannot convert"


def expected_types(annotation: Any, default: Any = inspect.Parameter.empty) -> tuple[type, ...] | None:
    """The scalar types a keyword accepts, or None when its annotation says nothing we can check."""
    if isinstance(annotation, str):  # PEP 563 annotations: "float", "int | None"
        words = [word.strip() for word in annotation.replace("Optional[", "None | ").strip("]").split("|")]
        annotation = (tuple(SCALARS[w] for w in words) if all(w in SCALARS for w in words)
                      else inspect.Parameter.empty)
    elif isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = typing.get_args(annotation)
    if annotation in (inspect.Parameter.empty, Any):
        if default is inspect.Parameter.empty or default is None:
            return None
        annotation = type(default)
    found = annotation if isinstance(annotation, tuple) else (annotation,)
    return found if all(t in SCALARS.values() for t in found) else None


def _is(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _coerce(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` when the conversion is exact, else ``_NO``."""
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is str and isinstance(value, (bool, int, float)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return _NO


def convert_option(owner: str, key: str, value: Any, kinds: tuple[type, ...] | None) -> Any:
    """``value`` checked (and converted where exact) for ``kinds``; a one-line error otherwise."""
    if kinds is None or any(_is(value, kind) for kind in kinds):
        return value
    for kind in kinds:
        converted = _coerce(value, kind)
        if converted is not _NO:
            return converted
    expected = " or ".join(TYPE_WORDS[kind] for kind in kinds)
    raise BadInputError(f"{owner} option {key} must be {expected}, got {value!r}")


def option_parameters(factory: Callable[..., Any], n_args: int) -> list[inspect.Parameter]:
    """The keywords of ``factory(*n_args positional, **options)``: its options, in signature order."""
    params = list(inspect.signature(factory).parameters.values())[n_args:]
    return [p for p in params
            if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]


def check_options(kind: str, name: str, factory: Callable[..., Any], n_args: int,
                  options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for ``factory(*n_args positional, **options)``: names known, values typed."""
    from robustbench_med.registry import nearest

    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    allowed = [p.name for p in option_parameters(factory, n_args)]
    unknown = [key for key in options if key not in allowed]
    if unknown and not takes_any:
        near = nearest(unknown[0], allowed)
        raise BadInputError(f"{kind} {name} has no option {', '.join(unknown)} "
                            f"(allowed: {', '.join(allowed) or 'none'})"
                            + (f"; did you mean '{near}'?" if near else ""))
    return {key: convert_option(f"{kind} {name}", key, value,
                                expected_types(params[key].annotation, params[key].default)
                                if key in allowed else None)
            for key, value in options.items()}
