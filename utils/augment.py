"""Data augmentation on whole batches (N, C, H, W), on whatever device the batch is on.

Each function draws per-sample random parameters but transforms the batch in one vectorised
call (grid_sample, masks, flips by index), never a Python loop over images.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_hflip(x: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    flip = torch.rand(x.shape[0], device=x.device) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def random_affine(x: torch.Tensor, degrees: float = 0.0, translate: float = 0.0,
                  scale: tuple[float, float] = (1.0, 1.0), shear: float = 0.0) -> torch.Tensor:
    """Per-sample rotation (degrees), translation (fraction of size), scale and shear."""
    n = x.shape[0]
    dev = x.device
    angle = (torch.rand(n, device=dev) * 2 - 1) * math.radians(degrees)
    sh = (torch.rand(n, device=dev) * 2 - 1) * math.radians(shear)
    s = torch.empty(n, device=dev).uniform_(*scale)
    t = (torch.rand(n, 2, device=dev) * 2 - 1) * translate * 2  # grid coordinates span [-1, 1]
    cos, sin = torch.cos(angle), torch.sin(angle)
    # theta maps output grid coordinates to input coordinates: inverse of rotate·shear·scale.
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = cos / s
    theta[:, 0, 1] = (-sin + torch.tan(sh) * cos) / s
    theta[:, 1, 0] = sin / s
    theta[:, 1, 1] = (cos + torch.tan(sh) * sin) / s
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    fill = x.amin(dim=(1, 2, 3), keepdim=True)  # background = the image's darkest value
    out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill


def random_crop(x: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Pad by ``padding`` (reflect) and crop back at a random offset per sample."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * padding)
    out = padded.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, c, h, w)
    return out.gather(3, cols)


def random_erasing(x: torch.Tensor, p: float = 0.5, area: tuple[float, float] = (0.02, 0.2)) -> torch.Tensor:
    """Blank a random rectangle (to the batch mean) in a share ``p`` of the images."""
    n, _, h, w = x.shape
    dev = x.device
    frac = torch.empty(n, device=dev).uniform_(*area)
    aspect = torch.exp(torch.empty(n, device=dev).uniform_(math.log(0.3), math.log(3.3)))
    eh = (torch.sqrt(frac * aspect) * h).clamp(1, h).long()
    ew = (torch.sqrt(frac / aspect) * w).clamp(1, w).long()
    y0 = (torch.rand(n, device=dev) * (h - eh + 1)).long()
    x0 = (torch.rand(n, device=dev) * (w - ew + 1)).long()
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    box = ((ys >= y0.view(-1, 1, 1)) & (ys < (y0 + eh).view(-1, 1, 1))
           & (xs >= x0.view(-1, 1, 1)) & (xs < (x0 + ew).view(-1, 1, 1)))
    box &= (torch.rand(n, device=dev) < p).view(-1, 1, 1)
    return torch.where(box.unsqueeze(1), x.mean(), x)


def compose(*fns):
    def apply(x: torch.Tensor) -> torch.Tensor:
        for fn in fns:
            x = fn(x)
        return x
    return apply
