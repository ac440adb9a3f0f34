"""Settle BatchNorm running statistics before a model is evaluated.

MAIL's BatchNorm follows Keras (momentum 0.01 in PyTorch terms): after the ~30
steps of one epoch on 1,000 images its running statistics still weigh their
initial values by 0.99^30 = 0.74, so validation and test passes in eval mode
see a different network from the one being trained (measured: validation loss
13.7 after epoch 1 for MAIL-RN18, 1.2e6 for the notebook's Robust-MAIL, and
model selection then reads noise).

:func:`settle_batchnorm` re-estimates the statistics as an exact average over
a fixed set of training batches (what ``torch.optim.swa_utils.update_bn``
does), replaying the training strategy's own forward passes, so BatchNorm sees
the inputs it was trained on: adversarial examples under adversarial training,
both routes of DBN's dual BatchNorm. Written here rather than calling
``update_bn`` because that one feeds plain inputs and resets every BatchNorm,
including branches the deployed model never routes through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

SETTLE_IMAGES = 512  # enough batches for per-channel statistics; a bounded cost per epoch


@contextmanager
def _cumulative_statistics(model: nn.Module) -> Iterator[None]:
    """Inside: every BatchNorm averages what it sees from scratch; ones never called keep theirs."""
    norms = [m for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
             for m in norms]
    called: set[int] = set()
    hooks = [m.register_forward_pre_hook(lambda mod, _x: called.add(id(mod))) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()
        for m, (momentum, mean, var, count) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if id(m) not in called:
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)


def settle_batchnorm(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     forward: Callable[[nn.Module, torch.Tensor, torch.Tensor], object],
                     device: torch.device, batch_size: int, images: int = SETTLE_IMAGES) -> int:
    """Recompute running statistics over the first ``images`` of (x, y) through ``forward``.

    ``forward(model, xb, yb)`` runs the passes BatchNorm should learn from (the
    strategy's training loss; its value is discarded). Returns the images used;
    0 when the model has no BatchNorm, which is then left untouched.
    """
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return 0
    was_training = model.training
    count = min(images, len(x))
    model.train()
    with _cumulative_statistics(model):
        for start in range(0, count, batch_size):
            stop = min(start + batch_size, count)
            if stop - start < 2:
                break  # BatchNorm cannot take a batch of one in training mode
            forward(model, x[start:stop].to(device), y[start:stop].to(device))
    model.train(was_training)
    return count
