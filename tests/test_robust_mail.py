"""Robust-MAIL on real paired MedMNIST slices: random filters, noise, switches, seeds.

Data: PneumoniaMNIST + BreastMNIST (d12+d14) at 28 px, paired as the official code pairs.
"""

from __future__ import annotations

import pytest
import torch

from robustbench_med.data import load_dataset
from robustbench_med.models import build_model
from robustbench_med.models.mail.emcam import EMCAM
from robustbench_med.models.mail.noise import AlwaysOnDropout, ModulatedNoise
from robustbench_med.models.mail.rpf import RandomProjectionConv2d, random_kernel_mask
from robustbench_med.training import AdversarialTraining, multitask_loss, param_groups

SIZE = 28


@pytest.fixture(scope="module")
def pair(data_root):
    return load_dataset("d12+d14", data_root=data_root, image_size=SIZE, n_train=64, n_val=16, n_test=16)


def rpf_convs(module: torch.nn.Module) -> list[RandomProjectionConv2d]:
    return [m for m in module.modules() if isinstance(m, RandomProjectionConv2d)]


def test_robust_mail_is_randomized_and_holds_rpf_where_the_paper_puts_it(pair):
    model = build_model("robust_mail", pair.info, seed=0)
    assert model.randomized is True
    branch_convs = rpf_convs(model.net.branches)
    emcam_convs = rpf_convs(model.net.emcams)
    # GPC, DW3, DW5 of the MSGDC of 2 EMILAs x 8 ERLAs x 2 branches; of EMSCA's MSGDC in 4 EMCAMs
    assert len(branch_convs) == 3 * 2 * 8 * 2 and len(emcam_convs) == 3 * 4
    named = dict(model.named_modules())
    assert all(name.endswith(("msgdc.gpc", "msgdc.dw3", "msgdc.dw5"))
               for name, m in named.items() if isinstance(m, RandomProjectionConv2d))
    for conv in branch_convs + emcam_convs:
        fraction = conv.random_weight.shape[0] / conv.out_channels
        assert fraction == pytest.approx(0.25, abs=0.02)
        assert conv.random_weight.std().item() == pytest.approx(1 / conv.kernel_size, rel=0.3)


def test_random_kernel_positions():
    grouped = random_kernel_mask(64, 0.25).view(16, 4)  # EMILA's GPC: 16 groups of 4 kernels
    assert grouped[:, -1].all() and not grouped[:, :-1].any()  # the last kernel of every group
    assert int(random_kernel_mask(32, 0.25).sum()) == 8 and int(random_kernel_mask(320, 0.25).sum()) == 80
    assert int(random_kernel_mask(10, 0.3).sum()) == 3


def test_random_filters_get_no_gradient_and_change_between_draws(pair):
    model = build_model("robust_mail", pair.info, seed=0).train()
    convs = rpf_convs(model)
    before = [c.random_weight.clone() for c in convs]
    multitask_loss(model(pair.train.x[:4]), pair.train.y[:4]).backward()
    for conv, old in zip(convs, before, strict=True):
        assert not conv.random_weight.requires_grad and conv.random_weight.grad is None
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
        assert not torch.equal(conv.random_weight, old)  # re-drawn by the forward pass
    assert not any(p is c.random_weight for c in convs for p in model.parameters())
    drawn = [c.random_weight.clone() for c in convs]
    model.resample()
    assert all(not torch.equal(c.random_weight, d) for c, d in zip(convs, drawn, strict=True))
    assert not any(name.endswith("random_weight") for name in model.state_dict())


def test_randomness_comes_from_the_generator_only(pair):
    model = build_model("robust_mail", pair.info, seed=0).eval()
    x = pair.test.x[:4]
    with torch.no_grad():
        torch.manual_seed(1)
        first = model(x)[0]
        torch.manual_seed(1)
        again = model(x)[0]
        model.resample()
        fresh = model(x)[0]
    assert torch.equal(first, again)
    assert not torch.allclose(first, fresh)


@pytest.mark.parametrize("name", ["robust_mail", "robust_mail_code", "robust_mail_mnv2"])
def test_same_seed_same_model(pair, name):
    a = build_model(name, pair.info, seed=3)
    b = build_model(name, pair.info, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert all(torch.equal(p, q) for p, q in zip(a.buffers(), b.buffers(), strict=True))
    c = build_model(name, pair.info, seed=4)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_noise_deltas_are_learnt(pair):
    model = build_model("robust_mail", pair.info, seed=0).train()
    multitask_loss(model(pair.train.x[:8]), pair.train.y[:8]).backward()
    deltas = [(n, p) for n, p in model.named_parameters() if n.endswith("delta")]
    # CA noise and spatial noise in 32 EMILAs, one in each of 4 EMCAMs; channel-wise
    assert len(deltas) == 2 * 32 + 4
    assert all(p.ndim == 1 and p.numel() > 1 for _, p in deltas)
    for name, p in deltas:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_the_notebook_variant(pair):
    model = build_model("robust_mail_code", pair.info, seed=0)
    assert not rpf_convs(model) and model.randomized
    assert len([m for m in model.modules() if isinstance(m, AlwaysOnDropout)]) == 3 * 2
    emila_deltas = [b for n, b in model.named_buffers() if n.endswith("delta")]
    emcam_deltas = [p for m in model.modules() if isinstance(m, EMCAM) for p in m.noise.parameters()]
    assert len(emila_deltas) == 2 * 32 and all(d.shape == (1,) for d in emila_deltas)  # fixed at 1
    assert len(emcam_deltas) == 4 and all(d.shape == (1,) and d.requires_grad for d in emcam_deltas)
    x = pair.test.x[:4]
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(model(x)[0], model(x)[0])  # noise and dropout stay on at inference


@pytest.mark.parametrize(("name", "branch_rpf", "emcam_rpf", "noise"), [
    ("robust_mail-no-rpan", False, False, False),
    ("robust_mail-rpf-only", False, True, False),
    ("robust_mail-man-only", False, False, True),
    ("robust_mail-rpf-man", False, True, True),
    ("robust_mail", True, True, True),
])
def test_rpan_switches(pair, name, branch_rpf, emcam_rpf, noise):
    model = build_model(name, pair.info, seed=0)
    assert bool(rpf_convs(model.net.branches)) is branch_rpf
    assert bool(rpf_convs(model.net.emcams)) is emcam_rpf
    assert any(isinstance(m, ModulatedNoise) for m in model.modules()) is noise
    assert model.randomized is (branch_rpf or emcam_rpf or noise)


def test_weight_decay_reaches_the_trainable_filters(pair):
    model = build_model("robust_mail", pair.info, seed=0)
    groups = param_groups(model, 0.0)
    decayed = [g for g in groups if g["weight_decay"] == 1e-4]
    assert len(decayed) == 1
    trainable_filters = {id(c.weight) for c in rpf_convs(model)}
    assert {id(p) for p in decayed[0]["params"]} == trainable_filters
    assert sum(len(g["params"]) for g in groups) == len([p for p in model.parameters() if p.requires_grad])


def test_one_adversarial_training_step(pair):
    model = build_model("robust_mail", pair.info, seed=0).train()
    strategy = AdversarialTraining(eps=4 / 255, step=1 / 255, steps=2)
    loss = strategy.batch_loss(model, pair.train.x[:4], pair.train.y[:4], epoch=1)
    loss.backward()
    assert torch.isfinite(loss) and model.training
    assert all(c.weight.grad is not None for c in rpf_convs(model))
