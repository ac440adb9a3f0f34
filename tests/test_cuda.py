"""The CUDA path: device setup, channels-last, bf16 training, fp32 attacks, out-of-memory back-off.

What a CPU can check runs here on the CPU (channels-last and bf16 autocast exist there too; an
out-of-memory error is injected). Tests marked ``gpu`` need a CUDA GPU and are skipped, with the
reason, where there is none; ``benchmarks/gpu_check.sh`` runs them on a GPU machine.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustbench_med.cli import main
from robustbench_med.data import load_dataset
from robustbench_med.device import place_model, resolve_device, wants_channels_last
from robustbench_med.errors import BadInputError
from robustbench_med.evaluation.scoring import probabilities
from robustbench_med.models import build_model
from robustbench_med.models.classifier import task_logits
from robustbench_med.models.zoo import Zoo
from robustbench_med.training import TrainConfig, evaluate_split, train_model
from robustbench_med.training import loop as training_loop
from robustbench_med.training.step import BatchStepper
from robustbench_med.workflow import train_and_save
from tests.conftest import IMAGE_SIZE, N_TEST, small_request

CPU = torch.device("cpu")
CONV_MODELS = ["resnet18", "mobilenetv2", "mail_rn18", "mail_mnv2", "robust_mail"]


def majority_share(split) -> float:
    return float(torch.bincount(split.y).max()) / len(split)


def test_cpu_placement_keeps_the_layout_and_cudnn_untouched(d12_small):
    before = torch.backends.cudnn.benchmark
    assert resolve_device("cpu") == CPU and torch.backends.cudnn.benchmark == before
    model = build_model("resnet18", d12_small.info, seed=0)
    assert not wants_channels_last(model, CPU)
    place_model(model, CPU)
    assert all(p.is_contiguous() for p in model.parameters())
    with pytest.raises(BadInputError, match="unknown device 'tpu'"):
        resolve_device("tpu")


class ConvOutputLayouts:
    """Records, for every convolution output whose two layouts differ, whether it is channels-last."""

    def __init__(self, model: nn.Module) -> None:
        self.channels_last: list[bool] = []
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules()
                        if isinstance(m, nn.Conv2d)]

    def _hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if output.shape[1] > 1 and output.shape[2] * output.shape[3] > 1:
            self.channels_last.append(not output.is_contiguous()
                                      and output.is_contiguous(memory_format=torch.channels_last))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@pytest.mark.parametrize("name", CONV_MODELS)
def test_channels_last_models_compute_the_same(name, d12_small):
    """Channels-last (CUDA's layout for conv models) gives the same logits and input gradients:
    no model reshapes activations in a way that assumes contiguous memory. Checked on the CPU,
    where channels-last convolutions exist too."""
    x = d12_small.test.x[:4]
    plain = build_model(name, d12_small.info, seed=0).eval()
    fast = place_model(build_model(name, d12_small.info, seed=0).eval(), CPU, channels_last=True)
    grads, layouts = [], []
    for model in (plain, fast):
        recorder = ConvOutputLayouts(model)
        torch.manual_seed(1)
        x_req = x.clone().requires_grad_(True)
        logits = task_logits(model(x_req))[0]
        grads.append((logits.detach(), torch.autograd.grad(logits[:, 0].sum(), x_req)[0]))
        layouts.append(recorder.channels_last)
        recorder.remove()
    assert sum(layouts[1]) > sum(layouts[0])  # the placement did change layouts (MAIL has its own)
    (logits_a, grad_a), (logits_b, grad_b) = grads
    assert torch.allclose(logits_a, logits_b, rtol=1e-4, atol=1e-5)
    assert torch.allclose(grad_a, grad_b, rtol=1e-3, atol=1e-6 * float(grad_a.abs().max()))


def test_amp_setting_is_checked_and_only_recorded_when_on():
    with pytest.raises(BadInputError, match="unknown mixed precision 'fp16' \\(allowed: off, bf16\\)"):
        TrainConfig(amp="fp16")
    assert "amp" not in TrainConfig().to_dict()  # fp32 checkpoints keep their identity
    assert TrainConfig(amp="bf16").to_dict()["amp"] == "bf16"


class ConvOutputDtypes:
    """Records the dtype of every convolution's output while installed (``by_batch``: with the
    number of images of the pass)."""

    def __init__(self, model: nn.Module) -> None:
        self.dtypes: set[torch.dtype] = set()
        self.by_batch: set[tuple[int, torch.dtype]] = set()
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules()
                        if isinstance(m, nn.Conv2d)]

    def _hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.dtypes.add(output.dtype)
        self.by_batch.add((len(output), output.dtype))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@pytest.fixture(scope="module")
def bf16_resnet(tmp_path_factory, d12_small):
    """ResNet18 trained with bf16 autocast on the CPU (it exists there too) through
    ``train_and_save``, as ``medrobust train --amp bf16`` trains it, on the real PneumoniaMNIST
    slice of the other tests (800 images, 28 px, 3 epochs, recipe paper)."""
    return train_and_save(small_request(amp="bf16"), d12_small, Zoo(tmp_path_factory.mktemp("bf16-zoo")), CPU)


def test_bf16_training_learns_and_is_recorded(bf16_resnet, d12_small):
    majority = majority_share(d12_small.test)
    accuracy, _ = evaluate_split(bf16_resnet.model, d12_small.test, CPU)
    assert accuracy > majority + 0.05, (accuracy, majority)
    sidecar = json.loads(bf16_resnet.path.with_suffix(".json").read_text())
    assert sidecar["config"]["train"]["amp"] == "bf16"
    assert all(p.dtype == torch.float32 for p in bf16_resnet.model.parameters())  # fp32 master weights


def test_cli_amp_reaches_the_checkpoint(capsys, tmp_path, data_root):
    """``medrobust train --amp bf16`` trains with it and records it; a bad value is one line, exit 2."""
    args = ["train", "--model", "resnet18", "--dataset", "d12", "--results-dir", str(tmp_path),
            "--image-size", "28", "--epochs", "1", "--n-train", "64", "--n-val", "32", "--no-augment",
            "--data-root", str(data_root), "--quiet"]
    assert main([*args, "--amp", "fp16"]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown mixed precision 'fp16' (allowed: off, bf16)"
    assert main([*args, "--amp", "bf16"]) == 0, capsys.readouterr().err
    (sidecar,) = (tmp_path / "zoo").rglob("*.json")
    assert json.loads(sidecar.read_text())["config"]["train"]["amp"] == "bf16"


def test_training_steps_run_in_bf16_and_its_attacks_in_fp32(d12_small):
    """Inside an amp step the update's convolutions compute in bf16, while the PGD that crafts
    the training examples (the shared attack loop) computes in fp32."""
    from robustbench_med.attacks.engine import pgd_examples
    from robustbench_med.models.losses import multitask_loss

    model = build_model("resnet18", d12_small.info, seed=0).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = d12_small.train.x[:8], d12_small.train.y[:8]
    seen: dict[str, set[torch.dtype]] = {}

    def loss_fn(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        recorder = ConvOutputDtypes(model)
        x_adv = pgd_examples(model, xb, yb, eps=4 / 255, step=1 / 255, steps=2)
        seen["attack"], recorder.dtypes = recorder.dtypes, set()
        loss = multitask_loss(model(x_adv), yb)
        seen["update"] = recorder.dtypes
        recorder.remove()
        return loss

    BatchStepper(model, optimizer, CPU, amp="bf16").step(loss_fn, x, y)
    assert seen == {"attack": {torch.float32}, "update": {torch.bfloat16}}


def test_evaluation_attacks_on_an_amp_model_run_in_fp32(bf16_resnet, d12_small):
    """The bf16-trained checkpoint attacked through ``evaluate``, called from inside a bf16
    autocast block: every convolution of the runner (clean scoring, PGD steps) still computes in
    fp32, and the inputs' gradients are fp32. (The same model called directly in that block
    computes in bf16, and so does ``evaluate``'s two-image shape probe before the runner.)"""
    from robustbench_med.api import evaluate

    model = bf16_resnet.model
    x = d12_small.test.x[:16]
    recorder = ConvOutputDtypes(model)
    grad_dtypes: list[torch.dtype] = []

    def record_input_gradient(module: nn.Module, args: tuple) -> None:
        if args[0].requires_grad:
            args[0].register_hook(lambda grad: grad_dtypes.append(grad.dtype))

    handle = model.register_forward_pre_hook(record_input_gradient)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)
            assert recorder.dtypes == {torch.bfloat16}  # the control: autocast is on here
            recorder.by_batch = set()
            report = evaluate(bf16_resnet, (x, d12_small.test.y[:16]), "pgd-10", presets="standard",
                              device="cpu", checks=False)
    finally:
        recorder.remove()
        handle.remove()
    assert {dtype for n, dtype in recorder.by_batch if n != 2} == {torch.float32}
    assert grad_dtypes and set(grad_dtypes) == {torch.float32}
    assert {c.key.attack for c in report.cells} >= {"clean", "pgd-10"}


