"""torchvision backbones (random init, never downloaded), adapted to a dataset.

The first convolution takes the dataset's channels and the classifier its
classes. ``stem="cifar"`` swaps the 7x7/2 stem and max-pool for a 3x3/1 stem,
the usual choice for 28-32 px inputs (the CIFAR ResNet-18 of
github.com/kuangliu/pytorch-cifar); the default keeps
torchvision's ImageNet stem, as the paper feeds 128 px images.
"""

from __future__ import annotations

from collections.abc import Callable

import torchvision
from torch import nn

from robustbench_med.data.spec import DataInfo
from robustbench_med.errors import BadInputError
from robustbench_med.models.classifier import Classifier
from robustbench_med.registry import MODELS

STEMS = ("imagenet", "cifar")


def _check_single(name: str, info: DataInfo) -> None:
    if info.modalities != 1:
        raise BadInputError(
            f"model {name} takes one dataset, got the pair {info.dataset}; use a MAIL model "
            f"(mail_rn18) for paired datasets"
        )


def resnet(depth: int) -> Callable[..., nn.Module]:
    builders = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50,
                101: torchvision.models.resnet101}

    def build(info: DataInfo, stem: str = "imagenet") -> nn.Module:
        _check_single(f"resnet{depth}", info)
        if stem not in STEMS:
            raise BadInputError(f"unknown stem '{stem}' (allowed: {', '.join(STEMS)})")
        net = builders[depth](weights=None, num_classes=info.n_classes)
        if stem == "cifar":
            net.conv1 = nn.Conv2d(info.channels, 64, 3, 1, 1, bias=False)
            net.maxpool = nn.Identity()
        elif info.channels != 3:
            net.conv1 = nn.Conv2d(info.channels, 64, 7, 2, 3, bias=False)
        return Classifier(net, info)

    build.__name__ = f"resnet{depth}"
    build.__doc__ = f"torchvision ResNet{depth}, random init, normalisation inside."
    return build


def mobilenetv2(info: DataInfo) -> nn.Module:
    """torchvision MobileNetV2, random init, normalisation inside."""
    _check_single("mobilenetv2", info)
    net = torchvision.models.mobilenet_v2(weights=None, num_classes=info.n_classes)
    if info.channels != 3:
        net.features[0][0] = nn.Conv2d(info.channels, 32, 3, 2, 1, bias=False)
    return Classifier(net, info)


for _depth in (18, 50, 101):
    MODELS.add(f"resnet{_depth}", resnet(_depth), origin="medrobust", family="backbone",
               reference="He et al., CVPR 2016 (torchvision)")
MODELS.add("mobilenetv2", mobilenetv2, aliases=("mnv2",), origin="medrobust", family="backbone",
           reference="Sandler et al., CVPR 2018 (torchvision)")
