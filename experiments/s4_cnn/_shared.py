"""Helpers several section-4 tasks use: kernels, receptive-field geometry and input gradients,
whole-batch shifts and perspective warps, and a loss that records every training step's value.
The SmallCNN recipe and the reuse of 4.3's network, which section 8 needs too, are in
experiments/common/small_cnn.py."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F



# ----------------------------------------------------------------------------- kernels (4.1)
def hand_made_kernels() -> dict[str, tuple[list[list[float]], str]]:
    """The classic kernels of 4.1 by name: (weights as rows, what they pick out)."""
    binomial = [1, 4, 6, 4, 1]
    return {
        "Sobel x": ([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "vertical edges"),
        "Sobel y": ([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], "horizontal edges"),
        "Laplacian": ([[0, 1, 0], [1, -4, 1], [0, 1, 0]], "edges, all directions"),
        "box blur 5×5": ([[1 / 25] * 5 for _ in range(5)], "blur: local mean"),
        "Gaussian blur 5×5": ([[a * b / 256 for b in binomial] for a in binomial], "blur: weighted mean"),
        "sharpen": ([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], "image − Laplacian"),
    }


def apply_kernels(images, kernels):
    """Filter every (N, 1, H, W) image with every 2-D kernel in one conv2d call -> (N, K, H, W).

    Kernels are zero-padded, centred, to one odd size (which leaves each operation unchanged) and the
    images are reflect-padded, so outputs keep the input size without dark borders. Like every deep
    learning library, conv2d computes cross-correlation (the kernel is not flipped).
    """
    images = torch.as_tensor(images, dtype=torch.float32)
    size = max(len(k) for k in kernels)
    weight = torch.zeros(len(kernels), 1, size, size)
    for i, k in enumerate(kernels):
        t = torch.as_tensor(k, dtype=torch.float32)
        o = (size - t.shape[0]) // 2
        weight[i, 0, o:o + t.shape[0], o:o + t.shape[1]] = t
    return F.conv2d(F.pad(images, (size // 2,) * 4, mode="reflect"), weight)


# ----------------------------------------------------------------------------- geometry (4.5)
def layer_geometry(layers) -> list[tuple[str, int, int, int, int]]:
    """(name, kernel, stride, padding, dilation) of the conv and pooling layers of a Sequential.

    Activations and batch norm act pixel by pixel and leave the receptive field alone, so they are skipped.
    """
    def first(v):
        return v[0] if isinstance(v, tuple) else v

    geometry, counts = [], {"conv": 0, "pool": 0}
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            kind = "conv"
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            kind = "pool"
        else:
            continue
        counts[kind] += 1
        stride = first(layer.stride) or first(layer.kernel_size)
        geometry.append((f"{kind}{counts[kind]}", first(layer.kernel_size), stride, first(layer.padding),
                         first(getattr(layer, "dilation", 1))))
    return geometry


def receptive_fields(geometry) -> list[dict]:
    """The theoretical receptive field after each layer of (name, kernel, stride, padding, dilation).

    jump = distance in input pixels between neighbouring output units (product of strides);
    rf = input pixels one unit sees, r_out = r_in + d·(k − 1)·jump_in;
    start = input coordinate of the centre of unit 0's field, start_out = start_in + (d·(k − 1)/2 − p)·jump_in.
    """
    jump, rf, start = 1, 1, 0.0
    rows = []
    for name, k, s, p, d in geometry:
        rf += d * (k - 1) * jump
        start += (d * (k - 1) / 2 - p) * jump
        jump *= s
        rows.append({"layer": name, "kernel": k, "stride": s, "padding": p, "dilation": d,
                     "jump": jump, "rf": rf, "start": start})
    return rows


def conv_activations(model, x) -> list:
    """Feature maps after each conv block's ReLU in ``model.features``: [(N, C, H, W), ...]."""
    maps, out = [], x
    for layer in model.features:
        out = layer(out)
        if isinstance(layer, nn.ReLU):
            maps.append(out.clone())  # ReLU is in-place; keep a copy of what it produced
    return maps


