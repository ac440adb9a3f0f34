"""MAIL on real MedMNIST slices: shapes for m = 1..3, ablation switches, gradients, learning, attack.

Data: PneumoniaMNIST (d12), RetinaMNIST (d13) and BreastMNIST (d14) at 28 px,
from the session's data root (tests/conftest.py).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torchvision.models.resnet import BasicBlock

from robustbench_med.attacks.iterative import IterativeLinf
from robustbench_med.data import load_dataset
from robustbench_med.data.spec import DataInfo, TaskInfo
from robustbench_med.errors import BadInputError
from robustbench_med.models import build_model
from robustbench_med.models.mail.ca import ChannelAttention
from robustbench_med.models.mail.emcam import EMCAM
from robustbench_med.models.mail.emsca import EMSCA
from robustbench_med.models.mail.erla import ERLA
from robustbench_med.models.mail.mfifa import MFIFA
from robustbench_med.models.mail.msgdc import MSGDC, PointwiseOnly
from robustbench_med.models.profile import profile
from robustbench_med.training.scoring import evaluate_split

SIZE = 28
PAIRS = {1: "d12", 2: "d12+d14", 3: "d12+d13+d14"}


@pytest.fixture(scope="module")
def datasets(data_root):
    return {m: load_dataset(name, data_root=data_root, image_size=SIZE, n_train=64, n_val=16, n_test=16)
            for m, name in PAIRS.items()}


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def instances(model: torch.nn.Module, kind: type) -> list[torch.nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("m", [1, 2, 3])
def test_output_shapes_for_one_two_and_three_modalities(datasets, m):
    data = datasets[m]
    model = build_model("mail_rn18", data.info, seed=0).eval()
    x = data.test.x[:4]
    with torch.no_grad():
        out = model(x)
    if m == 1:
        assert x.shape == (4, 1, SIZE, SIZE) and out.shape == (4, 2)
        return
    assert x.shape[1] == m and isinstance(out, tuple) and len(out) == m
    assert [o.shape for o in out] == [(4, task.n_classes) for task in data.info.tasks]
    assert len(model.net.branches) == m and len(model.net.emcams) == 4
    assert model.net.emcams[0].theta_m.shape == (m, 64)


@pytest.mark.parametrize("name", ["mail_rn50", "mail_mnv2"])
def test_other_bodies_take_paired_input(datasets, name):
    data = datasets[2]
    model = build_model(name, data.info, seed=0).eval()
    with torch.no_grad():
        out = model(data.test.x[:2])
    assert [o.shape for o in out] == [(2, 2), (2, 2)]
    assert len(instances(model, ERLA)) == (32 if name == "mail_rn50" else 8)


def test_wrong_input_shape_is_refused(datasets):
    model = build_model("mail_rn18", datasets[2].info, seed=0)
    with pytest.raises(ValueError, match=r"\(B, 2, C, H, W\)"):
        model(datasets[1].test.x[:2])


# name, modules that must be gone, the sign of the parameter change (ResNet basic blocks
# are larger than ERLA blocks, as in the paper's Table 4: 23.4 M without ERLA)
ABLATIONS = [
    ("mail_rn18-no-erla", [ERLA], +1),
    ("mail_rn18-plain", [ERLA, EMCAM], +1),
    ("mail_rn18-no-mfifa", [MFIFA], -1),
    ("mail_rn18-no-emsca", [EMSCA], -1),
    ("mail_rn18-emila-no-ca", [ChannelAttention], -1),
    ("mail_rn18-emsca-no-msgdc", [], -1),
    ("mail_rn18-mfifa-no-co", [], -1),
    ("mail_rn18-mfifa-no-df", [], -1),
    ("mail_rn18-emila-no-msgdc", [], -1),
]


@pytest.mark.parametrize(("name", "gone", "change"), ABLATIONS)
def test_each_ablation_removes_what_it_names(datasets, name, gone, change):
    info = datasets[2].info
    base = build_model("mail_rn18", info, seed=0)
    variant = build_model(name, info, seed=0)
    for kind in gone:
        assert instances(base, kind) and not instances(variant, kind), kind.__name__
    assert (params(variant) - params(base)) * change > 0
    if name.endswith("no-erla") or name.endswith("plain"):
        assert len(instances(variant, BasicBlock)) == 8 * 2
    with torch.no_grad():
        out = variant.eval()(datasets[2].test.x[:2])
    assert [o.shape for o in out] == [(2, 2), (2, 2)]


def test_component_ablations_drop_exactly_their_parts(datasets):
    info = datasets[2].info
    m, stages = 2, 4
    base = build_model("mail_rn18", info, seed=0)
    no_co = build_model("mail_rn18-mfifa-no-co", info, seed=0)
    no_df = build_model("mail_rn18-mfifa-no-df", info, seed=0)
    assert params(base) - params(no_co) == 3 * m * stages  # alpha, phi, gamma per modality
    assert params(base) - params(no_df) == 2 * m * stages  # phi, gamma
    assert all(not hasattr(f, "alpha") for f in instances(no_co, MFIFA))
    assert all(hasattr(f, "alpha") and not hasattr(f, "phi") for f in instances(no_df, MFIFA))
    no_msgdc = build_model("mail_rn18-emsca-no-msgdc", info, seed=0)
    assert all(e.msgdc is None for e in instances(no_msgdc, EMSCA))
    emila_plain = build_model("mail_rn18-emila-no-msgdc", info, seed=0)
    assert len(instances(emila_plain, MSGDC)) == stages  # only EMSCA's remain
    assert len(instances(emila_plain, PointwiseOnly)) == 2 * 8 * m  # two EMILAs in each of 8 ERLAs


def test_cross_modal_interaction_switch(datasets):
    x = datasets[2].test.x[:2].transpose(0, 1)[..., :8, :8].expand(2, 2, 64, 8, 8).contiguous()
    other = x.clone()
    other[1] = torch.rand_like(other[1])
    torch.manual_seed(0)
    with_cmi = EMSCA(64, 2)
    without = EMSCA(64, 2, cross_modal=False)
    without.load_state_dict(with_cmi.state_dict())
    with torch.no_grad():
        assert not torch.allclose(with_cmi.contexts(x)[0], with_cmi.contexts(other)[0])
        assert torch.equal(without.contexts(x)[0], without.contexts(other)[0])
        assert not torch.allclose(with_cmi.contexts(x)[0], without.contexts(x)[0])


def test_cascaded_fusion_is_another_function_of_the_same_weights(datasets):
    info = datasets[2].info
    parallel = build_model("mail_rn18", info, seed=0).eval()
    cascaded = build_model("mail_rn18-cascaded", info, seed=0).eval()
    cascaded.load_state_dict(parallel.state_dict())
    assert all(e.fusion == "cascaded" for e in instances(cascaded, EMCAM))
    x = datasets[2].test.x[:4]
    with torch.no_grad():
        assert not torch.allclose(parallel(x)[0], cascaded(x)[0])


def test_gradients_reach_every_learnable_scalar(datasets):
    data = datasets[2]
    model = build_model("mail_rn18", data.info, seed=0).train()
    F.cross_entropy(model(data.train.x[:8])[0], data.train.y[:8, 0]).backward()
    names = ("theta", "theta_f", "theta_m", "alpha", "phi", "gamma")
    scalars = [(n, p) for n, p in model.named_parameters() if n.rsplit(".", 1)[-1] in names]
    assert {n.rsplit(".", 1)[-1] for n, _ in scalars} == set(names)
    assert len(scalars) == 16 * 2 * 1 + 4 * 6  # a CA theta per EMILA; six per EMCAM
    for name, p in scalars:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    mfifa = model.net.emcams[0].mfifa
    assert mfifa.alpha.shape == mfifa.phi.shape == mfifa.gamma.shape == (2,)  # per modality


def test_dropout_follows_the_mode_and_mail_is_deterministic_at_inference(datasets):
    model = build_model("mail_rn18", datasets[2].info, seed=0).eval()
    x = datasets[2].test.x[:4]
    with torch.no_grad():
        assert torch.equal(model(x)[0], model(x)[0])
    assert model.randomized is False
    coded = build_model("mail_rn18", datasets[2].info, seed=0, model_options={"always_on_dropout": True})
    assert coded.randomized is True


def test_same_seed_same_model(datasets):
    a = build_model("mail_rn18", datasets[2].info, seed=5)
    b = build_model("mail_rn18", datasets[2].info, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(),
                                                 strict=True))


def test_options_are_validated(datasets):
    info = datasets[2].info
    with pytest.raises(BadInputError, match="no option"):
        build_model("mail_rn18", info, model_options={"widht": 2})
    with pytest.raises(BadInputError, match="must be a bool"):
        build_model("mail_rn18", info, model_options={"erla": "no"})
    with pytest.raises(BadInputError, match="fusion"):
        build_model("mail_rn18", info, model_options={"fusion": "serial"})
    assert build_model("mail", info).net.emcams is not None  # alias


def test_profile_counts_the_paper_configuration():
    info = DataInfo("d6+d5", 3, 128, (TaskInfo("d6", 5), TaskInfo("d5", 7)), ((0.5,) * 3,) * 2,
                    ((0.25,) * 3,) * 2)
    report = profile("mail_rn18", info)
    # the official code (misti1203/MAIL-Robust-MAIL Code/MAIL.ipynb, which prints no summary), counted
    # layer by layer by hand: 11,374,464 trainable, less its
    # 1,924 unused weights, plus 12 for per-modality alpha, phi, gamma
    assert report["trainable_params"] == 11_374_464 - 1_924 + 12
    assert report["bn_stats"] == 49_920
    assert 1.2 < report["gflops"] < 1.4 and report["gmacs"] == report["gflops"] / 2


def test_train_model_teaches_mail_a_real_slice(trained_mail, d12_mail):
    """``train_model`` teaches MAIL (the session's ``trained_mail``, tests/conftest.py), not a constant
    answer: above the majority share by a margin, right on both classes, and ranking them well."""
    model, data, history = trained_mail.model.eval(), d12_mail, trained_mail.metrics["history"]
    y = data.test.y
    majority = float(torch.bincount(y).max()) / len(y)
    with torch.no_grad():
        probabilities = model(data.test.x).softmax(1)
    predicted = probabilities.argmax(1)
    accuracy = float((predicted == y).float().mean())
    recall = [float((predicted[y == c] == c).float().mean()) for c in (0, 1)]
    assert accuracy > majority + 0.08, (accuracy, majority, history)
    assert min(recall) > 0.25, (recall, history)
    assert roc_auc_score(y.numpy(), probabilities[:, 1].numpy()) > 0.75
    assert evaluate_split(model, data.test, torch.device("cpu"))[0] == pytest.approx(accuracy)


def test_pgd_lowers_mails_accuracy(trained_mail, d12_mail):
    model, data = trained_mail.model.eval(), d12_mail
    with torch.no_grad():
        correct = (model(data.test.x).argmax(1) == data.test.y).nonzero().flatten()[:64]
    x, y = data.test.x[correct], data.test.y[correct]
    assert len(x) >= 32
    x_adv = IterativeLinf(model, eps=4 / 255, alpha=1 / 255, steps=10)(x, y)
    with torch.no_grad():
        robust = float((model(x_adv).argmax(1) == y).float().mean())
    assert float((x_adv - x).abs().max()) <= 4 / 255 + 1e-6
    assert 0.0 <= float(x_adv.min()) and float(x_adv.max()) <= 1.0
    assert robust < 0.75, robust  # every point was right before the attack
