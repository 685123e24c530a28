"""Wound segmentation network (torch): training, export and benchmarking only.

The runtime engine (`wound.py`) never imports this module; it runs the exported ONNX file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

# Indices of the EfficientNet-Lite0 blocks whose outputs feed the decoder (strides 2, 4, 8, 16,
# 32) with their channel counts. The 1280-channel head is dropped: it adds 0.4 M parameters and
# nothing a decoder needs.
SKIP_BLOCKS = (0, 2, 4, 10, 15)
SKIP_CHANNELS = (16, 24, 40, 112, 320)
DECODER_CHANNELS = (64, 48, 24, 16)
# Blocks up to this index (strides 2-8) stay at their ImageNet weights: on a shared 2-core CPU,
# back-propagating through the high-resolution layers would cost most of the training budget.
FROZEN_UNTIL = 4
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _conv_bn_relu(*, cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class _UpBlock(nn.Module):
    def __init__(self, *, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(cin=cin + cskip, cout=cout)
        self.conv2 = _conv_bn_relu(cin=cout, cout=cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class WoundUNet(nn.Module):
    """U-Net decoder on an EfficientNet-Lite0 encoder; takes RGB 0-255, returns logits."""

    def __init__(self, *, image_size: int, weights_path: str | Path | None = None) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if weights_path is None:
            self.encoder = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
        else:
            # weights_path is always given for pretrained weights: the library would otherwise
            # fetch them from the internet.
            self.encoder = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=str(weights_path), image_size=image_size
            )
        del self.encoder._conv_head, self.encoder._bn1, self.encoder._fc
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        skips = SKIP_CHANNELS[:-1][::-1]
        cin = SKIP_CHANNELS[-1]
        blocks = []
        for cskip, cout in zip(skips, DECODER_CHANNELS, strict=True):
            blocks.append(_UpBlock(cin=cin, cskip=cskip, cout=cout))
            cin = cout
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(DECODER_CHANNELS[-1], 1, 1)

    def _run_blocks(self, x: torch.Tensor, *, start: int, stop: int) -> list[torch.Tensor]:
        enc = self.encoder
        rate = enc._global_params.drop_connect_rate
        n = len(enc._blocks)
        taps = []
        for idx in range(start, stop + 1):
            x = enc._blocks[idx](x, drop_connect_rate=rate * idx / n if rate else None)
            if idx in SKIP_BLOCKS:
                taps.append(x)
        return taps

    def features_low(self, rgb255: torch.Tensor) -> list[torch.Tensor]:
        """Encoder taps at strides 2, 4, 8 (the part frozen during training)."""
        enc = self.encoder
        x = (rgb255 - self.mean) / self.std
        x = enc._swish(enc._bn0(enc._conv_stem(x)))
        return self._run_blocks(x, start=0, stop=FROZEN_UNTIL)

    def features_high(self, low: torch.Tensor) -> list[torch.Tensor]:
        """Encoder taps at strides 16 and 32 from the stride-8 tap."""
        return self._run_blocks(low, start=FROZEN_UNTIL + 1, stop=SKIP_BLOCKS[-1])

    def features(self, rgb255: torch.Tensor) -> list[torch.Tensor]:
        """Encoder outputs at strides 2..32 for an NCHW float batch in 0-255."""
        low = self.features_low(rgb255)
        return low + self.features_high(low[-1])

    def decode(self, taps: list[torch.Tensor]) -> torch.Tensor:
        """Logits at input resolution from the five encoder taps."""
        x = taps[-1]
        for block, skip in zip(self.decoder, taps[:-1][::-1], strict=True):
            x = block(x, skip)
        # The decoder stops at stride 2: a full-resolution stage costs more than it adds.
        return F.interpolate(self.head(x), scale_factor=2.0, mode="bilinear", align_corners=False)

    def forward(self, rgb255: torch.Tensor) -> torch.Tensor:
        return self.decode(self.features(rgb255))


class WoundExport(nn.Module):
    """Inference wrapper: NCHW 0-255 in; wound probability and a pooled embedding out."""

    def __init__(self, net: WoundUNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, rgb255: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        taps = self.net.features(rgb255)
        # The pooled deepest features serve the optional wound-type head without a second model.
        embedding = torch.cat([taps[-1].mean(dim=(2, 3)), taps[-2].mean(dim=(2, 3))], dim=1)
        return torch.sigmoid(self.net.decode(taps)), embedding
