"""Attack batches back off on out-of-memory (:mod:`robustbench_med.evaluation.batching`): the batch
halves until it fits, the result is the one a run at the smaller batch gives from the start (random
starts included), the run says it backed off, and when even one point does not fit the out-of-memory
error itself is raised.

CPU only: the out-of-memory error is raised on purpose by a function (or a model) once a batch
holds more points than a limit, as CUDA's allocator raises it when a batch does not fit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbench_med.evaluation import runner as runner_module
from robustbench_med.evaluation.batching import is_oom, map_batches
from robustbench_med.evaluation.runner import GridRunner, GridSettings
from robustbench_med.evaluation.subject import from_module

CUDA_OOM_TEXT = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 139.00 GiB total capacity)"


def limited(limit: int, error=torch.cuda.OutOfMemoryError):
    """``fn(part)``: a deterministic function of the rows, out of memory above ``limit`` rows; the
    sizes it was called with (failed calls included) are in ``fn.sizes``."""
    x = torch.arange(40, dtype=torch.float32).reshape(20, 2)

    def fn(part: slice) -> torch.Tensor:
        rows = x[part]
        fn.sizes.append(len(rows))
        if len(rows) > limit:
            raise error(CUDA_OOM_TEXT)
        return rows * 2 + 1

    fn.sizes = []
    fn.expected = x * 2 + 1
    return fn


def test_out_of_memory_halves_the_batch_and_gives_the_small_batch_result():
    fn = limited(4)
    out = map_batches(fn, 20, 16)
    # 16 fails, 8 fails, then every batch at 4 (the batch stays halved for the rest of the run)
    assert fn.sizes == [16, 8, 4, 4, 4, 4, 4]
    small = limited(4)
    assert torch.equal(out, map_batches(small, 20, 4)) and small.sizes == [4] * 5
    assert torch.equal(out, fn.expected)


def test_a_batch_larger_than_the_points_backs_off_to_a_size_that_fits():
    """The batch halves from the slice that failed, not from its nominal size: 7 points at a nominal
    128 do not fit, so the next try is 3, not 64 (which would retry the same 7 points)."""
    fn = limited(3)
    out = map_batches(fn, 7, 128)
    assert fn.sizes == [7, 3, 3, 1]
    assert torch.equal(out, fn.expected[:7])


def test_a_runtime_error_saying_out_of_memory_backs_off_too():
    """Older torch (and cuDNN, cuBLAS) raise a plain RuntimeError with CUDA's message."""
    assert is_oom(RuntimeError(CUDA_OOM_TEXT)) and is_oom(torch.cuda.OutOfMemoryError("x"))
    fn = limited(5, error=RuntimeError)
    assert torch.equal(map_batches(fn, 20, 20), fn.expected)
    assert fn.sizes[:3] == [20, 10, 5]


def test_another_error_is_raised_at_once_without_a_retry():
    calls = []

    def fn(part: slice) -> torch.Tensor:
        calls.append(part)
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 2x2)")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        map_batches(fn, 20, 16)
    assert len(calls) == 1


def test_it_gives_up_with_the_out_of_memory_error_when_one_point_does_not_fit():
    fn = limited(0)
    with pytest.raises(torch.cuda.OutOfMemoryError, match="CUDA out of memory"):
        map_batches(fn, 20, 16)
    assert fn.sizes == [16, 8, 4, 2, 1]  # down to one point, then no further


def test_min_batch_is_the_floor_of_the_back_off():
    fn = limited(3)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        map_batches(fn, 20, 16, min_batch=4)
    assert fn.sizes == [16, 8, 4]


# -- through the grid runner, on real PneumoniaMNIST points (d12) ---------------------------------

LIMIT = 16  # points per gradient pass that "fit"
CHECK_THREAT_MODEL = runner_module.check_threat_model  # sees every attack's examples


class OutOfMemoryAbove(nn.Module):
    """``net``, out of memory when a pass that builds a graph (an attack's, not a scoring pass under
    no_grad) holds more than ``limit`` points; the sizes that failed are in ``failed``."""

    def __init__(self, net: nn.Module, limit: int) -> None:
        super().__init__()
        self.net, self.limit = net, limit
        self.failed: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and len(x) > self.limit:
            self.failed.append(len(x))
            raise torch.cuda.OutOfMemoryError(CUDA_OOM_TEXT)
        return self.net(x)


@pytest.fixture(scope="module")
def tiny_net(d12_small) -> nn.Module:
    """A two-layer CNN trained for one epoch on the 800 training images (seconds on a CPU)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(8 * 14 * 14, 2))
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    train = d12_small.train
    for idx in torch.randperm(len(train.x)).split(32):
        optimiser.zero_grad()
        nn.functional.cross_entropy(net(train.x[idx]), train.y[idx]).backward()
        optimiser.step()
    return net.eval()


@pytest.fixture
def untimed(monkeypatch):
    """The runner's cost estimate times one forward+backward over a whole attack batch (and gives the
    estimate up when that does not fit); these tests count the attacks' own tries, so it is a stub."""
    monkeypatch.setattr(runner_module, "timed_pass", lambda *args, **kwargs: 1e-4, raising=False)


