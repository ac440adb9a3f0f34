"""Training on a real PneumoniaMNIST slice: it must learn, and the zoo must keep it faithfully."""

from __future__ import annotations

import json

import pytest
import torch

from robustbench_med.errors import CheckpointError
from robustbench_med.models import build_model
from robustbench_med.models.zoo import load_checkpoint
from robustbench_med.training.config import TrainConfig
from robustbench_med.training.scoring import evaluate_split


def test_short_training_beats_the_majority_class(trained_resnet, d12_small):
    majority = float(torch.bincount(d12_small.test.y).max()) / len(d12_small.test)
    accuracy, _ = evaluate_split(trained_resnet.model, d12_small.test, torch.device("cpu"))
    assert accuracy > majority + 0.05, (accuracy, majority)
    assert trained_resnet.metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_checkpoint_round_trip_and_sidecar(trained_resnet, d12_small):
    sidecar = json.loads(trained_resnet.path.with_suffix(".json").read_text())
    assert sidecar["sha256"] == trained_resnet.sha256
    assert sidecar["config"]["model"] == "resnet18" and sidecar["config"]["train"]["epochs"] == 3
    assert {"torch", "torchattacks", "medmnist"} <= set(sidecar["versions"])
    assert 0.0 < sidecar["metrics"]["val_accuracy"] <= 1.0
    again = load_checkpoint(trained_resnet.path)
    x = d12_small.test.x[:8]
    with torch.no_grad():
        assert torch.allclose(again.model(x), trained_resnet.model(x), atol=1e-6)


def test_normalisation_lives_inside_the_model(trained_resnet):
    state = trained_resnet.model.state_dict()
    assert "mean" in state and "std" in state
    assert float(state["mean"].flatten()[0]) == pytest.approx(trained_resnet.info.mean[0][0])


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="not a loadable medrobust checkpoint"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a medrobust checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_same_seed_same_initial_weights(d12_small):
    a = build_model("resnet18", d12_small.info, seed=3)
    b = build_model("resnet18", d12_small.info, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("name", ["resnet50", "resnet101", "mobilenetv2"])
def test_other_backbones_adapt_to_channels_and_classes(name, d12_small):
    model = build_model(name, d12_small.info).eval()
    with torch.no_grad():
        assert model(d12_small.test.x[:2]).shape == (2, 2)


def test_unknown_model_option_is_a_clear_error(d12_small):
    from robustbench_med.errors import BadInputError

    with pytest.raises(BadInputError, match="has no option depth"):
        build_model("resnet18", d12_small.info, model_options={"depth": 5})


def test_bad_training_settings_are_refused():
    from robustbench_med.errors import BadInputError

    with pytest.raises(BadInputError, match="unknown training recipe"):
        TrainConfig(recipe="quick")
    with pytest.raises(BadInputError, match="--epochs"):
        TrainConfig(epochs=0)


def test_checkpoint_identity_includes_the_attack_a_defense_trains_with():
    from robustbench_med.workflow import ModelRequest

    def key(eps: float, defense: str | None) -> str:
        return ModelRequest("resnet18", "d12", 28, TrainConfig(adv_eps=eps), defense=defense).config().key

    assert key(4 / 255, "pni") != key(8 / 255, "pni")  # PNI's recipe trains with PGD at adv_eps
    assert key(4 / 255, None) == key(8 / 255, None)  # standard training never uses it
