"""The README's "Add a defense / model / attack / dataset" examples run as written.

Each example is the python block after ``<!-- plugin-example: KIND -->``: it registers its entry the
way the plugin module would on import, then uses it through the library API on real PneumoniaMNIST
images. The test runs the block, then checks what the section claims: the entry is listed (from the
live registry, with its package, randomness and options), the CLI finds it, and the entry-point
block names the registry's group and the example's module.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import robustbench_med as rm
from robustbench_med import catalog
from robustbench_med.cli import main
from robustbench_med.errors import BadInputError

README = Path(__file__).resolve().parents[1] / "README.md"
KINDS = {"defense": "defenses", "model": "models", "attack": "attacks", "dataset": "datasets"}


def section(kind: str) -> str:
    """The README section "Add a KIND", up to the next section."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"^## Add an? {kind}\n(.*?)(?=^## )", text, re.S | re.M)
    assert found, f"README.md has no section 'Add a {kind}'"
    return found.group(1)


def example(kind: str) -> str:
    blocks = re.findall(rf"<!-- plugin-example: {kind} -->\n```python\n(.*?)```", section(kind), re.S)
    assert len(blocks) == 1, f"'Add a {kind}' needs one python block after <!-- plugin-example: {kind} -->"
    return blocks[0]


def run_example(kind: str, monkeypatch, tmp_path: Path, data_root: Path) -> dict:
    """Run the example as its plugin module would run (named after its first comment line)."""
    code = example(kind)
    module = re.match(r"# (\w+)/__init__\.py\n", code)
    assert module, f"the {kind} example starts with '# <package>/__init__.py'"
    monkeypatch.setenv("MEDROBUST_DATA", str(data_root))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": module.group(1)}
    exec(compile(code, f"README.md (Add a {kind})", "exec"), namespace)
    if "report" in namespace:  # a model that learned, and no masking check failed
        failed = [f"{c.name}: {c.detail}" for c in namespace["report"].checks if c.status == "fail"]
        assert not failed, f"the {kind} example's report fails a check: {failed}"
    return namespace


def listed(capsys, *args: str):
    capsys.readouterr()  # what the example printed
    code = main(["list", *args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_entry_point_block_names_the_group_and_the_module(kind):
    package = re.match(r"# (\w+)/__init__\.py\n", example(kind)).group(1)
    groups = re.findall(r'^\[project\.entry-points\."([\w.]+)"\]\n[\w-]+ = "(\w+)', section(kind), re.M)
    assert groups == [(catalog.KINDS[KINDS[kind]].group, package)]


def test_add_a_defense(capsys, monkeypatch, tmp_path, data_root):
    from robustbench_med.data.spec import DataInfo, TaskInfo
    from robustbench_med.randomness import is_randomized

    run_example("defense", monkeypatch, tmp_path, data_root)
    info = DataInfo(dataset="toy", channels=1, image_size=28, tasks=(TaskInfo("toy", 2),),
                    mean=((0.5,),), std=((0.25,),))
    model = rm.create_model("resnet18", dataset=info, defense="gaussian-noise",
                            defense_options={"sigma": 0.05})
    assert is_randomized(model) and model.eval()(torch.rand(2, 1, 28, 28)).shape == (2, 2)
    record = listed(capsys, "defenses", "--details", "gaussian-noise")
    assert record["randomized"] is True and record["from"] == "my_defense"
    assert record["options"] == [{"name": "sigma", "type": "float", "default": 0.1, "required": False}]
    assert "gaussian-noise" in [row["name"] for row in listed(capsys, "defenses", "--randomized")]


def test_add_a_model(capsys, monkeypatch, tmp_path, data_root):
    namespace = run_example("model", monkeypatch, tmp_path, data_root)
    report = namespace["report"]
    assert report.cell("clean").n == 40 and report.cell("pgd-10").accuracy <= report.cell("clean").accuracy
    with pytest.raises(BadInputError, match="model tiny-cnn option width must be an int"):
        rm.create_model("tiny-cnn", dataset=namespace["data"], width="wide")  # as the comment says
    (row,) = listed(capsys, "models", "--family", "cnn")
    assert row["name"] == "tiny-cnn" and row["from"] == "my_models" and row["randomized"] is False
    assert row["options"] == [{"name": "width", "type": "int", "default": 16, "required": False}]


def test_add_an_attack(capsys, monkeypatch, tmp_path, data_root):
    report = run_example("attack", monkeypatch, tmp_path, data_root)["report"]
    frame = report.to_frame()
    fgsm = frame[frame.attack == "fgsm"]
    assert sorted(fgsm.eps.round(6)) == [round(2 / 255, 6), round(8 / 255, 6)] and (fgsm.n == 40).all()
    assert (fgsm.accuracy <= report.cell("clean").accuracy).all()
    (row,) = listed(capsys, "attacks", "--grep", "fgsm")
    assert row["name"] == "fgsm" and row["from"] == "my_attacks" and row["box"] == "white-box"


def test_add_a_dataset(capsys, monkeypatch, tmp_path, data_root):
    namespace = run_example("dataset", monkeypatch, tmp_path, data_root)
    data = namespace["data"]
    assert (len(data.train), len(data.val), len(data.test)) == (240, 30, 30)  # as the comment says
    assert data.info.channels == 1 and namespace["report"].cell("clean").n == 30
    record = listed(capsys, "datasets", "--details", "my-cxr")
    assert record["from"] == "my_datasets" and record["loader"] == "folder"
