"""Imports every built-in defense module so that its registrations run."""

from robustbench_med.defenses import cap, ctrw, dbn, learn2perturb, pni, rpf  # noqa: F401
