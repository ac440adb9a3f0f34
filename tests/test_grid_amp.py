"""A grid file's ``amp`` key is ``medrobust run --amp``: the same values, the same training request
and checkpoint identity; a bad value is one line naming the allowed values and the nearest. No data,
no training: these tests build requests and read grid files only."""

from __future__ import annotations

import pytest

import robustbench_med.cli.run as cli_run
from robustbench_med.cli import main
from robustbench_med.grid.spec import load_spec
from tests.test_grid_plan import run_cli, write

TRAINING = 'recipe = "fast"\nepochs = 2\nimage_size = 28\nn_train = 100'


def run_request(monkeypatch, *flags: str):
    """The ModelRequest ``medrobust run`` builds from ``flags`` (stopped before any data is read)."""
    seen = []
    monkeypatch.setattr(cli_run, "run_and_report", lambda request, **_kw: seen.append(request))
    code = main(["run", "--model", "resnet18", "--dataset", "d12", "--recipe", "fast", "--epochs", "2",
                 "--image-size", "28", "--n-train", "100", *flags])
    assert code == 0 and len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("amp", ["bf16", "off"])
def test_grid_amp_builds_the_request_of_run_amp(monkeypatch, tmp_path, amp):
    spec = load_spec(write(tmp_path, training=f'{TRAINING}\namp = "{amp}"'))
    (request,) = spec.requests
    assert request.train.amp == amp
    expected = run_request(monkeypatch, "--amp", amp)
    assert request == expected
    assert request.config().key == expected.config().key  # the same zoo checkpoint


def test_bf16_is_part_of_the_checkpoint_identity_and_off_is_the_default(tmp_path):
    plain = load_spec(write(tmp_path, training=TRAINING)).requests[0]
    off = load_spec(write(tmp_path, training=f'{TRAINING}\namp = "off"')).requests[0]
    bf16 = load_spec(write(tmp_path, training=f'{TRAINING}\namp = "bf16"')).requests[0]
    assert plain.train.amp == "off" and plain.config().key == off.config().key
    assert "amp" not in plain.config().train  # fp32 checkpoints keep their identity
    assert bf16.config().train["amp"] == "bf16" and bf16.config().key != plain.config().key


def test_block_training_amp_overrides_the_top_level(tmp_path):
    grid = write(tmp_path, '[[block]]\nname = "fp32"\n\n[[block]]\nname = "mixed"\n'
                 '[block.training]\namp = "bf16"\n', training=TRAINING)
    spec = load_spec(grid)
    assert [e.request.train.amp for e in spec.entries] == ["off", "bf16"]
    assert [e.block for e in spec.entries] == ["block 1 (fp32)", "block 2 (mixed)"]


def test_plan_says_bf16_training(capsys, tmp_path):
    grid = write(tmp_path, training=f'{TRAINING}\namp = "bf16"')
    code, out, err = run_cli(capsys, "grid", "plan", str(grid), "--results-dir", str(tmp_path / "r"))
    assert code == 0, err
    assert "training fast in bf16, 2 epochs at 28px" in out


@pytest.mark.parametrize(("sections", "extra", "message"), [
    ({"training": f'{TRAINING}\namp = "fp16"'}, "",
     "unknown amp in [training]: fp16; did you mean bf16? (allowed: off, bf16)"),
    ({"training": f'{TRAINING}\namp = "none"'}, "", "unknown amp in [training]: none (allowed: off, bf16)"),
    ({"training": f"{TRAINING}\namp = true"}, "", "[training] amp must be a string"),
    ({}, '[[block]]\n[block.training]\namp = "bf61"\n',
     "unknown amp in [block.training] of block 1: bf61; did you mean bf16? (allowed: off, bf16)"),
])
def test_bad_amp_is_one_line_and_exit_2(capsys, tmp_path, sections, extra, message):
    grid = write(tmp_path, extra, **sections)
    code, _out, err = run_cli(capsys, "grid", "plan", str(grid), "--results-dir", str(tmp_path / "r"))
    assert code == 2, err
    assert err.startswith(f"error: grid file {grid}: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
