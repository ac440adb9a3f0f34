"""medrobust: adversarial-robustness benchmarking for medical image classifiers."""

__version__ = "0.1.0"
