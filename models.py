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
