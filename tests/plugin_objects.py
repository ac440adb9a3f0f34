"""Objects that the registry tests load through (fake) entry points."""

from __future__ import annotations

from robustbench_med.models.backbones import resnet

toy_model = resnet(18)
