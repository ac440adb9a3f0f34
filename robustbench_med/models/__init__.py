"""Models: torchvision backbones, MAIL and Robust-MAIL, and the checkpoint zoo."""

from robustbench_med.models.builder import build_model
from robustbench_med.models.classifier import Classifier, TaskView, task_logits

__all__ = ["Classifier", "TaskView", "build_model", "task_logits"]
