"""A plugin module whose import registers a name that medrobust already has: the registry must
refuse it with an error naming both packages, not skip it as a broken plugin."""

from __future__ import annotations

from typing import Any

from robustbench_med.registry import MODELS


@MODELS.register("resnet50")
def my_resnet50(info: Any, **options: Any) -> Any:
    """Never built: registering it is what the test checks."""
    raise AssertionError("a colliding plugin must not be registered")