def input_gradient_maps(prefix, x, unit=None):
    """|∂(one output unit)/∂(input pixel)| per image, summed over input channels: (N, H, W).

    The unit is the spatial centre of ``prefix(x)`` summed over channels (or, for a (N, classes)
    output, each image's top logit). Each image's output depends on that image alone (eval mode),
    so one backward pass gives every image's map. Pixels outside the unit's receptive field get 0.
    """
    x = x.clone().requires_grad_(True)
    out = prefix(x)
    if out.ndim == 4:
        i, j = unit if unit is not None else (out.shape[2] // 2, out.shape[3] // 2)
        target = out[:, :, i, j].sum()
    else:
        target = out.gather(1, out.argmax(1, keepdim=True)).sum()
    (grad,) = torch.autograd.grad(target, x)
    return grad.abs().sum(1).detach().cpu()


def mass_sides(heats, centre: tuple[float, float], mass: float = 0.9):
    """Side of the smallest square around ``centre`` holding ``mass`` of each map's |gradient|: (N,) ints.

    ``heats``: (N, H, W) or (H, W). Vectorised: every map shares one ordering of pixels by distance."""
    heats = torch.as_tensor(heats, dtype=torch.float32)
    heats = heats[None] if heats.ndim == 2 else heats
    _, h, w = heats.shape
    ys = torch.arange(h, dtype=torch.float32).view(h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, w)
    cheb = torch.maximum((ys - centre[0]).abs(), (xs - centre[1]).abs()).flatten()  # square "radius"
    order = torch.argsort(cheb, stable=True)
    cum = heats.flatten(1)[:, order].cumsum(1) / heats.flatten(1).sum(1, keepdim=True).clamp_min(1e-30)
    crossing = (cum < mass - 1e-6).sum(1).clamp(max=len(order) - 1)  # first index reaching the mass
    return (2 * cheb[order][crossing] + 1).round().long()


def gradient_extent(heat, centre: tuple[float, float], threshold: float = 0.01, mass: float = 0.9,
                    inner_side: int | None = None) -> dict:
    """Empirical receptive-field sizes from one (H, W) gradient map.

    extent: side of the bounding box of pixels above ``threshold`` × peak (the 'non-negligible' region);
    mass_side: side of the smallest square around ``centre`` holding ``mass`` of the total |gradient|;
    inner_share (with ``inner_side``): share of the |gradient| inside the central square of that side.
    """
    heat = torch.as_tensor(heat, dtype=torch.float32)
    h, w = heat.shape
    if not heat.max() > 0:  # a unit no input reaches (dead ReLUs everywhere): no field to measure
        c = [int(centre[0]), int(centre[1])] * 2
        return {"extent": 0, "box": c, "mass_side": 0, **({"inner_share": 0.0} if inner_side is not None else {})}
    live = torch.nonzero(heat > threshold * heat.max())
    top, left = live.min(0).values.tolist()
    bottom, right = live.max(0).values.tolist()
    found = {"extent": int(max(bottom - top, right - left) + 1), "box": [top, left, bottom, right],
             "mass_side": int(mass_sides(heat, centre, mass)[0])}
    if inner_side is not None:
        ys = torch.arange(h, dtype=torch.float32).view(h, 1)
        xs = torch.arange(w, dtype=torch.float32).view(1, w)
        cheb = torch.maximum((ys - centre[0]).abs(), (xs - centre[1]).abs())
        found["inner_share"] = float(heat[cheb <= (inner_side - 1) / 2].sum() / heat.sum())
    return found


# ----------------------------------------------------------------------------- shifts and warps (4.6, 4.8)
def shift_images(x, dy, dx, fill: float):
    """Translate each image of a (N, C, H, W) batch by its own whole-pixel (dy[i], dx[i]).

    Positive dy moves content down, positive dx right; content leaving the frame is dropped and
    the uncovered border takes the value ``fill`` (no wrap-around, unlike torch.roll).
    """
    n, c, h, w = x.shape
    dy = torch.as_tensor(dy, device=x.device).long().expand(n)
    dx = torch.as_tensor(dx, device=x.device).long().expand(n)
    m = int(max(dy.abs().max(), dx.abs().max()))
    if m == 0:
        return x.clone()
    padded = F.pad(x, (m,) * 4, value=fill)
    rows = (m - dy).view(n, 1) + torch.arange(h, device=x.device)
    cols = (m - dx).view(n, 1) + torch.arange(w, device=x.device)
    out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * m))
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def homographies(src, dst):
    """(N, 3, 3) projective maps sending the four points ``src`` (N, 4, 2) to ``dst`` (N, 4, 2)."""
    src, dst = torch.as_tensor(src, dtype=torch.float32), torch.as_tensor(dst, dtype=torch.float32)
    n = src.shape[0]
    x, y, u, v = src[..., 0], src[..., 1], dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1)
    a = torch.cat([rows_u, rows_v], 1)                       # (N, 8, 8)
    h = torch.linalg.solve(a, torch.cat([u, v], 1))          # (N, 8)
    return torch.cat([h, torch.ones(n, 1, device=h.device)], 1).view(n, 3, 3)


def random_perspective(x, distortion: float = 0.4, p: float = 1.0):
    """Per-sample perspective warp of a (N, C, H, W) batch, in one grid_sample call.

    Each corner moves inward by up to ``distortion`` × half the side (torchvision's
    RandomPerspective convention), independently in x and y; a share ``p`` of the images is warped.
    The uncovered border takes each image's darkest value, as in utils.augment.random_affine.
    """
    n, _, h, w = x.shape
    dev = x.device
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], device=dev)
    inward = -corners.sign()                                   # direction towards the centre
    moved = corners + inward * torch.rand(n, 4, 2, device=dev) * distortion
    # grid_sample needs, for every output pixel, where to read in the input: output (moved) -> input (corners)
    hmat = homographies(moved, corners.expand(n, 4, 2)).to(dev)
    ys = (2 * torch.arange(h, device=dev) + 1) / h - 1
    xs = (2 * torch.arange(w, device=dev) + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx, gy, torch.ones_like(gx)], -1).view(1, -1, 3)   # (1, H·W, 3)
    mapped = pts @ hmat.transpose(1, 2)                                   # (N, H·W, 3)
    grid = (mapped[..., :2] / mapped[..., 2:]).view(n, h, w, 2)
    fill = x.amin(dim=(1, 2, 3), keepdim=True)
    out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
    keep = torch.rand(n, device=dev) >= p
    return torch.where(keep.view(n, 1, 1, 1), x, out)


def steps_below(losses, threshold: float, window: int = 5) -> int | None:
    """First step at which the ``window``-step moving average of the loss is below ``threshold``."""
    finite = np.nan_to_num(np.asarray(losses, dtype=float), nan=np.inf)
    if len(finite) < window:
        return None
    below = np.flatnonzero(np.convolve(finite, np.ones(window) / window, mode="valid") < threshold)
    return int(below[0]) + window if len(below) else None


def recording_cross_entropy():
    """Cross-entropy that also keeps every training step's loss: (loss_fn, list of losses).
    Training outputs carry gradients and evaluation outputs do not, which tells the two calls apart."""
    steps: list[float] = []

    def loss_fn(out, y):
        loss = F.cross_entropy(out, y)
        if out.requires_grad:
            steps.append(float(loss.detach()))
        return loss

    return loss_fn, steps
