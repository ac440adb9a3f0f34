"""One generic registry for datasets, models, defenses and attacks.

Modelled on timm's model registry: a decorator registers an entry under a
name, and ``get(name)`` is the one place to look a name up. A failed lookup
says what was asked for, what exists, and the nearest valid name.

Third-party packages add entries without editing medrobust through the
entry-point groups ``medrobust.datasets``, ``medrobust.models``,
``medrobust.defenses`` and ``medrobust.attacks``. An entry point may name a
module (importing it runs its ``@REGISTRY.register`` decorators) or an object,
which is then registered under the entry point's name.

A plugin that fails to import is reported once on stderr and skipped: one
broken package must not break medrobust. A plugin whose name is already taken
(by a built-in or another plugin) is an error naming both packages, never a
silent choice; ``add()`` replaces an entry only when asked (``replace=True``).
"""

from __future__ import annotations

import difflib
import re
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from robustbench_med.errors import MedrobustError, UnknownNameError

T = TypeVar("T")
_REPORTED: set[tuple[str, str, str]] = set()  # (group, name, value) of broken plugins already reported


class RegistryConflict(MedrobustError):
    """Two packages register one name: medrobust will not pick one of them silently."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object with its name, aliases, metadata and origin."""

    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    origin: str = "medrobust"


def natural_key(name: str) -> list[object]:
    """Sort key that puts d2 before d10 and pgd-20 before pgd-100."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def nearest(name: str, candidates: list[str]) -> str | None:
    """The closest candidate to ``name``, or None when nothing is close."""
    matches = difflib.get_close_matches(name.lower(), candidates, n=1, cutoff=0.5)
    return matches[0] if matches else None


def _origin_of(obj: Any, caller: types.FrameType) -> str:
    """The package an entry comes from: a function's or class's own module; for an instance (a
    spec), the module that registers it (its class's module would name medrobust for a plugin)."""
    module = (obj.__module__ if isinstance(obj, (types.FunctionType, type)) and obj.__module__
              else caller.f_globals.get("__name__") or "__main__")
    return module.split(".")[0]


class Registry(Generic[T]):
    """Named entries of one kind, filled by decorators and entry points.

    ``builtins`` imports the catalog module of the package that owns this
    kind (its import registers medrobust's own entries). It runs on first use,
    not when the registry is imported, so that importing the registry stays
    cheap (``medrobust list`` never imports torch) and a package's modules can
    import the registry they register into.
    """

    def __init__(self, kind: str, group: str, builtins: Callable[[], object] | None = None) -> None:
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._loaded = False
        self._loading = False

    # -- registration -----------------------------------------------------
    def register(
        self,
        name: str | None = None,
        *,
        aliases: tuple[str, ...] = (),
        **meta: Any,
    ) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name`` (default: its ``__name__``)."""

        def decorator(obj: T) -> T:
            self.add(name or obj.__name__, obj, aliases=aliases, origin=_origin_of(obj, sys._getframe(1)),
                     **meta)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, aliases: tuple[str, ...] = (), origin: str | None = None,
            replace: bool = False, **meta: Any) -> Entry[T]:
        """Register ``obj``; a name or alias already taken is refused unless ``replace=True``."""
        key = name.lower()
        entry = Entry(key, obj, dict(meta), tuple(a.lower() for a in aliases),
                      origin or _origin_of(obj, sys._getframe(1)))
        if not replace:
            for taken in (key, *entry.aliases):
                owner = self._entries.get(self._aliases.get(taken, taken))
                if owner is not None:
                    raise RegistryConflict(
                        f"{self.kind} '{taken}' from package '{entry.origin}' collides with the {self.kind} "
                        f"'{owner.name}' of package '{owner.origin}'; rename one of them (or pass "
                        "replace=True to add() to replace it on purpose)")
        self._entries[key] = entry
        for alias in entry.aliases:
            self._aliases[alias] = key
        return entry

    # -- lookup -----------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """Whether the built-ins and installed plugins are loaded (reading entries is then free)."""
        return self._loaded

    def _ensure_loaded(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            if self._builtins is not None:
                self._builtins()
            for ep in entry_points(group=self.group):
                self._load_entry_point(ep)
            self._loaded = True
        finally:
            self._loading = False

    def _load_entry_point(self, ep: Any) -> None:
        try:
            obj = ep.load()
        except RegistryConflict:
            raise  # importing it registered a name that is taken: an error, not a broken plugin
        except Exception as exc:  # a broken plugin must not break medrobust: say so once, skip it
            report = (self.group, ep.name, ep.value)
            if report not in _REPORTED:
                _REPORTED.add(report)
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                print(f"medrobust: skipped {self.kind} plugin '{ep.name}' (entry point '{ep.value}', group "
                      f"{self.group}): it could not be loaded: {type(exc).__name__}: {reason}",
                      file=sys.stderr)
            return
        if isinstance(obj, types.ModuleType):
            return  # importing the module registered its entries through the decorator
        existing = self._entries.get(ep.name.lower())
        if existing is not None and existing.obj is obj:
            return  # the object registered itself when its module was imported
        self.add(ep.name, obj, origin=ep.value.split(":")[0].split(".")[0])

    def resolve(self, name: str) -> str:
        """The canonical name for ``name`` (an alias or any capitalisation)."""
        self._ensure_loaded()
        key = name.strip().lower()
        key = self._aliases.get(key, key)
        if key not in self._entries:
            names = self.names()
            hint = nearest(key, names + list(self._aliases))
            hint_text = f"; did you mean '{self._aliases.get(hint, hint)}'?" if hint else ""
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'{hint_text} (known {self.kind}s: {', '.join(names)})"
            )
        return key

    def entry(self, name: str) -> Entry[T]:
        return self._entries[self.resolve(name)]

    def get(self, name: str) -> T:
        """The object registered under ``name``; a clear error when there is none."""
        return self.entry(name).obj

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._entries, key=natural_key)

    def __iter__(self) -> Iterator[Entry[T]]:
        self._ensure_loaded()
        return iter(sorted(self._entries.values(), key=lambda e: natural_key(e.name)))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self._ensure_loaded()
        key = name.lower()
        return key in self._entries or key in self._aliases


def _dataset_catalog() -> object:
    from robustbench_med.data import catalog

    return catalog


def _model_catalog() -> object:
    from robustbench_med.models import catalog

    return catalog


def _defense_catalog() -> object:
    from robustbench_med.defenses import catalog

    return catalog


def _attack_catalog() -> object:
    from robustbench_med.attacks import catalog

    return catalog


# The one place that names the built-in catalogs: explicit imports (a reader and tests/test_layers.py
# see them), run lazily; they are the only imports of this module above its own layer.
DATASETS: Registry[Any] = Registry("dataset", "medrobust.datasets", _dataset_catalog)
MODELS: Registry[Any] = Registry("model", "medrobust.models", _model_catalog)
DEFENSES: Registry[Any] = Registry("defense", "medrobust.defenses", _defense_catalog)
ATTACKS: Registry[Any] = Registry("attack", "medrobust.attacks", _attack_catalog)
