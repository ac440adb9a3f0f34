"""Imports every built-in model module so that its registrations run."""

from robustbench_med.models import backbones  # noqa: F401
