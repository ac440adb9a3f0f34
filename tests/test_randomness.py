"""One randomness protocol, tested through the exact wrapper stack the runner builds.

The runner scores and attacks ``TaskView(model)`` (and, for library attacks on a
paired dataset, ``ModalitiesAsChannels(TaskView(model))``). Every randomized
defense and model must be re-drawn through that stack: scoring with several
draws sees several networks, EOT-K averages K different networks (not K copies
of one), and AutoAttack-rand re-draws between its passes.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustbench_med.attacks.autoattack import AutoAttackFn
from robustbench_med.attacks.engine import eot_gradient
from robustbench_med.evaluation.scoring import probabilities
from robustbench_med.models.builder import build_model
from robustbench_med.models.classifier import ModalitiesAsChannels, TaskView
from robustbench_med.randomness import FreshDrawPerPass, is_randomized, resample
from robustbench_med.registry import DEFENSES

CPU = torch.device("cpu")
DEFENDED = [("resnet18", d) for d in ("rpf", "ctrw", "pni", "learn2perturb")]
ROBUST_MAIL = [(m, None) for m in ("robust_mail", "robust_mail-rpf-only", "robust_mail-man-only",
                                   "robust_mail-rpf-man", "robust_mail_code")]
HELD_DRAW = {"rpf", "ctrw"}


@pytest.fixture(scope="module")
def single(data_root):
    from robustbench_med.data import load_dataset

    return load_dataset("d12", data_root=data_root, image_size=28, n_train=64, n_val=16, n_test=8)


@pytest.fixture(scope="module")
def paired(data_root):
    from robustbench_med.data import load_dataset

    return load_dataset("d12+d14", data_root=data_root, image_size=28, n_train=64, n_val=16, n_test=8)


def runner_stack(model: str, defense: str | None, data, packed: bool = False) -> nn.Module:
    """What the runner attacks: the trained model behind its task view (and packing view)."""
    net = build_model(model, data.info, defense=defense, seed=0).eval()
    view = TaskView(net, 0).eval()
    return ModalitiesAsChannels(view, data.info.modalities).eval() if packed else view


class OutputLog:
    """Records every logits tensor a module returns."""

    def __init__(self, module: nn.Module) -> None:
        self.outputs: list[torch.Tensor] = []
        module.register_forward_hook(lambda _m, _i, out: self.outputs.append(out.detach().clone()))

    def distinct(self) -> int:
        unique: list[torch.Tensor] = []
        for out in self.outputs:
            if not any(out.shape == u.shape and torch.allclose(out, u, atol=1e-6) for u in unique):
                unique.append(out)
        return len(unique)


def cases():
    return [pytest.param(m, d, False, id=f"{m}+{d}" if d else m) for m, d in DEFENDED + ROBUST_MAIL] + [
        pytest.param(m, d, True, id=f"{m}{'+' + d if d else ''}-paired")
        for m, d in [("robust_mail", None), ("mail_rn18", "rpf"), ("mail_rn18", "ctrw")]]


@pytest.mark.parametrize(("model", "defense", "pair"), cases())
def test_scoring_and_eot_redraw_through_the_runners_stack(model, defense, pair, single, paired):
    data = paired if pair else single
    stack = runner_stack(model, defense, data)
    assert is_randomized(stack), "the task view hides the model's randomness"
    x = data.test.x[:4]
    y = data.test.y[:4] if data.test.y.ndim == 1 else data.test.y[:4, 0]
    log = OutputLog(stack)
    torch.manual_seed(0)
    probabilities(stack, x, CPU, draws=5)
    assert log.distinct() >= 2, "five scoring draws saw one network"

    log.outputs.clear()
    grad_eot, _ = eot_gradient(stack, x, y, F.cross_entropy, 4, stack)  # as IterativeLinf's EOT-4
    log.outputs = [part for out in log.outputs for part in out.split(len(x))]  # batched EOT: 4 copies
    assert log.distinct() == 4, "EOT-4 averaged fewer than four networks"
    grad_one, _ = eot_gradient(stack, x, y, F.cross_entropy, 1, stack)
    assert not torch.allclose(grad_eot, 4 * grad_one, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("defense", sorted(HELD_DRAW))
def test_held_draw_defenses_hold_until_resampled_through_a_packed_view(defense, paired):
    stack = runner_stack("mail_rn18", defense, paired, packed=True)
    x = ModalitiesAsChannels.pack(paired.test.x[:2])
    with torch.no_grad():
        first, again = stack(x), stack(x)
        assert torch.equal(first, again), f"{defense} should hold its draw between passes"
        assert resample(stack) >= 1
        assert not torch.allclose(stack(x), first)


@pytest.mark.parametrize("defense", sorted(HELD_DRAW))
def test_autoattack_rand_sees_a_fresh_draw_on_every_pass(defense, single):
    stack = runner_stack("resnet18", defense, single)
    fn = AutoAttackFn(stack, 4 / 255, n_classes=2, version="rand", device=CPU, seed=0, notes=[])
    assert isinstance(fn.model, FreshDrawPerPass)
    fn.adversary.apgd.n_iter = 2
    fn.adversary.apgd.eot_iter = 3
    inner = OutputLog(stack)
    x, y = single.test.x[:2], single.test.y[:2]
    with torch.no_grad():
        fn.model(x)
        fn.model(x)
    assert inner.distinct() == 2, "two passes of AutoAttack-rand's model gave the same network"
    inner.outputs.clear()
    fn(x, y)
    assert inner.distinct() >= 3


class HeldNoise(nn.Module):
    """A plugin's held-draw module: its draw changes only when resample() is called."""

    randomized = True

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("noise", torch.randn(1, channels, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.noise

    def resample(self) -> None:
        self.noise.normal_()


class PluginWrapper(nn.Module):
    """A plugin wrapper that knows nothing of the protocol (no resample, no randomized)."""

    def __init__(self, backbone: nn.Module, channels: int) -> None:
        super().__init__()
        self.noise, self.backbone = HeldNoise(channels), backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.noise(x))


def test_an_outside_held_draw_module_is_redrawn_without_glue(single):
    wrapped = PluginWrapper(build_model("resnet18", single.info, seed=0), single.info.channels).eval()
    stack = TaskView(wrapped).eval()
    assert is_randomized(stack) and stack.randomized
    log = OutputLog(stack)
    probabilities(stack, single.test.x[:4], CPU, draws=5)
    assert log.distinct() == 5


def test_declared_randomness_matches_the_registry(single):
    for name in ("rpf", "ctrw", "pni", "learn2perturb", "dbn", "cap"):
        built = build_model("resnet18", single.info, defense=name, seed=0)
        assert is_randomized(TaskView(built)) == DEFENSES.get(name).randomized, name
    assert not is_randomized(TaskView(build_model("mail_rn18", single.info, seed=0)))


def test_resample_skips_a_submodule_named_resample(single):
    class Upsampling(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.resample = nn.Upsample(scale_factor=2)

    assert resample(Upsampling()) == 0