def test_attacks_stay_fp32_even_when_the_caller_left_autocast_on(d12_small):
    """The guard works through the attack engine alone: examples crafted inside a bf16 block
    equal those crafted outside it, bit for bit."""
    from robustbench_med.attacks.engine import pgd_examples

    model = build_model("resnet18", d12_small.info, seed=0).eval()
    x, y = d12_small.test.x[:8], d12_small.test.y[:8]
    torch.manual_seed(0)
    plain = pgd_examples(model, x, y, eps=4 / 255, step=1 / 255, steps=3)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        guarded = pgd_examples(model, x, y, eps=4 / 255, step=1 / 255, steps=3)
    assert guarded.dtype == torch.float32 and torch.equal(plain, guarded)


# --- out-of-memory back-off ---------------------------------------------------------------------

class OutOfMemoryAbove:
    """Makes a module raise CUDA's out-of-memory error on batches larger than ``limit`` that
    build a graph (validation runs without one, in far less memory). The fake stands after every
    BatchNorm of the model (its last layer), so a failed attempt has already moved the BatchNorm
    statistics, as a real one deep in the network would."""

    def __init__(self, module: nn.Module, limit: int) -> None:
        self.limit, self.calls = limit, []
        module.register_forward_pre_hook(self._check)

    def _check(self, module: nn.Module, args: tuple) -> None:
        if not torch.is_grad_enabled():
            return
        self.calls.append(len(args[0]))
        if len(args[0]) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (fake)")


