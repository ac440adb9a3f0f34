"""The grid runner, metrics, scoring of randomized models, and gradient-masking checks.

Import from the modules (``robustbench_med.evaluation.runner``); this package
imports none of them, so a low layer (training reads :mod:`.metrics`) does not
pull in the runner, which sits above training.
"""
