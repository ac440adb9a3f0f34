"""Provenance: results keyed by the code that made them, checkpoints known by their content."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import torch

import robustbench_med
import robustbench_med.evaluation.runner as runner_module
from robustbench_med.models.zoo import Zoo, load_checkpoint
from robustbench_med.pipeline import RunConfig, benchmark
from robustbench_med.store import STORE_NAME, ResultStore
from robustbench_med.training.config import TrainConfig
from robustbench_med.versions import PACKAGE_ROOT, code_text, code_version, source_digest
from robustbench_med.workflow import ModelRequest, train_and_save

CPU = torch.device("cpu")


def test_the_code_digest_follows_result_deciding_source_only(tmp_path):
    copy = tmp_path / "robustbench_med"
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    original = source_digest(copy)
    assert original == source_digest(PACKAGE_ROOT)
    with open(copy / "report" / "leaderboard.py", "a") as fh:
        fh.write("\n# a reporting change decides no number\n")
    assert source_digest(copy) == original
    with open(copy / "attacks" / "iterative.py", "a") as fh:
        fh.write("\nSTEP_FLOOR = 1e-6  # an attack change may decide every number\n")
    assert source_digest(copy) != original
    assert code_version().startswith(robustbench_med.__version__ + "+")
    assert code_version().split("+")[1] == source_digest()[:12]


@pytest.fixture
def package(tmp_path) -> Path:
    copy = tmp_path / "robustbench_med"
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _first(tree: ast.AST, kind: type, test=lambda node: True):
    return next(node for node in ast.walk(tree) if isinstance(node, kind) and test(node))


def test_docstrings_comments_and_formatting_keep_the_digest(package):
    """The rows a docstring edit would otherwise mark as older code stay current."""
    path = package / "attacks" / "iterative.py"
    lines = path.read_text().splitlines(keepends=True)
    original = source_digest(package)
    tree = ast.parse("".join(lines))
    function = _first(tree, ast.ClassDef | ast.FunctionDef, lambda f: isinstance(ast.get_docstring(f), str))
    for doc, text in ((function.body[0], "Rewritten: a docstring decides no number."),
                      (tree.body[0], "A new module docstring.")):  # bottom up: line numbers hold
        lines[doc.lineno - 1: doc.end_lineno] = [f'{" " * doc.col_offset}"""{text}"""  # a comment\n\n']
    lines.append("\n\n# a comment at the end\n")
    path.write_text("".join(lines))
    assert ast.get_docstring(ast.parse(path.read_text())) == "A new module docstring."  # the edit is real
    assert source_digest(package) == original


def test_a_constant_or_a_statement_changes_the_digest(package):
    path = package / "attacks" / "iterative.py"
    text = path.read_text()
    original = source_digest(package)
    number = _first(ast.parse(text), ast.Constant, lambda c: type(c.value) in (int, float))
    lines = text.splitlines(keepends=True)
    line = lines[number.lineno - 1]
    lines[number.lineno - 1] = (line[:number.col_offset] + repr(number.value + 1)
                                + line[number.end_col_offset:])
    path.write_text("".join(lines))
    changed = source_digest(package)
    assert changed != original
    path.write_text(text)
    assert source_digest(package) == original
    path.write_text(text.replace("\nimport ", "\nimport math  # unused\nimport ", 1))
    assert source_digest(package) not in (original, changed)


def test_a_file_that_does_not_parse_is_taken_byte_for_byte():
    assert code_text(b"def broken(:\n") == b"def broken(:\n"
    assert code_text(b"x = 1  # one\n") == code_text(b"x=1\n") != code_text(b"x = 2\n")


@pytest.fixture(scope="module")
def tiny(data_root, tmp_path_factory):
    """A ResNet18 trained one epoch on 160 real D12 images, in its own results folder."""
    from robustbench_med.data import load_dataset

    request = ModelRequest(model="resnet18", dataset="d12", image_size=28, augment=False, n_train=160,
                           n_val=64, train=TrainConfig(epochs=1, batch_size=32, recipe="fast"))
    data = load_dataset("d12", data_root=data_root, image_size=28, n_train=160, n_val=64, n_test=24)
    results = tmp_path_factory.mktemp("provenance")
    ckpt = train_and_save(request, data, Zoo(results / "zoo"), CPU)
    return request, data, results, ckpt


def run(request: ModelRequest, results: Path, data_root: Path):
    cfg = RunConfig(request=request, attacks="pgd-10", presets=("standard",), n_test=24, data_root=data_root,
                    results_dir=results, device="cpu", progress=False, checks=False)
    return benchmark(cfg)


def test_retraining_an_identical_configuration_keeps_its_file_and_its_rows(tiny, data_root):
    request, data, results, ckpt = tiny
    first = run(request, results, data_root)
    assert not any(c.cached for c in first.cells)
    before = ckpt.path.read_bytes()
    again = train_and_save(request, data, Zoo(results / "zoo"), CPU)
    assert again.path == ckpt.path and again.sha256 == ckpt.sha256
    assert ckpt.path.read_bytes() == before, "an identical retraining rewrote the checkpoint file"
    second = run(request, results, data_root)
    assert all(c.cached for c in second.cells), "retraining the same configuration recomputed rows"
    assert ResultStore(results / STORE_NAME).count() == len(first.cells)


def test_different_weights_never_overwrite_a_checkpoint_that_rows_refer_to(tiny):
    request, data, results, ckpt = tiny
    before = ckpt.path.read_bytes()
    model = load_checkpoint(ckpt.path).model
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    path = Zoo(results / "zoo").save(model, request.config(), data.info, {"note": "changed"})
    assert path != ckpt.path and path.parent == ckpt.path.parent
    assert ckpt.path.read_bytes() == before
    assert load_checkpoint(path).sha256 != ckpt.sha256


def test_the_identity_covers_weights_and_config_not_timings(tiny):
    request, data, results, ckpt = tiny
    loaded = load_checkpoint(ckpt.path)
    other = Zoo(results / "other-zoo").save(loaded.model, request.config(), data.info,
                                             {"train_seconds": 12345.0})
    assert load_checkpoint(other).sha256 == ckpt.sha256


def test_a_code_change_makes_the_next_run_recompute(tiny, data_root, monkeypatch):
    request, _, results, _ = tiny
    run(request, results, data_root)
    assert all(c.cached for c in run(request, results, data_root).cells)
    monkeypatch.setattr(runner_module, "code_version", lambda: "0.1.0+edited-attack")
    after = run(request, results, data_root)
    assert not any(c.cached for c in after.cells)
    assert set(c.key.code_version for c in after.cells) == {"0.1.0+edited-attack"}
