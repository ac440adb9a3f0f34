"""Imports every built-in model module so that its registrations run."""

from robustbench_med.models import backbones  # noqa: F401
from robustbench_med.models.mail import variants  # noqa: F401
