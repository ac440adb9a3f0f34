"""Transfer examples made once, Square's budget as an option, and what a run says before and while
it computes: on real PneumoniaMNIST points (d12) with tiny CNNs trained here in seconds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from robustbench_med.data.spec import Split
from robustbench_med.evaluation import runner as runner_module
from robustbench_med.evaluation.runner import GridRunner, GridSettings
from robustbench_med.evaluation.subject import from_module
from robustbench_med.evaluation.transfer_cache import FOLDER, TransferCache, tensor_sha256
from robustbench_med.store import STORE_NAME, ResultStore

ATTACK = "square-surrogate-30"  # a small query budget: the cache, not Square, is under test


class Counting(nn.Module):
    """Counts forward passes (a backward always follows a forward): the surrogate's work."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(x)


@dataclass(frozen=True)
class Recording(TransferCache):
    """The runner's cache, keeping every tensor it hands out (to compare examples bit for bit)."""

    seen: list = field(default_factory=list)

    def examples(self, key, craft):
        x_adv, status = super().examples(key, craft)
        self.seen.append((x_adv.clone(), status))
        return x_adv, status


def tiny_cnn(seed: int, width: int, train) -> nn.Module:
    """A two-layer CNN trained for two epochs on the 800 training images (28 px): 0.72-0.83 test
    accuracy for the seeds below, against a majority share of 0.5625."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(2 * width * 49, 2))
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(2):
        for idx in torch.randperm(len(train.x)).split(32):
            optimiser.zero_grad()
            nn.functional.cross_entropy(net(train.x[idx]), train.y[idx]).backward()
            optimiser.step()
    return net.eval()


@pytest.fixture(scope="module")
def nets(d12_small) -> dict[str, nn.Module]:
    return {"a": tiny_cnn(1, 8, d12_small.train), "b": tiny_cnn(2, 8, d12_small.train),
            "surrogate": tiny_cnn(3, 12, d12_small.train), "other": tiny_cnn(4, 12, d12_small.train)}


def evaluate(net: nn.Module, name: str, data, folder: Path | None, surrogate: nn.Module | None, *,
             attacks: str = ATTACK, eps: tuple[float, ...] = (), checks: bool = False,
             cache: TransferCache | None = None, square_queries: int = 5000, events=None):
    settings = GridSettings(attacks=attacks, presets=("standard",), eps=eps, batch_size=64,
                            checks=checks, square_queries=square_queries)
    store = ResultStore(folder / STORE_NAME) if folder is not None else None
    return GridRunner(from_module(net, dataset="d12", name=name), data.test, data.info, settings,
                      device=torch.device("cpu"), store=store, surrogate=surrogate,
                      transfer_cache=cache, progress=None if events is None else events.append).run()


def transfer_cells(report):
    return [c for c in report.cells if c.key.attack != "clean"]


def test_two_targets_share_one_crafting(nets, d12_small, tmp_path):
    surrogate = Counting(nets["surrogate"])
    cache = Recording(tmp_path / FOLDER)
    first = evaluate(nets["a"], "tiny-a", d12_small, tmp_path, surrogate, cache=cache)
    assert surrogate.calls > 0
    crafted = surrogate.calls
    surrogate.calls = 0
    second = evaluate(nets["b"], "tiny-b", d12_small, tmp_path, surrogate, cache=cache)
    assert surrogate.calls == 0  # the second target never ran the surrogate
    (a,), (b,) = transfer_cells(first), transfer_cells(second)
    assert (a.settings["transfer_cache"], b.settings["transfer_cache"]) == ("miss", "hit")
    stored = ResultStore(tmp_path / STORE_NAME).frame(attack=ATTACK)
    assert [json.loads(s)["transfer_cache"] for s in stored["settings"]] == ["miss", "hit"]
    # different clean-correct sets, one entry crafted over every test point
    assert a.n_attacked != b.n_attacked or not (a.flags == b.flags).all()
    assert len(list((tmp_path / FOLDER).glob("*.pt"))) == 1
    # the reused examples are the crafted ones, and those of a run without any cache
    fresh = Recording(None)
    alone = evaluate(nets["b"], "tiny-b", d12_small, None, surrogate, cache=fresh)
    assert surrogate.calls == crafted
    (miss, _), (hit, _), (off, status) = *cache.seen, *fresh.seen
    assert status == "off" and miss.shape == d12_small.test.x.shape
    assert torch.equal(miss, hit) and torch.equal(hit, off)
    assert (transfer_cells(alone)[0].flags == b.flags).all()


def test_changed_eps_or_surrogate_misses(nets, d12_small, tmp_path):
    def status(net, name, surrogate, eps):
        cell = transfer_cells(evaluate(net, name, d12_small, tmp_path, surrogate, eps=eps))[0]
        return cell.settings["transfer_cache"]

    assert status(nets["a"], "tiny-a", nets["surrogate"], (4 / 255,)) == "miss"
    assert status(nets["b"], "tiny-b", nets["surrogate"], (4 / 255,)) == "hit"
    assert status(nets["b"], "tiny-b", nets["surrogate"], (8 / 255,)) == "miss"
    assert status(nets["a"], "tiny-a2", nets["other"], (4 / 255,)) == "miss"
    assert len(list((tmp_path / FOLDER).glob("*.pt"))) == 3


def test_a_damaged_entry_is_crafted_again(tmp_path):
    cache = TransferCache(tmp_path)
    key = {"points": tensor_sha256(torch.zeros(2, 1, 4, 4))}
    made, status = cache.examples(key, lambda: torch.ones(2, 1, 4, 4))
    assert status == "miss" and torch.equal(made, torch.ones(2, 1, 4, 4))
    (entry,) = tmp_path.glob("*.pt")
    entry.write_bytes(b"not a tensor file")
    again, status = cache.examples(key, lambda: torch.full((2, 1, 4, 4), 0.5))
    assert status == "miss" and torch.equal(again, torch.full((2, 1, 4, 4), 0.5))
    assert cache.examples(key, lambda: torch.zeros(1))[1] == "hit"
    assert not list(tmp_path.glob("*.tmp"))


def test_square_budget_inside_autoattack_is_an_option(nets, d12_small, tmp_path):
    events: list = []
    data = SimpleNamespace(test=Split(d12_small.test.x[:48], d12_small.test.y[:48]),
                           info=d12_small.info)
    report = evaluate(nets["a"], "tiny-a", data, tmp_path, nets["surrogate"],
                      attacks="aa-surrogate,square", square_queries=20, events=events)
    cells = {c.key.attack: c for c in transfer_cells(report)}
    assert set(cells) == {"aa-surrogate[square-20]", "square-20"}
    assert cells["aa-surrogate[square-20]"].settings["square_queries"] == 20
    assert cells["square-20"].settings["steps"] == 20
    kinds = {e.kind for e in events}
    assert {"estimate", "cell-start", "cell"} <= kinds
    # no stored history: each cell is priced by a timed forward+backward times its budget of passes
    lines = [e.message for e in events if e.kind == "estimate"]
    assert not any("no estimate" in line for line in lines), lines
    square = next(line for line in lines if "square-20 (" in line)
    assert "7 passes x" in square and "timed on the model" in square  # 20 queries, a forward each
    # AutoAttack on a binary task: APGD-CE 100, FAB-T 100 x 4/3, Square 20/3; crafted on every point
    aa = next(line for line in lines if "aa-surrogate[square-20] (" in line)
    assert "240 passes x 48 points" in aa and "timed on the surrogate" in aa


def test_a_cached_transfer_attack_is_estimated_free(nets, d12_small, tmp_path):
    evaluate(nets["a"], "tiny-a", d12_small, tmp_path, nets["surrogate"])
    events: list = []
    evaluate(nets["b"], "tiny-b", d12_small, tmp_path, nets["surrogate"], events=events)
    line = next(e.message for e in events if e.kind == "estimate" and ATTACK in e.message)
    assert "~0.0 s (the surrogate's examples are in the transfer cache)" in line


def test_estimates_come_from_stored_timings(nets, d12_small, tmp_path):
    evaluate(nets["a"], "tiny", d12_small, tmp_path, nets["surrogate"])
    events: list = []
    evaluate(nets["b"], "tiny", d12_small, tmp_path, nets["surrogate"], events=events)
    lines = [e.message for e in events if e.kind == "estimate"]
    assert any(ATTACK in line and "from 1 stored row (d12)" in line for line in lines), lines
    assert "without an estimate" not in lines[0]


def test_a_fully_stored_task_skips_the_clean_pass(nets, d12_small, tmp_path, monkeypatch):
    first = evaluate(nets["a"], "tiny-a", d12_small, tmp_path, None, attacks="pgd-5", checks=True)
    scored: list = []
    original = runner_module.probabilities

    def counting(*args, **kwargs):
        scored.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(runner_module, "probabilities", counting)
    again = evaluate(nets["a"], "tiny-a", d12_small, tmp_path, None, attacks="pgd-5", checks=True)
    assert not scored
    assert all(c.cached for c in again.cells)
    assert [(c.key, c.accuracy) for c in again.cells] == [(c.key, c.accuracy) for c in first.cells]
    assert [(r.name, r.status) for r in again.checks] == [(r.name, r.status) for r in first.checks]
    evaluate(nets["a"], "tiny-a", d12_small, tmp_path, None, attacks="pgd-5,bim-5", checks=True)
    assert scored  # one cell missing: the clean pass runs again
