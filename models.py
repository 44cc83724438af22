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


# ------------------------------------------------------------------ recurrent networks (section 6, reused in 7)

RECURRENT_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentClassifier(nn.Module):
    """A vanilla RNN, LSTM or GRU read out from its final hidden state by one linear layer.

    Input: features (B, T, input_size), or token ids (B, T) when ``vocab_size`` is given (a
    learned embedding of ``input_size`` dimensions comes first). ``lengths`` (B,) gives the real
    length of right-padded sequences, so the summary is each sequence's own last step, never a
    padding step. Bidirectional: the summary joins the forward direction's state after the last
    step and the backward direction's state after the first step (it reads right to left), so
    both ends of the sequence are one step from the read-out. ``forget_bias`` (LSTM only) sets
    the forget-gate bias; 1.0 is the common choice that keeps early gradients alive.
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, cell: str = "lstm",
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 vocab_size: int | None = None, padding_idx: int | None = 0,
                 forget_bias: float | None = None):
        super().__init__()
        if cell not in RECURRENT_CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose from {', '.join(RECURRENT_CELLS)}")
        self.cell = cell
        self.hidden_size = hidden_size
        self.directions = 2 if bidirectional else 1
        self.embedding = (nn.Embedding(vocab_size, input_size, padding_idx=padding_idx)
                          if vocab_size is not None else None)
        self.rnn = RECURRENT_CELLS[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True,
                                         bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        if forget_bias is not None:
            if cell != "lstm":
                raise ValueError("forget_bias applies to LSTMs only")
            with torch.no_grad():
                for name, bias in self.rnn.named_parameters():
                    if name.startswith("bias_"):  # gate order i, f, g, o: the forget slice is [H, 2H)
                        bias[hidden_size:2 * hidden_size] = forget_bias if name.startswith("bias_ih") else 0.0
        self.head = nn.Linear(hidden_size * self.directions, num_classes)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All top-layer states (B, T, H·dirs) and the final-state summary (B, H·dirs)."""
        if self.embedding is not None:
            x = self.embedding(x)                                   # (B, T) -> (B, T, E)
        if lengths is not None:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            out, state = self.rnn(x)                                # (B, T, H·dirs)
        h_n = state[0] if isinstance(state, tuple) else state      # (layers·dirs, B, H); LSTM: (h, c)
        summary = torch.cat(list(h_n[-self.directions:]), dim=1)   # top layer's directions: (B, H·dirs)
        return out, summary

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encode(x, lengths)[1])               # (B, classes)


class RecurrentRegressor(RecurrentClassifier):
    """The same network with ``out_features`` real outputs (B, out_features), for MSE training."""

    def __init__(self, input_size: int, hidden_size: int, out_features: int = 1, cell: str = "lstm", **kwargs):
        super().__init__(input_size, hidden_size, out_features, cell=cell, **kwargs)


class ProductCNN(nn.Module):
    """Task 4.9's CNN: three blocks of (3×3 conv → batch norm → ReLU) × convs_per_block → 2×2 max-pool,
    with width, 2·width and 4·width channels, then dropout → linear.

    The convolutions have no bias (batch norm's shift replaces it). A 28×28 image ends as a 3×3 map
    (32×32 as 4×4), so the classifier sees 4·width·(image_size // 8)² features.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 width: int = 32, convs_per_block: int = 1, dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for out in (width, 2 * width, 4 * width):
            for _ in range(convs_per_block):
                layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                           nn.ReLU(inplace=True)]
                channels = out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = image_size // 8
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout),
                                        nn.Linear(4 * width * side * side, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # (B, C, H, W) -> (B, classes)


class ProductClassifier(ProductCNN):
    """Task 4.9's network: ProductCNN's three conv blocks with a hidden fully connected layer on top,
    flatten → FC hidden → batch norm → ReLU → dropout → linear (faster to train to high accuracy
    than the single linear read-out)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 width: int = 32, convs_per_block: int = 1, hidden: int = 256, dropout: float = 0.3):
        super().__init__(in_channels, num_classes, image_size, width, convs_per_block, dropout)
        side = image_size // 8
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * width * side * side, hidden), nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes))


# ----------------------------------------------------------------------------- section 5 (CIFAR-10)
class BasicBlock(nn.Module):
    """ResNet's basic block: conv 3×3 → BN → ReLU → conv 3×3 → BN, (+ shortcut) → ReLU.

    With ``residual=False`` the shortcut is dropped (a "plain" block, as in the ResNet paper's
    comparison). A stride-2 block halves H and W; when the shape changes the shortcut is a
    1×1 conv + BN (the paper's option B), else the identity.
    """
    def __init__(self, cin: int, cout: int, stride: int = 1, residual: bool = True):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if residual and (stride != 1 or cin != cout):
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))      # (B, cout, H/s, W/s)
        out = self.bn2(self.conv2(out))                # (B, cout, H/s, W/s)
        return torch.relu(out + self.shortcut(x) if self.residual else out)


