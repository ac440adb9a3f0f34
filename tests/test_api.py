"""The library API, used as a notebook would: a plain torchvision model, real D12 images, evaluate()."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import robustbench_med as rm
from robustbench_med.errors import BadInputError, MedrobustError
from robustbench_med.evaluation.subject import state_sha256
from robustbench_med.store import STORE_NAME, ResultStore

README = Path(__file__).resolve().parents[1] / "README.md"


class Normalize(nn.Module):
    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@pytest.fixture(scope="module")
def d12(data_root):
    return rm.load_dataset("d12", image_size=28, data_root=data_root, n_train=400, n_val=100, n_test=40)


@pytest.fixture(scope="module")
def trained(d12):
    """A torchvision ResNet18 built here (not through the registry), trained 2 epochs on real images;
    the normalisation inside ``model``, ``net`` the same network expecting normalised inputs."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=2)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model = nn.Sequential(Normalize(0.5, 0.25), net)
    rm.train(model, d12, recipe="fast", epochs=2, device="cpu")
    return model.eval(), net


def test_import_is_cheap_and_lists_filter_like_timm():
    code = "import sys, robustbench_med as rm; assert 'torch' not in sys.modules; print(rm.__version__)"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert rm.list_models("mail*") and all(n.startswith("mail") for n in rm.list_models("mail*"))
    assert "resnet18" in rm.list_models() and rm.list_models("nothing*") == []
    assert rm.list_attacks("pgd*") == ["pgd-10", "pgd-20", "pgd-50", "pgd-100"]
    assert "pni" in rm.list_defenses() and "d12" in rm.list_datasets("d1?")


def test_evaluate_a_plain_torchvision_model(trained, d12, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, _ = trained
    x, y = d12.test.x, d12.test.y
    events = []
    report = rm.evaluate(model, (x, y), ["pgd-10"], presets="standard", device="cpu", progress=events.append)
    clean, pgd = report.cell("clean"), report.cell("pgd-10")
    majority = max(float((y == c).float().mean()) for c in (0, 1))
    assert clean.n == pgd.n == 40
    assert clean.accuracy > majority + 0.1, (clean.accuracy, majority)
    assert pgd.accuracy < clean.accuracy - 0.2, (pgd.accuracy, clean.accuracy)
    assert pgd.n_attacked == int(clean.flags.sum()) and not (pgd.flags & ~clean.flags).any()
    assert pgd.settings["steps"] == 10 and pgd.settings["preset"] == "standard"
    assert {c.name for c in report.checks} >= {"large-eps-above-chance", "clean-right-on-several-classes"}
    frame = report.to_frame()
    assert list(frame["attack"]) == [c.key.attack for c in report.cells]
    assert set(frame["model"]) == {"Sequential"}
    assert any(e.kind == "cell" for e in events) and any(e.kind == "check" for e in events)
    assert report.store_path is None and list(tmp_path.iterdir()) == [], "evaluate without store= wrote files"


def test_store_gets_the_cli_rows_and_resumes(trained, data_root, tmp_path):
    model, _ = trained
    kwargs = dict(image_size=28, data_root=data_root, n_test=40, presets="standard", checks=False,
                  device="cpu", store=tmp_path, name="my-resnet18")
    first = rm.evaluate(model, "d12", "pgd-10", **kwargs)
    rows = ResultStore(tmp_path / STORE_NAME).frame()
    assert sorted(rows["attack"]) == ["clean", "pgd-10"]
    assert set(rows["model"]) == {"my-resnet18"} and set(rows["subset"]) == {"test[40]"}
    assert set(rows["checkpoint_sha"]) == {state_sha256(model)} and set(rows["dataset"]) == {"d12"}
    assert dict(zip(rows["attack"], rows["accuracy"], strict=True)) == {
        c.key.attack: c.accuracy for c in first.cells}
    again = rm.evaluate(model, "d12", "pgd-10", **kwargs)
    assert all(c.cached for c in again.cells)
    assert [c.accuracy for c in again.cells] == [c.accuracy for c in first.cells]


def test_a_model_normalising_outside_is_refused_by_its_recorded_accuracy(trained, d12):
    model, net = trained  # ``net`` expects (x - 0.5) / 0.25, as if the user normalised outside
    x, y = d12.test.x, d12.test.y
    with torch.no_grad():
        recorded = float((net((x - 0.5) / 0.25).argmax(1) == y).float().mean())
    with pytest.raises(MedrobustError, match=r"differs from the .* recorded .* normalisation"):
        rm.evaluate(net, (x, y), "pgd-10", presets="standard", device="cpu", clean_accuracy=recorded)
    with pytest.raises(BadInputError, match=r"must lie in \[0, 1\]"):  # normalised data is refused too
        rm.evaluate(net, ((x - 0.5) / 0.25, y), "pgd-10", device="cpu")
    ok = rm.evaluate(model, (x, y), "pgd-10", presets="standard", device="cpu", checks=False,
                     clean_accuracy=recorded)  # the same network with its normalisation inside passes
    assert abs(ok.cell("clean").accuracy - recorded) < 1e-6


def test_create_model_and_load_dataset(d12, data_root):
    model = rm.create_model("resnet18", dataset=d12, image_size=28)
    assert model(d12.test.x[:2]).shape == (2, 2)
    x, y = rm.load_dataset("d12", "test", image_size=28, data_root=data_root, n_test=8)
    assert x.shape == (8, 1, 28, 28) and 0 <= float(x.min()) and float(x.max()) <= 1 and y.shape == (8,)


def test_the_readme_example_runs_as_written(data_root, tmp_path, monkeypatch):
    blocks = re.findall(r"<!-- api-example -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, "README.md needs one python block after <!-- api-example -->"
    monkeypatch.setenv("MEDROBUST_DATA", str(data_root))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    report = namespace["report"]
    assert report.cell("clean").n == 40 and report.cell("pgd-10").accuracy <= report.cell("clean").accuracy


@pytest.mark.parametrize(("queries", "message"), [
    (0, "square_queries must be between 1 and 10000, got 0"),
    (-3, "square_queries must be between 1 and 10000, got -3"),
    (2.5, "square_queries must be an integer number of queries, got 2.5"),
    (True, "square_queries must be an integer number of queries, got True"),
])
def test_a_bad_square_budget_is_refused_before_any_data(queries, message):
    with pytest.raises(BadInputError, match=re.escape(message)):
        rm.evaluate(torch.nn.Identity(), "no-such-data", "square", square_queries=queries)
