"""PyTorch models shared by the tasks."""
from __future__ import annotations

import torch
import torch.nn as nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class SmallCNN(nn.Module):
    """Task 4.3's CNN: conv 32 (3×3) → pool → conv 64 (3×3) → pool → FC 128 → classes.

    Padding 1 keeps each conv's output the size of its input, so a 28×28 image becomes
    14×14 after the first pool and 7×7 after the second.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 dropout: float = 0.25, pool: str = "max", batch_norm: bool = False):
        super().__init__()
        Pool = nn.MaxPool2d if pool == "max" else nn.AvgPool2d

        def block(cin, cout):
            layers = [nn.Conv2d(cin, cout, 3, padding=1)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            return layers + [nn.ReLU(inplace=True), Pool(2)]

        self.features = nn.Sequential(*block(in_channels, 32), *block(32, 64))
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, 128), nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # (B, C, H, W) -> (B, classes)


class MLP(nn.Module):
    """A fully connected classifier: in → hidden[0] → … → out, with ReLU (or another activation)."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], out_features: int,
                 dropout: float = 0.0, activation: type[nn.Module] = nn.ReLU, batch_norm: bool = False,
                 layer_norm: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            if layer_norm:
                layers.append(nn.LayerNorm(h))
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
