"""Build MAIL and Robust-MAIL models from a body name and :class:`MailOptions`.

A factory made by :func:`make_factory` has the registry's signature
``build(info, **options) -> Classifier`` and advertises its options (with
the variant's defaults) through ``__signature__``, so an unknown option is
refused with the list of known ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields, replace
from functools import partial
from typing import Any

from torch import nn

from robustbench_med.data.spec import DataInfo
from robustbench_med.errors import BadInputError
from robustbench_med.models.classifier import Classifier
from robustbench_med.models.mail.bodies import BODIES, make_branch
from robustbench_med.models.mail.defaults import keras_init, set_bn_momentum
from robustbench_med.models.mail.emcam import EMCAM
from robustbench_med.models.mail.erla import ERLA, plain_block
from robustbench_med.models.mail.heads import TaskHeads
from robustbench_med.models.mail.network import MailNet
from robustbench_med.models.mail.noise import AlwaysOnDropout
from robustbench_med.models.mail.options import MailOptions


def build_net(body: str, info: DataInfo, options: MailOptions) -> MailNet:
    """The bare network (no normalisation) for ``info``: m = number of tasks branches."""
    if body not in BODIES:
        raise BadInputError(f"unknown MAIL body '{body}' (allowed: {', '.join(BODIES)})")
    m = info.modalities
    emila = options.emila_kwargs()

    def block(in_channels: int, out_channels: int, stride: int) -> nn.Module:
        if options.erla:
            return ERLA(in_channels, out_channels, stride=stride, **emila)
        return plain_block(in_channels, out_channels, stride=stride)

    dropout_type = AlwaysOnDropout if options.always_on_dropout else nn.Dropout
    dropout = partial(dropout_type, options.dropout) if options.dropout > 0 else nn.Identity
    branches = [make_branch(body, info.channels, block, dropout) for _ in range(m)]
    widths = branches[0].widths
    emcams = ([EMCAM(width, m, **options.emcam_kwargs()) for width in widths]
              if options.emcam else None)
    heads = TaskHeads(m * widths[-1], tuple(task.n_classes for task in info.tasks))
    net = MailNet(branches, emcams, heads)
    keras_init(net)
    set_bn_momentum(net, options.bn_momentum)
    return net


def build(body: str, info: DataInfo, options: MailOptions) -> Classifier:
    """A MAIL model behind the project's normalising wrapper."""
    return Classifier(build_net(body, info, options), info)


def make_factory(name: str, body: str, preset: dict[str, Any], doc: str) -> Callable[..., nn.Module]:
    """A registry factory for ``body`` whose option defaults are ``preset``."""
    defaults = replace(MailOptions(), **preset)

    def factory(info: DataInfo, **options: Any) -> nn.Module:
        unknown = sorted(set(options) - {f.name for f in fields(MailOptions)})
        if unknown:
            raise BadInputError(f"model {name} has no option {', '.join(unknown)}")
        return build(body, info, replace(defaults, **options))

    parameters = [inspect.Parameter("info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=DataInfo)]
    parameters += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                     default=getattr(defaults, f.name), annotation=f.type)
                   for f in fields(MailOptions)]
    factory.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = doc
    return factory
