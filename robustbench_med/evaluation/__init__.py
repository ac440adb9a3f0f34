"""The grid runner, metrics, scoring of randomized models, and gradient-masking checks."""

from robustbench_med.evaluation.runner import RunConfig, RunReport, benchmark

__all__ = ["RunConfig", "RunReport", "benchmark"]
