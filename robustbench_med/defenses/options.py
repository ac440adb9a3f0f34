"""A defense's keyword options, declared once as a dataclass and checked in one place.

``--defense-option key=value`` reaches both the defense's ``build`` and its
``strategy``, so each defense declares all its options (model and recipe
alike) in one frozen dataclass. :func:`defense_factory` turns a function
``fn(build_backbone, info, options)`` into the registry's
``build(build_backbone, info, **options)`` whose signature lists the fields,
so the model builder refuses an unknown option with the list of known ones.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

from torch import nn

from robustbench_med.data.spec import DataInfo
from robustbench_med.errors import BadInputError
from robustbench_med.factory_options import convert_option, expected_types
from robustbench_med.registry import nearest

O = TypeVar("O")  # noqa: E741 -- the options dataclass
BackboneBuilder = Callable[[], nn.Module]


def parse_defense_options(cls: type[O], options: dict[str, Any], defense: str) -> O:
    """``cls(**options)`` after checking every name and value type (converting where exact)."""
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)  # resolves the string annotations of PEP 563
    unknown = sorted(set(options) - set(known))
    if unknown:
        near = nearest(unknown[0], list(known))
        raise BadInputError(f"defense {defense} has no option {', '.join(unknown)} "
                            f"(allowed: {', '.join(known) or 'none'})"
                            + (f"; did you mean '{near}'?" if near else ""))
    return cls(**{name: convert_option(f"defense {defense}", name, value, expected_types(hints[name]))
                  for name, value in options.items()})


def defense_factory(cls: type[O], defense: str) -> Callable[
        [Callable[[BackboneBuilder, DataInfo, O], nn.Module]], Callable[..., nn.Module]]:
    """Decorator: ``fn(build_backbone, info, options)`` -> ``build(build_backbone, info, **options)``."""

    def wrap(fn: Callable[[BackboneBuilder, DataInfo, O], nn.Module]) -> Callable[..., nn.Module]:
        @functools.wraps(fn)
        def build(build_backbone: BackboneBuilder, info: DataInfo, **options: Any) -> nn.Module:
            return fn(build_backbone, info, parse_defense_options(cls, options, defense))

        positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params = [inspect.Parameter("build_backbone", positional),
                  inspect.Parameter("info", positional, annotation=DataInfo)]
        params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                     annotation=f.type) for f in fields(cls)]  # type: ignore[arg-type]
        build.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return build

    return wrap
