"""Size and compute of a registered model at a dataset's input size.

``profile("mail_rn18", info)`` builds the model (seed 0, eval mode) and runs
one forward pass on a single input of ``info.input_shape`` under
``torch.utils.flop_counter.FlopCounterMode``. What is counted is what that
counter counts: matrix products and convolutions (conv, linear, matmul, bmm,
addmm, ...), one multiply-add = 2 FLOPs. Element-wise operations,
activations, poolings, BatchNorm, the channel shuffle and random draws are
not counted (as in fvcore/ptflops-style counts, which count multiply-adds of
conv/linear only; papers that say "FLOPs" often mean those multiply-adds, so
``gmacs`` is reported beside ``gflops``). The DCT in MFIFA is a matrix product
and is counted.

Parameters: ``params`` are learnable parameters; ``bn_stats`` the BatchNorm
running statistics (Keras' ``model.summary()`` counts them as non-trainable
parameters); ``buffers_other`` the remaining buffers (normalisation, DCT
matrices, random projection filters).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from robustbench_med.data.spec import DataInfo
from robustbench_med.models.builder import build_model
from robustbench_med.models.mail.fastconv import plain_layers


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs (2 per multiply-add) of one forward pass on ``x``, MAIL's convolutions counted as the
    plain convolutions they are (``plain_layers``), not as the products that compute them."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), plain_layers():
        model(x)
    return int(counter.get_total_flops())


def profile(model_name: str, info: DataInfo, **options: Any) -> dict[str, Any]:
    """Parameter count and GFLOPs of ``model_name`` for one input shaped like ``info``'s."""
    model = build_model(model_name, info, model_options=options, seed=0).eval()
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    bn_stats = sum(b.numel() for name, b in model.named_buffers()
                   if name.endswith(("running_mean", "running_var")))
    buffers = sum(b.numel() for name, b in model.named_buffers()
                  if not name.endswith(("running_mean", "running_var", "num_batches_tracked")))
    flops = count_flops(model, torch.rand(1, *info.input_shape))
    return {
        "model": model_name,
        "options": dict(options),
        "input_shape": list(info.input_shape),
        "tasks": {task.name: task.n_classes for task in info.tasks},
        "params": params,
        "trainable_params": trainable,
        "bn_stats": bn_stats,
        "params_with_bn_stats": params + bn_stats,
        "buffers_other": buffers,
        "flops": flops,
        "gflops": flops / 1e9,
        "gmacs": flops / 2e9,
        "flop_convention": "conv/linear/matmul only; 1 multiply-add = 2 FLOPs; batch of one",
    }
