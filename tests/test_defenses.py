"""The six baseline defenses on real PneumoniaMNIST images: mechanism, randomness, training.

Each test builds a fresh (untrained) defended ResNet18 at 28 px and feeds it a
real slice of d12; "one step" tests run the defense's own training strategy
(with a 3-step PGD to stay small) and check that it attacked, that the
defense's own parameters got gradients and moved.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from robustbench_med.defenses import cap, ctrw, dbn, learn2perturb, pni, rpf
from robustbench_med.defenses.contour import contour_augment, guided_filter
from robustbench_med.defenses.randomness import RandomDraws
from robustbench_med.errors import BadInputError
from robustbench_med.evaluation.scoring import detect_randomness
from robustbench_med.models import Classifier, build_model
from robustbench_med.registry import DEFENSES, MODELS
from robustbench_med.training.config import TrainConfig
from robustbench_med.training.optim import param_groups

NAMES = ("pni", "dbn", "learn2perturb", "rpf", "cap", "ctrw")
RANDOMIZED = {"pni": True, "learn2perturb": True, "rpf": True, "ctrw": True, "dbn": False, "cap": False}
PER_FORWARD = {"pni", "learn2perturb"}  # fresh noise on every pass; rpf/ctrw hold one draw per batch
STEPS = 3
CONFIG = TrainConfig(epochs=2, batch_size=16, adv_steps=STEPS)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two shared cores: one intra-op thread is ~20x faster here than two fighting ones."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def batch(d12_small) -> tuple[torch.Tensor, torch.Tensor]:
    """16 real training images, both classes present."""
    y = d12_small.train.y
    idx = torch.cat([torch.nonzero(y == c).flatten()[:8] for c in (0, 1)])
    return d12_small.train.x[idx], y[idx]


def defended(name: str, info, model: str = "resnet18", **options) -> nn.Module:
    return build_model(model, info, defense=name, defense_options=options, seed=0)


def own_parameters(name: str, model: nn.Module) -> list[nn.Parameter]:
    """The parameters a defense adds (CAP adds none: it trains the backbone)."""
    kinds = {"pni": (pni.WeightNoise, ("alpha",)),
             "learn2perturb": (learn2perturb.PerturbationMap, ("sigma",)),
             "rpf": (rpf.RandomProjectionConv2d, ("weight",)), "ctrw": (ctrw.RandomWeight, ("mu", "sd")),
             "dbn": (dbn.DualBatchNorm, ("clean.weight", "clean.bias", "adv.weight", "adv.bias"))}
    if name == "cap":
        return [p for p in model.parameters() if p.requires_grad]
    kind, attrs = kinds[name]
    return [m.get_parameter(a) for m in model.modules() if isinstance(m, kind) for a in attrs]


def eval_passes(model: nn.Module) -> list[bool]:
    """Records, per forward pass of ``model``, whether it ran in training mode."""
    modes: list[bool] = []
    model.register_forward_pre_hook(lambda m, args: modes.append(m.training))
    return modes


def one_step(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epoch: int = 2,
             config: TrainConfig = CONFIG, lr: float = 0.05, **options) -> tuple[torch.Tensor, list[bool]]:
    """One optimiser step of the defense's own strategy, as ``train_model`` runs it."""
    strategy = DEFENSES.get(name).strategy(config, options)
    optimizer = torch.optim.SGD(strategy.param_groups(model, 0.0), lr=lr)
    modes = eval_passes(model)
    model.train()
    strategy.on_epoch_start(model, epoch)
    loss = strategy.batch_loss(model, x, y, epoch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    strategy.after_step(model, epoch)
    return loss, modes


# -- registry and contract -------------------------------------------------------------------------
def test_the_six_are_registered_with_their_randomness_and_recipe():
    assert set(NAMES) <= set(DEFENSES.names())
    for name in NAMES:
        plugin = DEFENSES.get(name)
        assert plugin.randomized is RANDOMIZED[name], name
        assert plugin.reference and plugin.summary and plugin.evaluation
        assert callable(plugin.strategy)
        assert DEFENSES.entry(name).origin == "robustbench_med"


def seeded_outputs(model: nn.Module, x: torch.Tensor, seed: int = 123) -> torch.Tensor:
    """The model's outputs on one fixed draw: held draws re-drawn, and per-pass noise drawn, from
    ``seed`` (the same random numbers for two models of one architecture)."""
    model.eval()
    torch.manual_seed(seed)
    model.resample()
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_declared_randomness_and_state_dict_round_trip(name, d12_small, batch):
    """What one step of the defense's own training changed comes back through the state dict (what
    the zoo saves and loads): a model built from another seed answers like the trained one after
    loading it, on the same draw, and did not before."""
    x, y = batch
    model = defended(name, d12_small.info).eval()
    with torch.no_grad():
        out = model(x[:8])
    assert out.shape == (8, 2) and torch.isfinite(out).all()
    assert model.randomized is RANDOMIZED[name]
    one_step(name, model, x, y)  # trained state: weights, BatchNorm statistics, the defense's own
    trained = seeded_outputs(model, x)
    other = build_model("resnet18", d12_small.info, defense=name, seed=1)
    assert not torch.allclose(seeded_outputs(other, x), trained, atol=1e-4)  # the check below can fail
    other.load_state_dict(model.state_dict())
    assert torch.allclose(seeded_outputs(other, x), trained, atol=1e-5)
    if RANDOMIZED[name]:  # and the randomness survives: another draw answers differently
        assert not torch.allclose(seeded_outputs(other, x, seed=124), trained, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_randomness_is_present_or_absent_as_in_the_original(name, d12_small, batch):
    x = batch[0][:8]
    model = defended(name, d12_small.info).eval()
    with torch.no_grad():
        first, second = model(x), model(x)
        model.resample()
        third = model(x)
    assert torch.equal(first, second) is (name not in PER_FORWARD)
    assert torch.equal(first, third) is (not RANDOMIZED[name])
    assert detect_randomness(model, x, torch.device("cpu")) is (name in PER_FORWARD)


@pytest.mark.parametrize(("name", "per_forward"), [("pni", False), ("learn2perturb", False),
                                                   ("rpf", True), ("ctrw", True)])
def test_per_forward_switch_flips_between_per_pass_and_held_draws(name, per_forward, d12_small, batch):
    x = batch[0][:4]
    model = defended(name, d12_small.info, per_forward=per_forward).eval()
    with torch.no_grad():
        first, second = model(x), model(x)
        model.resample()
        third = model(x)
    assert torch.equal(first, second) is (not per_forward)
    assert not torch.equal(first, third)


@pytest.mark.parametrize("name", [n for n in NAMES if RANDOMIZED[n]])
def test_random_tensors_are_unsaved_buffers_and_resample_changes_no_parameter(name, d12_small):
    model = defended(name, d12_small.info)
    draws = [m for m in model.modules() if isinstance(m, RandomDraws)]
    assert draws
    parameters = {id(p) for p in model.parameters()}
    state = model.state_dict()
    for module_name, module in model.named_modules():
        for draw in getattr(module, "_draw_names", []):
            assert id(getattr(module, draw)) not in parameters
            assert f"{module_name}.{draw}" not in state
    before = {k: v.clone() for k, v in state.items()}
    held = [getattr(m, d).clone() for m in draws for d in m._draw_names]
    model.resample()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(not torch.equal(h, getattr(m, d)) for h, (m, d) in
               zip(held, [(m, d) for m in draws for d in m._draw_names], strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_one_adversarial_step_of_its_strategy_trains_the_defense(name, d12_small, batch):
    x, y = batch
    model = defended(name, d12_small.info)
    own = own_parameters(name, model)
    before = [p.detach().clone() for p in own]
    loss, modes = one_step(name, model, x, y)
    assert torch.isfinite(loss)
    assert modes.count(False) >= STEPS  # the attack ran, in eval mode
    assert own and all(p.grad is not None and p.grad.abs().sum() > 0 for p in own)
    moved = [not torch.equal(b, p.detach()) for b, p in zip(before, own, strict=True)]
    assert all(moved) if name != "cap" else any(moved)


def test_options_are_checked_by_name_and_type(d12_small):
    with pytest.raises(BadInputError, match=r"has no option ratios \(allowed: ratio"):
        defended("rpf", d12_small.info, ratios=0.5)
    with pytest.raises(BadInputError, match="option per_forward must be a bool"):
        defended("pni", d12_small.info, per_forward="yes")
    with pytest.raises(BadInputError, match="unknown DBN branch"):
        defended("dbn", d12_small.info, branch="both")
    with pytest.raises(BadInputError, match="has no option ratio"):
        DEFENSES.get("ctrw").strategy(CONFIG, {"ratio": 0.5})


def test_delays_keep_the_official_fraction_of_the_budget_or_an_explicit_count():
    assert DEFENSES.get("pni").strategy(TrainConfig(epochs=160), {}).delay == 5
    assert DEFENSES.get("pni").strategy(TrainConfig(epochs=3), {}).delay == 0
    assert DEFENSES.get("pni").strategy(TrainConfig(epochs=3), {"delay": 2}).delay == 2
    l2p = DEFENSES.get("learn2perturb").strategy(TrainConfig(epochs=350), {})
    assert (l2p.noise_delay, l2p.adv_delay) == (10, 20)
    assert DEFENSES.get("cap").strategy(TrainConfig(epochs=200), {}).warmup == 20
    eps = DEFENSES.get("rpf").strategy(TrainConfig(adv_eps=8 / 255), {}).eps
    assert eps == pytest.approx(8 / 255)  # the benchmark's training eps reaches every defense


# -- PNI ---------------------------------------------------------------------------------------------
def test_pni_puts_channelwise_noise_on_every_conv_and_linear(d12_small):
    model = defended("pni", d12_small.info)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 21  # ResNet18: 20 convolutions (3 shortcuts) and the classifier
    for layer in layers:
        noise = layer.parametrizations.weight[0]
        assert isinstance(noise, pni.WeightNoise)
        assert noise.alpha.shape == (layer.weight.shape[0],) + (1,) * (layer.weight.ndim - 1)
        assert torch.all(noise.alpha == 0.25)
    groups = param_groups(model, weight_decay=3e-4)
    alphas = {id(m.alpha) for m in model.modules() if isinstance(m, pni.WeightNoise)}
    no_decay = [g for g in groups if any(id(p) in alphas for p in g["params"])]
    assert len(no_decay) == 1 and no_decay[0]["weight_decay"] == 0.0
    assert {id(p) for p in no_decay[0]["params"]} == alphas


def test_pni_noise_has_std_alpha_times_weight_std(d12_small):
    model = defended("pni", d12_small.info)
    layer = model.net.layer4[0].conv2
    clean = layer.parametrizations.weight.original.detach()
    noisy = torch.stack([layer.weight.detach() for _ in range(8)])
    ratio = float((noisy - clean).std() / clean.std())
    assert ratio == pytest.approx(0.25, rel=0.05)


def test_pni_trains_clean_only_during_its_delay(d12_small, batch):
    x, y = batch
    model = defended("pni", d12_small.info)
    _loss, modes = one_step("pni", model, x, y, epoch=1, delay=1)
    assert modes == [True]  # one clean training pass, no attack
    _loss, modes = one_step("pni", model, x, y, epoch=2, delay=1)
    assert modes.count(False) == STEPS and modes.count(True) == 2  # clean + adversarial passes


# -- DBN ---------------------------------------------------------------------------------------------
def test_dbn_splits_every_batchnorm_and_deploys_one_branch(d12_small, batch):
    x, y = batch
    model = defended("dbn", d12_small.info)
    duals = [m for m in model.modules() if isinstance(m, dbn.DualBatchNorm)]
    assert len(duals) == 20 and all(m.deploy == "adv" for m in duals)
    assert not any(isinstance(m, nn.BatchNorm2d) and not isinstance(p, dbn.DualBatchNorm)
                   for p in model.modules() for m in p.children())
    one_step("dbn", model, x, y)
    first = duals[0]
    assert not torch.equal(first.clean.running_mean, first.adv.running_mean)
    model.eval()
    with torch.no_grad():
        deployed = model(x)
        with dbn.routed(model, "adv"):
            adv = model(x)
        with dbn.routed(model, "clean"):
            clean = model(x)
    assert torch.equal(deployed, adv) and not torch.equal(deployed, clean)
    assert all(m.route is None for m in duals)  # the context manager restores the routing


def test_dbn_clean_deployment_answers_through_the_clean_branch(d12_small, batch):
    x = batch[0][:4]
    model = defended("dbn", d12_small.info, branch="clean").eval()
    for m in model.modules():
        if isinstance(m, dbn.DualBatchNorm):
            m.adv.running_mean.add_(1.0)
    with torch.no_grad():
        deployed = model(x)
        with dbn.routed(model, "clean"):
            assert torch.equal(deployed, model(x))


# -- Learn2Perturb -----------------------------------------------------------------------------------
def test_learn2perturb_sigma_maps_match_the_feature_maps(d12_small):
    model = defended("learn2perturb", d12_small.info)
    maps = {name.removesuffix(".perturb.sigma"): tuple(p.shape)
            for name, p in model.named_parameters() if name.endswith("sigma")}
    # torchvision ResNet18 at 28 px: 7x7/2 stem -> 14, max-pool -> 7, then /2 per stage
    assert maps == {"net.bn1": (64, 14, 14), "net.layer1.0.bn2": (64, 7, 7), "net.layer1.1.bn2": (64, 7, 7),
                    "net.layer2.0.bn2": (128, 4, 4), "net.layer2.1.bn2": (128, 4, 4),
                    "net.layer3.0.bn2": (256, 2, 2), "net.layer3.1.bn2": (256, 2, 2),
                    "net.layer4.0.bn2": (512, 1, 1), "net.layer4.1.bn2": (512, 1, 1)}
    assert all(torch.all(p == 0.25) for n, p in model.named_parameters() if n.endswith("sigma"))


def test_learn2perturb_noise_delay_regulariser_and_clamp(d12_small, batch):
    x, y = batch
    model = defended("learn2perturb", d12_small.info)
    strategy = DEFENSES.get("learn2perturb").strategy(CONFIG, {"noise_delay": 1, "adv_delay": 1})
    model.eval()
    strategy.on_epoch_start(model, 1)
    with torch.no_grad():
        assert torch.equal(model(x[:4]), model(x[:4]))  # noise off during the delay
    strategy.on_epoch_start(model, 2)
    with torch.no_grad():
        assert not torch.equal(model(x[:4]), model(x[:4]))
    reward = strategy.regulariser(model, 2)
    sigmas = [m.sigma for m in learn2perturb.perturbation_maps(model)]
    grads = torch.autograd.grad(reward, sigmas)
    assert float(reward.detach()) < 0 and all(torch.all(g < 0) for g in grads)  # descending it raises sigma
    annealed = float(strategy.regulariser(model, 3).detach())
    assert annealed == pytest.approx(float(reward.detach()) / 1.5)  # 1/H_t anneals
    with torch.no_grad():
        sigmas[0].fill_(-1.0)
    strategy.after_step(model, 2)
    assert torch.all(sigmas[0] == 0.01)
    _loss, modes = one_step("learn2perturb", model, x, y, epoch=1, noise_delay=1, adv_delay=1)
    assert modes == [True]  # clean-only before the adversarial delay ends


def test_learn2perturb_finds_mobilenet_residual_outputs(d12_small):
    model = defended("learn2perturb", d12_small.info, model="mobilenetv2")
    maps = [n for n, _ in model.named_parameters() if n.endswith("sigma")]
    # the stem's norm, then the 10 inverted residual blocks that have a residual connection
    assert maps[0] == "net.features.0.1.perturb.sigma" and len(maps) == 11


# -- RPF ---------------------------------------------------------------------------------------------
def test_rpf_randomises_48_of_64_stem_filters_with_std_one_over_k(d12_small, batch):
    model = defended("rpf", d12_small.info)
    stem = model.net.conv1
    assert isinstance(stem, rpf.RandomProjectionConv2d)
    assert stem.weight.shape == (16, 1, 7, 7) and stem.z.shape == (48, 1, 7, 7)
    assert not isinstance(model.net.layer1[0].conv1, rpf.RandomProjectionConv2d)
    draws = []
    for _ in range(20):
        stem.resample()
        draws.append(stem.random_weight())
    assert float(torch.cat(draws).std()) == pytest.approx(1 / 7, rel=0.05)
    standardised = stem.standardised_weight().flatten(1).std(dim=1)
    assert torch.allclose(standardised, torch.full((16,), 1 / 7), rtol=1e-3)
    with torch.no_grad():
        out = stem(batch[0][:2])
    assert out.shape == (2, 64, 14, 14)
    groups = param_groups(model, weight_decay=0.0)
    decayed = [g for g in groups if g["weight_decay"] == 1e-2]
    assert len(decayed) == 1 and decayed[0]["params"] == [stem.weight]


# -- CTRW --------------------------------------------------------------------------------------------
def test_ctrw_weight_has_the_input_shape_and_a_rescaled_lower_bound(d12_small):
    model = defended("ctrw", d12_small.info)
    weight = model.net[0]
    assert isinstance(weight, ctrw.RandomWeight)
    assert weight.mu.shape == weight.sd.shape == (1, 1, 28, 28)
    assert torch.all(weight.mu == 1) and torch.all(weight.sd == 1)
    assert weight.mean_lb == pytest.approx(2048 / 3072)
    assert weight.lower_bound == pytest.approx(2048 / 3072 * 784)


def test_ctrw_projection_shifts_the_low_entries_up(d12_small):
    weight = defended("ctrw", d12_small.info).net[0]
    with torch.no_grad():
        weight.sd.fill_(0.9)
        weight.sd[0, 0, 0, :3] = torch.tensor([0.2, 0.5, 0.6])
    weight.after_optimizer_step()
    row = weight.sd[0, 0, 0, :4]
    shift = 2 / 3 - 0.2
    assert torch.allclose(row, torch.tensor([0.2 + shift, 0.5 + shift, 0.6 + shift, 0.9]))
    assert float(weight.sd.detach().min()) == pytest.approx(2 / 3)


# -- CAP ---------------------------------------------------------------------------------------------
def test_contour_augmentation_keeps_bright_regions_and_smooths_dark_texture(batch):
    x = batch[0]
    aug = contour_augment(x)
    assert aug.shape == x.shape and float(aug.min()) >= 0 and float(aug.max()) <= 1
    assert float((aug - x)[x <= 127 / 255].abs().mean()) > 0  # the dark regions were filtered
    image = torch.full((1, 1, 16, 16), 0.8)
    image[..., 8:] = 0.2 + 0.05 * torch.randn(1, 1, 16, 8).clamp(-2, 2)  # dark, textured half
    out = contour_augment(image)
    assert torch.equal(out[..., :5], image[..., :5])  # bright, two windows from the dark: unchanged
    assert float(out[..., 10:].std()) < 0.8 * float(image[..., 10:].std())  # texture smoothed
    flat = torch.full((1, 1, 16, 16), 0.3)
    assert torch.allclose(guided_filter(flat, flat, 3, 0.003), flat, atol=1e-5)
    rgb = contour_augment(torch.rand(2, 3, 32, 32))
    assert torch.equal(rgb[:, 0], rgb[:, 1])  # colour images become their luma, as the original


def test_cap_hybrid_loss_matches_its_formula():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    aug = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    adv = torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    y = torch.tensor([0, 1])
    p, p_aug, p_adv = logits.softmax(1), aug.softmax(1), adv.softmax(1)
    target = 0.1 * p_aug + 0.9 * torch.eye(2)[y]
    expected = ((p - target) ** 2).sum(1).mean() + 3.0 * ((p_adv - p) ** 2).sum(1).mean()
    assert float(cap.hybrid_loss(logits, aug, adv, y, 0.1, 3.0)) == pytest.approx(float(expected))


def test_cap_trades_examples_stay_in_the_ball(d12_small, batch):
    x = batch[0][:8]
    model = defended("cap", d12_small.info)
    settings = cap.PGDSettings(eps=4 / 255, step=1 / 255, steps=STEPS)
    adv = cap.trades_examples(model, x, settings)
    assert model.training  # mode restored
    assert float((adv - x).abs().max()) <= 4 / 255 + 1e-6 and float(adv.min()) >= 0
    assert float((adv - x).abs().max()) > 3 / 255


class TinyAttention(nn.Module):
    """A conv net with a layer named ``attn``: what CAP's attention perturbation acts on."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.attn = nn.Conv2d(4, 4, 1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        h = h * torch.sigmoid(self.attn(h))
        return self.head(h.mean((2, 3)))


def test_cap_perturbs_attention_weights_for_the_step_and_restores_them(d12_small, batch):
    x, y = batch
    model = Classifier(TinyAttention(), d12_small.info).train()
    assert list(cap.attention_weights(model, cap.AUTO_ATTENTION)) == ["net.attn.weight"]
    assert cap.attention_weights(defended("cap", d12_small.info), cap.AUTO_ATTENTION) == {}
    attn, conv = model.net.attn.weight, model.net.conv.weight
    original, original_conv = attn.detach().clone(), conv.detach().clone()
    strategy = DEFENSES.get("cap").strategy(CONFIG, {"gamma": 0.01, "warmup": 1})
    strategy.batch_loss(model, x, y, epoch=1)
    assert torch.equal(attn, original)  # no perturbation during the warm-up
    strategy.batch_loss(model, x, y, epoch=2)
    delta = attn.detach() - original
    assert float(delta.norm()) == pytest.approx(0.01 * float(original.norm()), rel=1e-4)
    assert torch.equal(conv, original_conv)  # only attention weights are perturbed
    strategy.after_step(model, epoch=2)
    assert torch.allclose(attn, original, atol=1e-7)


def test_cap_step_past_warmup_backpropagates_through_batchnorm_and_keeps_its_statistics(d12_small, batch):
    """MAIL has BatchNorm and attention weights: the perturbation passes must leave the running
    statistics alone without breaking the backward pass of the step (a bug found in a real run)."""
    x, y = batch[0][:8], batch[1][:8]
    model = build_model("mail_rn18", d12_small.info).train()
    norm = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    strategy = DEFENSES.get("cap").strategy(CONFIG, {"warmup": 0})
    stats = norm.running_mean.clone()
    with cap.preserved_batchnorm_stats(model):
        model(x)
    assert torch.equal(norm.running_mean, stats) and norm.track_running_stats
    loss = strategy.batch_loss(model, x, y, epoch=1)
    assert strategy._applied  # MAIL's attention weights were perturbed for this step
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.parameters())
    strategy.after_step(model, epoch=1)
    assert not strategy._applied


# -- MAIL ---------------------------------------------------------------------------------------------
def test_mail_is_registered():
    assert "mail_rn18" in MODELS


@pytest.mark.parametrize("name", NAMES)
def test_each_defense_builds_and_runs_on_mail(name, d12_small, batch):
    model = defended(name, d12_small.info, model="mail_rn18").eval()
    with torch.no_grad():
        out = model(batch[0][:2])
    assert out.shape == (2, 2) and torch.isfinite(out).all()
    assert model.randomized is RANDOMIZED[name]
    counts = {
        "pni": sum(isinstance(m, pni.WeightNoise) for m in model.modules()),
        "dbn": sum(isinstance(m, dbn.DualBatchNorm) for m in model.modules()),
        "learn2perturb": len(learn2perturb.perturbation_maps(model)),
        "rpf": sum(isinstance(m, rpf.RandomProjectionConv2d) for m in model.modules()),
        "cap": len(cap.attention_weights(model, cap.AUTO_ATTENTION)),
        "ctrw": sum(isinstance(m, ctrw.RandomWeight) for m in model.modules()),
    }[name]
    plain = build_model("mail_rn18", d12_small.info)
    convs = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in plain.modules())
    expected = {"pni": convs, "learn2perturb": 9, "rpf": 1, "ctrw": 1}
    if name in expected:
        assert counts == expected[name]
    else:
        assert counts > 0  # every BatchNorm split / MAIL's CA and EMCAM weights found
    assert math.isfinite(float(out.sum()))


def test_shapes_follow_a_two_branch_mail_on_packed_inputs(d12_small, batch):
    info = d12_small.info
    paired = dataclasses.replace(info, dataset="d12+d12", tasks=info.tasks * 2, mean=info.mean * 2,
                                 std=info.std * 2)
    x = torch.stack([batch[0][:2], batch[0][2:4]], 1)  # (B, m=2, C, H, W)
    rpf_model = defended("rpf", paired, model="mail_rn18").eval()
    stems = [n for n, m in rpf_model.named_modules() if isinstance(m, rpf.RandomProjectionConv2d)]
    assert stems == ["net.branches.0.stem.0", "net.branches.1.stem.0"]
    assert len(learn2perturb.perturbation_maps(defended("learn2perturb", paired, model="mail_rn18"))) == 18
    ctrw_model = defended("ctrw", paired, model="mail_rn18").eval()
    assert ctrw_model.net[0].sd.shape == (1, 2, 1, 28, 28)
    with torch.no_grad():
        outputs = ctrw_model(x)
    assert [o.shape for o in outputs] == [(2, 2), (2, 2)]