def last_linear(model: nn.Module) -> nn.Module:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


@pytest.fixture(scope="module")
def d12_tiny(data_root):
    return load_dataset("d12", data_root=data_root, image_size=IMAGE_SIZE, n_train=96, n_val=64, n_test=32)


def test_training_out_of_memory_backs_off_to_accumulated_micro_batches(d12_tiny, monkeypatch):
    """A run whose batches of 32 run out of memory above 8 images ends with the same weights, bit
    for bit, as a run told to use micro-batches of 8 from the start: the failed attempts leave
    no trace (gradients, BatchNorm statistics), the BatchNorm settling after each epoch uses the
    smaller size too, and the history records the back-off."""
    config = TrainConfig(recipe="paper", epochs=2, batch_size=32)
    oom_model = build_model("resnet18", d12_tiny.info, seed=0)
    fake = OutOfMemoryAbove(last_linear(oom_model), limit=8)
    oom_result = train_model(oom_model, d12_tiny, config, CPU)
    assert 32 in fake.calls and 16 in fake.calls  # it did fail twice before settling on 8
    assert [r.get("micro_batch") for r in oom_result.history] == [8, 8]

    class StartsAtEight(BatchStepper):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.micro_batch = 8

    monkeypatch.setattr(training_loop, "BatchStepper", StartsAtEight)
    small_model = build_model("resnet18", d12_tiny.info, seed=0)
    small_result = train_model(small_model, d12_tiny, config, CPU)
    a, b = oom_model.state_dict(), small_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in oom_result.history] == [r["train_loss"] for r in small_result.history]
    untrained = build_model("resnet18", d12_tiny.info, seed=0).state_dict()
    assert not all(torch.equal(a[k], untrained[k]) for k in a)  # the runs did train


def test_micro_batches_step_like_the_full_batch_without_batchnorm(d12_tiny):
    """For a mean loss and a model without BatchNorm the accumulated step is the full batch's
    (up to float rounding): the back-off changes the memory used, not the optimisation."""
    def net() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                             nn.Linear(32, 2))

    x, y = d12_tiny.train.x[:32], d12_tiny.train.y[:32]
    models = []
    for micro_batch in (None, 8, 5):  # 5: unequal parts (5, 5, 5, 5, 4, 4, 4), weighted by their share
        model = net()
        stepper = BatchStepper(model, torch.optim.SGD(model.parameters(), lr=0.5), CPU,
                               micro_batch=micro_batch)
        loss = stepper.step(lambda xb, yb, m=model: F.cross_entropy(m(xb), yb), x, y)
        models.append((model, float(loss)))
    (full, full_loss), *parts = models
    for model, loss in parts:
        assert loss == pytest.approx(full_loss, rel=1e-5)
        for p, q in zip(full.parameters(), model.parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-6)
    assert not torch.equal(full[0].weight, net()[0].weight)  # the step moved the weights


