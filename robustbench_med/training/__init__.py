"""Standard and adversarial training with the benchmark's recipes, one concept per module.

:mod:`.recipes` (optimiser and schedule by name), :mod:`.config` (what a run
is asked and returns), :mod:`.scoring` (a split scored in eval mode, the kept
epoch's key), :mod:`.strategies` (how a batch becomes a loss; defenses
subclass), :mod:`.optim` (optimiser, parameter groups, schedule) and
:mod:`.loop` (:func:`train_model`). The library imports from the modules;
the names below are re-exported for users.
"""

from robustbench_med.training.config import TrainConfig, TrainResult
from robustbench_med.training.loop import train_model
from robustbench_med.training.optim import param_groups
from robustbench_med.training.recipes import RECIPES, Recipe
from robustbench_med.training.scoring import SplitScore, evaluate_split, score_split
from robustbench_med.training.strategies import AdversarialTraining, TrainingStrategy, default_strategy

__all__ = ["RECIPES", "AdversarialTraining", "Recipe", "SplitScore", "TrainConfig", "TrainResult",
           "TrainingStrategy", "default_strategy", "evaluate_split", "param_groups", "score_split",
           "train_model"]
