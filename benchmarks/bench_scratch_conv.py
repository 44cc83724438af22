"""Time forward + backward of the scratch Conv2d against torch's conv2d.

Workload: a 64x1x28x28 float32 batch, 32 filters of 3x3, padding 1 (an MNIST first layer).
Both sides compute the output and all three gradients (input, weight, bias).
Torch is timed with its default thread count and with one thread (on a busy 2-core
machine OpenMP's multi-threaded barriers can be far slower); the bar compares scratch
to the faster of the two. Timed blocks of the contenders are interleaved so load from
other processes hits all alike. Reports medians after warm-up and the ratio.

    python benchmarks/bench_scratch_conv.py [--quick] [--reps N]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from scratch.layers import Conv2d

BATCH, CHANNELS, SIZE, FILTERS, KERNEL, PADDING = 64, 1, 28, 32, 3, 1
TARGET_RATIO = 3.0


def sample_times(fn, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run_block(fn, reps: int, torch_threads: int) -> list[float]:
    """Time `reps` calls of fn with torch limited to `torch_threads` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        time.sleep(0.05)  # let the previous contender's spinning threads (OpenBLAS, OpenMP) idle
        fn()              # one untimed call after the pause
        return sample_times(fn, reps)
    finally:
        torch.set_num_threads(previous)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions")
    args = parser.parse_args()
    reps = args.reps or (10 if args.quick else 50)
    warmup = 3 if args.quick else 10
    reps = max(reps, 5)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, CHANNELS, SIZE, SIZE)).astype(np.float32)
    layer = Conv2d(CHANNELS, FILTERS, KERNEL, padding=PADDING, rng=rng, dtype=np.float32)
    out_shape = (BATCH, FILTERS, SIZE, SIZE)
    dout = rng.standard_normal(out_shape).astype(np.float32)

    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    weight_t = torch.from_numpy(layer.params["weight"].copy()).requires_grad_(True)
    bias_t = torch.from_numpy(layer.params["bias"].copy()).requires_grad_(True)
    dout_t = torch.from_numpy(dout.copy())

    def torch_step():
        out = torch.nn.functional.conv2d(x_t, weight_t, bias_t, padding=PADDING)
        torch.autograd.grad(out, (x_t, weight_t, bias_t), dout_t)

    def scratch_step():
        layer.forward(x, training=True)
        layer.backward(dout)

    default_threads = torch.get_num_threads()
    contenders = {f"torch ({default_threads} threads)": (torch_step, default_threads),
                  "torch (1 thread)": (torch_step, 1),
                  "scratch": (scratch_step, default_threads)}
    for fn, threads in contenders.values():  # warm-up (allocator, thread pools, lazy imports)
        run_block(fn, warmup, threads)
    samples = {name: [] for name in contenders}
    rounds = max(1, reps // 5)
    for _ in range(rounds):
        for name, (fn, threads) in contenders.items():
            samples[name] += run_block(fn, 5, threads)
    medians = {name: float(np.median(times)) for name, times in samples.items()}
    torch_time = min(t for name, t in medians.items() if name.startswith("torch"))
    scratch_time = medians["scratch"]

    # the two really compute the same thing
    out_t = torch.nn.functional.conv2d(x_t, weight_t, bias_t, padding=PADDING)
    dx_t, dw_t, db_t = torch.autograd.grad(out_t, (x_t, weight_t, bias_t), dout_t)
    out = layer.forward(x)
    dx = layer.backward(dout)
    max_diff = max(np.abs(out - out_t.detach().numpy()).max(), np.abs(dx - dx_t.numpy()).max(),
                   np.abs(layer.grads["weight"] - dw_t.numpy()).max() / np.abs(dw_t.numpy()).max(),
                   np.abs(layer.grads["bias"] - db_t.numpy()).max() / np.abs(db_t.numpy()).max())

    ratio = scratch_time / torch_time
    print(f"conv2d fwd+bwd, x {BATCH}x{CHANNELS}x{SIZE}x{SIZE} float32, {FILTERS} filters "
          f"{KERNEL}x{KERNEL}, padding {PADDING}; median of {rounds * 5} reps each")
    for name, value in medians.items():
        print(f"  {name:18s}: {value * 1e3:8.2f} ms")
    print(f"  ratio scratch / fastest torch: {ratio:.2f}x  (target <= {TARGET_RATIO:.0f}x: "
          f"{'PASS' if ratio <= TARGET_RATIO else 'FAIL'})")
    print(f"  max difference vs torch (abs for out/dx, relative for dW/db): {max_diff:.2e}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
