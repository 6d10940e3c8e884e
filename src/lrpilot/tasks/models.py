"""The networks of the built-in tasks, each named after the paper or code it follows.

All use PyTorch's default initialisation except the CIFAR ResNets, which use He et al.'s, and the MNIST
LeNet, which offers Caffe's Xavier filler (the LRBench paper's Table II).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DigitsLeNet(nn.Sequential):
    """A small LeNet-style CNN (LeCun et al., 1998: conv-pool-conv-fc) sized for 8 x 8 digit images (1 x 8 x 8)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 16 x 4 x 4
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),  # 32 x 4 x 4
            nn.Flatten(), nn.Linear(32 * 4 * 4, num_classes),
        )  # fmt: skip


class DigitsMLP(nn.Sequential):
    """An MLP for 64 inputs (8 x 8 digits, flattened) with one hidden layer of 100 ReLU units,
    the default of scikit-learn's MLPClassifier."""

    def __init__(self, num_classes: int = 10, hidden: int = 100) -> None:
        super().__init__(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


class Mnist1dMLP(nn.Module):
    """The MNIST-1D authors' MLP (Greydanus, 2020, ``MLPBase`` in the mnist1d repository): two ReLU layers,
    the second with a residual connection, on length-40 signals."""

    def __init__(self, num_classes: int = 10, length: int = 40, hidden: int = 100) -> None:
        super().__init__()
        self.linear1 = nn.Linear(length, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.linear1(x.flatten(1)).relu()
        h = h + self.linear2(h).relu()
        return self.linear3(h)


class Mnist1dCNN(nn.Module):
    """The MNIST-1D authors' 1-D CNN (Greydanus, 2020, ``ConvBase`` in the mnist1d repository): three strided
    convolutions of 25 channels and a linear classifier, on length-40 signals."""

    def __init__(self, num_classes: int = 10, channels: int = 25) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)  # 40 -> 19
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)  # 19 -> 10
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)  # 10 -> 5
        self.linear = nn.Linear(channels * 5, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = x.reshape(len(x), 1, -1)
        h = self.conv3(self.conv2(self.conv1(h).relu()).relu()).relu()
        return self.linear(h.flatten(1))


class Mnist1dTransformer(nn.Module):
    """A small pre-LN Transformer encoder (Vaswani et al., 2017; the LayerNorm before each block, Xiong et al.,
    2020) for length-40 signals: a strided 1-D convolution cuts the signal into 20 tokens of ``width``, learned
    positions are added, ``depth`` encoder layers (``heads`` heads, feed-forward 2 x width, no dropout) follow,
    then a LayerNorm, the mean over tokens and a linear classifier."""

    def __init__(self, num_classes: int = 10, length: int = 40, width: int = 32, depth: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Conv1d(1, width, 4, stride=2, padding=1)  # 40 -> 20 tokens
        self.position = nn.Parameter(torch.randn(1, length // 2, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(x.reshape(len(x), 1, -1)).transpose(1, 2) + self.position
        return self.head(self.norm(self.encoder(h)).mean(dim=1))


class MnistLeNet(nn.Sequential):
    """Caffe's LeNet for 28 x 28 MNIST (examples/mnist/lenet_train_test.prototxt): conv20 5x5, maxpool 2,
    conv50 5x5, maxpool 2, fc500, ReLU, fc10.

    ``init="xavier"``: that prototxt's fillers, Caffe's XavierFiller (weights uniform in
    +-sqrt(3 / fan_in), fan_in = inputs x kernel area) and constant 0 biases; ``"torch"``: PyTorch's default.
    """

    def __init__(self, num_classes: int = 10, init: str = "xavier") -> None:
        super().__init__(
            nn.Conv2d(1, 20, 5), nn.MaxPool2d(2),  # 20 x 12 x 12
            nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),  # 50 x 4 x 4
            nn.Flatten(), nn.Linear(50 * 4 * 4, 500), nn.ReLU(), nn.Linear(500, num_classes),
        )  # fmt: skip
        if init not in ("xavier", "torch"):
            raise ValueError(f"MnistLeNet init={init!r}: expected 'xavier' (Caffe's filler) or 'torch'")
        if init == "xavier":
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    bound = (3.0 / (m.weight[0].numel())) ** 0.5  # fan_in: one output's weights
                    nn.init.uniform_(m.weight, -bound, bound)
                    nn.init.zeros_(m.bias)


class CifarCNN3(nn.Sequential):
    """Caffe's cifar10_quick network, LRBench's CNN3 (examples/cifar10/cifar10_quick_train_test.prototxt).

    conv32 5x5 pad 2, maxpool 3 stride 2, ReLU; conv32 5x5 pad 2, ReLU, avgpool 3 stride 2; conv64 5x5
    pad 2, ReLU, avgpool 3 stride 2; fc64; fc10 (no ReLU between the two, as in Caffe). Pooling rounds
    up as Caffe's does (32 -> 16 -> 8 -> 4).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(
            nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(3, 2, ceil_mode=True), nn.ReLU(),
            nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2, ceil_mode=True),
            nn.Flatten(), nn.Linear(64 * 4 * 4, 64), nn.Linear(64, num_classes),
        )  # fmt: skip


class BasicBlock(nn.Module):
    """He et al.'s basic residual block: two 3x3 conv-BN layers and an option-A shortcut (identity, or
    stride-2 subsampling with zero-padded new channels when the shape changes)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.stride = stride
        self.extra_channels = channels - in_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            half = self.extra_channels // 2
            shortcut = F.pad(shortcut, (0, 0, 0, 0, half, self.extra_channels - half))
        return F.relu(out + shortcut)


class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet (2016, §4.2): a 3x3 conv of 16 channels, three stages of ``n`` basic blocks
    with 16, 32 and 64 channels, global average pooling and fc10; ``depth = 6n + 2`` layers."""

    def __init__(self, depth: int = 20, num_classes: int = 10) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CifarResNet depth={depth}: expected 6n + 2 with n >= 1 (20, 32, 44, 56, 110)")
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, in_channels = [], 16
        for channels, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(BasicBlock(in_channels, channels, stride if i == 0 else 1))
                in_channels = channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(h.mean(dim=(2, 3)))


def resnet20(num_classes: int = 10) -> CifarResNet:
    """He et al.'s ResNet-20 for CIFAR (n = 3, about 0.27M parameters)."""
    return CifarResNet(20, num_classes)


def resnet32(num_classes: int = 10) -> CifarResNet:
    """He et al.'s ResNet-32 for CIFAR (n = 5, about 0.46M parameters)."""
    return CifarResNet(32, num_classes)