class CifarResNet(nn.Module):
    """A ResNet with the CIFAR stem: one 3×3 conv, stride 1, no max-pool (32×32 inputs are small).

    ``blocks`` per stage; the first stage keeps the resolution, each later stage halves it and
    (with ``widths``) widens. ResNet-18: blocks (2, 2, 2, 2), widths (64, 128, 256, 512):
    32×32×64 → 32×32×64 → 16×16×128 → 8×8×256 → 4×4×512 → global average pool → 512 → classes.
    The paper's CIFAR nets (depth 6n + 2): blocks (n, n, n), widths (16, 32, 64).
    """
    def __init__(self, blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512), num_classes: int = 10,
                 in_channels: int = 3, residual: bool = True):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))  # (B, w0, H, W)
        stages, cin = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            layers = [BasicBlock(cin if j == 0 else w, w, 2 if (j == 0 and i > 0) else 1, residual)
                      for j in range(n)]
            stages.append(nn.Sequential(*layers))
            cin = w
        self.stages = nn.Sequential(*stages)            # (B, widths[-1], H / 2^(stages-1), ...)
        self.pool = nn.AdaptiveAvgPool2d(1)             # (B, widths[-1], 1, 1)
        self.fc = nn.Linear(widths[-1], num_classes)    # (B, classes)

    @property
    def depth(self) -> int:
        """Weight layers on the main path: the stem, two per block, the classifier."""
        return 2 + 2 * sum(len(s) for s in self.stages)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.stages(self.stem(x))), 1)   # (B, widths[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def resnet18_cifar(num_classes: int = 10, in_channels: int = 3, width: int = 64) -> CifarResNet:
    """Our ResNet-18 (BasicBlocks [2, 2, 2, 2], CIFAR stem); ``width`` < 64 narrows every stage alike."""
    return CifarResNet((2, 2, 2, 2), tuple(width * m for m in (1, 2, 4, 8)), num_classes, in_channels)


class CifarNet(nn.Module):
    """Task 5.4's network, after the fast CIFAR-10 recipes (Myrtle's ResNet-9, airbench):

    stem conv w0 → [conv w1 → max-pool 2 → residual (2 conv w1)] → [conv w2 → max-pool 2]
    → [conv w3 → max-pool 2 → residual (2 conv w3)] → global max-pool → dropout → linear.
    Every conv is 3×3 + BN + ReLU. 32×32 input: 32 → 16 → 8 → 4 pixels wide.
    """
    def __init__(self, in_channels: int = 3, num_classes: int = 10, widths=(32, 64, 128, 256),
                 dropout: float = 0.2):
        super().__init__()

        def conv(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        w0, w1, w2, w3 = widths
        self.stem = nn.Sequential(*conv(in_channels, w0))                      # (B, w0, 32, 32)
        self.layer1 = nn.Sequential(*conv(w0, w1), nn.MaxPool2d(2))           # (B, w1, 16, 16)
        self.res1 = nn.Sequential(*conv(w1, w1), *conv(w1, w1))
        self.layer2 = nn.Sequential(*conv(w1, w2), nn.MaxPool2d(2))           # (B, w2, 8, 8)
        self.layer3 = nn.Sequential(*conv(w2, w3), nn.MaxPool2d(2))           # (B, w3, 4, 4)
        self.res3 = nn.Sequential(*conv(w3, w3), *conv(w3, w3))
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(w3, num_classes))                  # (B, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.stem(x))
        x = x + self.res1(x)
        x = self.layer3(self.layer2(x))
        return self.logit_scale * self.head(x + self.res3(x))

    logit_scale = 0.125  # Myrtle's ResNet-9 scales the logits down: max-pooled features are large


class GANGenerator(nn.Module):
    """Task 8.1's generator, as the course gives it: noise 100 → 128 (ReLU) → pixels (tanh, in [−1, 1])."""

    def __init__(self, noise_dim: int = 100, hidden: int = 128, out_dim: int = 784):
        super().__init__()
        self.noise_dim = noise_dim
        self.net = nn.Sequential(nn.Linear(noise_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim),
                                 nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, noise_dim) -> (B, out_dim)


class GANDiscriminator(nn.Module):
    """Task 8.1's discriminator: pixels → 128 (LeakyReLU 0.2) → 1 (sigmoid: P(real))."""

    def __init__(self, in_dim: int = 784, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, 1),
                                 nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)  # (B, in_dim) -> (B,)


class SiameseEncoder(nn.Module):
    """Task 8.2's shared-weight encoder: conv 16 → pool → conv 32 → pool → FC 64 → embedding (unit length)."""

    def __init__(self, in_channels: int = 1, image_size: int = 28, embedding: int = 32):
        super().__init__()
        side = image_size // 4
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * side * side, 64), nn.ReLU(inplace=True), nn.Linear(64, embedding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.net(x), dim=1)  # (B, C, H, W) -> (B, embedding), ‖e‖ = 1