def test_errors_other_than_out_of_memory_are_not_retried(d12_tiny):
    model = build_model("resnet18", d12_tiny.info, seed=0)
    stepper = BatchStepper(model, torch.optim.SGD(model.parameters(), lr=0.1), CPU)
    x, y = d12_tiny.train.x[:4], d12_tiny.train.y[:4]

    def broken(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        stepper.step(broken, x, y)
    assert stepper.micro_batch is None and stepper.backoffs == []
    OutOfMemoryAbove(last_linear(model), limit=1)  # even the smallest micro-batch is too big
    with pytest.raises(torch.cuda.OutOfMemoryError):
        stepper.step(lambda xb, yb: F.cross_entropy(task_logits(model(xb))[0], yb), x, y)
    assert stepper.backoffs == [2]  # 4 -> 2 images, then it gives up


# --- on a GPU -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def d12_gpu_slice(data_root):
    return load_dataset("d12", data_root=data_root, image_size=IMAGE_SIZE, n_train=256, n_test=N_TEST)


@pytest.mark.gpu
def test_one_cuda_epoch_matches_the_cpu(d12_gpu_slice):
    """One epoch of ResNet18 on CUDA (cuDNN autotuning, channels-last, TF32 convolutions) follows
    the CPU's run within float tolerance."""
    cuda = resolve_device("cuda")
    assert torch.backends.cudnn.benchmark
    config = TrainConfig(recipe="paper", epochs=1, batch_size=32)
    results, models = {}, {}
    for device in (CPU, cuda):
        models[device.type] = build_model("resnet18", d12_gpu_slice.info, seed=0)
        results[device.type] = train_model(models[device.type], d12_gpu_slice, config, device)
    conv = next(m for m in models["cuda"].modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_cuda and conv.weight.is_contiguous(memory_format=torch.channels_last)
    cpu, gpu = results["cpu"].history[0], results["cuda"].history[0]
    assert gpu["train_loss"] == pytest.approx(cpu["train_loss"], rel=0.02)
    assert gpu["val_loss"] == pytest.approx(cpu["val_loss"], rel=0.05)
    assert abs(gpu["val_accuracy"] - cpu["val_accuracy"]) <= 0.05


@pytest.mark.gpu
def test_pgd10_on_cuda_matches_the_cpu(trained_resnet, d12_small):
    """PGD-10 through the evaluation runner on CUDA: adversarial examples on the device, inside
    the eps-ball, and the robust accuracy within a few points of the CPU's on the same points."""
    from robustbench_med.api import evaluate

    accuracies = {}
    for device in ("cpu", "cuda"):
        report = evaluate(trained_resnet, d12_small, "pgd-10", presets="standard", device=device,
                          n_test=N_TEST, image_size=IMAGE_SIZE, checks=False)
        accuracies[device] = {c.key.attack: c.accuracy for c in report.cells}
    assert accuracies["cuda"]["clean"] == pytest.approx(accuracies["cpu"]["clean"], abs=2 / N_TEST)
    assert accuracies["cuda"]["pgd-10"] == pytest.approx(accuracies["cpu"]["pgd-10"], abs=0.05)
    model = place_model(trained_resnet.model, resolve_device("cuda"))
    from robustbench_med.attacks.engine import pgd_examples

    x, y = d12_small.test.x[:64].cuda(), d12_small.test.y[:64].cuda()
    x_adv = pgd_examples(model, x, y, eps=4 / 255, step=1 / 255, steps=10)
    assert x_adv.is_cuda and float((x_adv - x).abs().max()) <= 4 / 255 + 1e-6
    trained_resnet.model.to(CPU)


@pytest.mark.gpu
def test_bf16_training_on_cuda_learns(tmp_path, d12_small):
    request = small_request(amp="bf16")
    checkpoint = train_and_save(request, d12_small, Zoo(tmp_path), resolve_device("cuda"))
    majority = majority_share(d12_small.test)
    assert checkpoint.metrics["test_accuracy"] > majority + 0.05
    assert json.loads(checkpoint.path.with_suffix(".json").read_text())["config"]["train"]["amp"] == "bf16"
    probs = probabilities(checkpoint.model, d12_small.test.x[:8], torch.device("cuda"))
    assert probs.dtype == torch.float32