def evaluate(model: nn.Module, data, batch_size: int, monkeypatch, attacks: str = "bim-10"):
    """The runner's report, every attack's adversarial examples (in cell order) and its events."""
    examples: list[torch.Tensor] = []

    def keep(x_adv, x, eps, attack):
        examples.append(x_adv.clone())
        return CHECK_THREAT_MODEL(x_adv, x, eps, attack)

    monkeypatch.setattr(runner_module, "check_threat_model", keep)
    events: list = []
    settings = GridSettings(attacks=attacks, presets=("standard",), batch_size=batch_size, checks=False)
    report = GridRunner(from_module(model, dataset="d12", name="tiny"), data.test, data.info, settings,
                        device=torch.device("cpu"), progress=events.append).run()
    return report, examples, events


@pytest.mark.parametrize("attacks", ["bim-10", "pgd-10"])
def test_runner_backs_off_to_the_result_of_the_small_batch(tiny_net, d12_small, monkeypatch, untimed,
                                                           attacks):
    """Attack batches of 64 do not fit: the attack backs off to 16 points and the runner stores
    exactly what a run at 16 from the start stores, adversarial examples included, bit for bit (PGD's
    random start too: each retry starts from the random state the failed try started from)."""
    model = OutOfMemoryAbove(tiny_net, LIMIT)
    backed, backed_examples, events = evaluate(model, d12_small, 64, monkeypatch, attacks)
    assert model.failed == [64, 32]  # 64, then 32, before 16 fit for the rest of the cell
    model.failed.clear()
    small, small_examples, _ = evaluate(model, d12_small, LIMIT, monkeypatch, attacks)
    assert not model.failed  # 16 from the start never runs out of memory
    assert [c.key for c in backed.cells] == [c.key for c in small.cells]
    assert len(backed.cells) == 2 and backed.cells[1].n_attacked > 2 * LIMIT  # several batches
    for a, b in zip(backed.cells, small.cells, strict=True):
        assert (a.accuracy, a.n_attacked) == (b.accuracy, b.n_attacked)
        assert (a.flags == b.flags).all()
    assert len(backed_examples) == len(small_examples) == 1
    assert torch.equal(backed_examples[0], small_examples[0])
    label = f"{backed.cells[1].key.attack} (standard, eps 4/255, deterministic)"
    assert [e.message.strip() for e in events if e.kind == "backoff"] == [
        f"{label}: out of memory, batch halved to {size}" for size in (32, 16)]
    # the per-batch progress lines show the batches of 16 it backed off to
    n = backed.cells[1].n_attacked
    assert [e.message.split(": ")[1].split(" points")[0] for e in events if e.kind == "batch"] == [
        f"{min(stop, n)}/{n}" for stop in range(LIMIT, n + LIMIT, LIMIT)]


def test_runner_gives_up_with_the_out_of_memory_error(tiny_net, d12_small, monkeypatch, untimed):
    """When even one point does not fit, the run stops with the out-of-memory error itself."""
    model = OutOfMemoryAbove(tiny_net, 0)
    with pytest.raises(torch.cuda.OutOfMemoryError, match="CUDA out of memory"):
        evaluate(model, d12_small, 64, monkeypatch)
    assert model.failed == [64, 32, 16, 8, 4, 2, 1]


def test_runner_backs_off_when_the_first_attack_batch_does_not_fit(tiny_net, d12_small, monkeypatch):
    """The cost estimate's timed forward+backward over one batch runs out of memory first: the
    estimate is given up ("no estimate") and the attack itself backs off and runs."""
    model = OutOfMemoryAbove(tiny_net, LIMIT)
    report, _examples, events = evaluate(model, d12_small, 64, monkeypatch)
    assert report.cells[1].n_attacked > 0 and 0 <= report.cells[1].accuracy < report.cells[0].accuracy
    assert any(e.kind == "estimate" and e.message.endswith("no estimate") for e in events)
    assert any(e.kind == "backoff" for e in events)


class NoInputGradient(nn.Module):
    """A model only black-box attacks can query: its forward runs without autograd."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(x)


def test_the_estimate_never_ends_a_run(tiny_net, d12_small, monkeypatch):
    """A model with no input gradient cannot be timed: Square still runs, its estimate is given up."""
    from robustbench_med.evaluation.estimate import timed_pass

    model = NoInputGradient(tiny_net)
    x, y = d12_small.test.x[:8], d12_small.test.y[:8]
    assert timed_pass(model, x, y, torch.device("cpu"), 64) is None
    assert timed_pass(tiny_net, x[:0], y[:0], torch.device("cpu"), 64) is None
    assert timed_pass(tiny_net, x, y, torch.device("cpu"), 64) > 0
    events: list = []
    settings = GridSettings(attacks="square", presets=("standard",), batch_size=64, checks=False,
                            square_queries=20)
    report = GridRunner(from_module(model, dataset="d12", name="no-grad"), d12_small.test, d12_small.info,
                        settings, device=torch.device("cpu"), progress=events.append).run()
    assert [c.key.attack for c in report.cells] == ["clean", "square-20"]
    assert any(e.kind == "estimate" and e.message.endswith("square-20 (standard, eps 4/255, deterministic): "
                                                            "no estimate") for e in events)
