"""Seeds, devices and the provenance every result carries (airbench-style)."""
from __future__ import annotations

import os
import platform
import random
import sys
from contextlib import contextmanager


def set_seed(seed: int) -> None:
    """The one seed function: Python, NumPy and torch (all devices)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS generators too


# glibc's malloc gives freed memory back to the OS past 128 kB (trim) and serves big blocks
# with fresh mmap()s, so every training batch page-faults its activations in again: about 30%
# of a CPU epoch of a small CNN. Keeping up to these sizes in the heap removes the churn.
MALLOC_MMAP_THRESHOLD = 256 << 20   # blocks above this still come from mmap
MALLOC_TRIM_THRESHOLD = 512 << 20   # free heap kept before returning it to the OS


def _glibc():
    """glibc's C library with its malloc tuning calls, or None (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds (see above); True if applied. A no-op without glibc
    and when $DL_MALLOC_TUNE is 0 (for measuring the difference)."""
    libc = _glibc() if os.environ.get("DL_MALLOC_TUNE") != "0" else None
    if libc is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
    return bool(libc.mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)
                and libc.mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD))


def thread_budget() -> int:
    """$DL_THREADS, the threads this process may use (set by --jobs and test workers); 0 when unset."""
    try:
        return max(0, int(os.environ.get("DL_THREADS") or 0))
    except ValueError:
        return 0


def configure_torch() -> None:
    """Use every core (or $DL_THREADS, set by --jobs workers) for intra-op work; one inter-op
    thread avoids oversubscription; tune the allocator (above)."""
    import torch

    tune_allocator()

    torch.set_num_threads(thread_budget() or max(1, os.cpu_count() or 1))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # can only be set once per process, before parallel work starts
        pass


@contextmanager
def limit_threads(n: int):
    """Run a block with torch's intra-op pool and NumPy's BLAS/OpenMP pools at ``n`` threads.

    Small networks (MLPs on 8x8 digits, RNNs with 32 units, NumPy layers) gain nothing from a
    second thread, and the worker threads' spinning can make them 10-100x slower when the cores
    are busy (measured: a 784-256-128-10 torch step 170 ms on two threads vs 5 ms on one).
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def pick_device(requested: str = "auto"):
    """``auto`` prefers CUDA, then Apple's MPS, then the CPU. Raises ValueError if unavailable."""
    import torch

    requested = requested.lower()
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available to torch here")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps was asked for, but Apple's MPS backend is not available here")
    if requested not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"unknown device {requested!r}; choose auto, cpu, cuda or mps")
    return torch.device(requested)


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on.

    Read from the installed packages' metadata, not by importing them: importing torchvision
    and scikit-learn only to ask their version cost a task process about three seconds."""
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for module in ("numpy", "torch", "torchvision", "sklearn", "matplotlib"):
        loaded = sys.modules.get(module)
        if loaded is not None and getattr(loaded, "__version__", None):
            out[module] = loaded.__version__  # what this process really runs
            continue
        try:
            out[module] = metadata.version({"sklearn": "scikit-learn"}.get(module, module))  # pip's name
        except metadata.PackageNotFoundError:
            continue
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device) -> dict[str, object]:
    info: dict[str, object] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                               "cpu_model": _cpu_model(), "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if str(device).startswith("cuda"):
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def release_freed_memory() -> None:
    """Give the heap memory freed by earlier work back to the OS (glibc's malloc_trim), so that the
    next task's peak is its own and not the previous task's kept heap (see tune_allocator)."""
    import gc

    gc.collect()
    # What survives is long-lived (imported modules, caches): move it out of the collector's view,
    # so that the next task's collection (and every automatic one while it trains) scans only the
    # objects created since. A full collection over torch's and matplotlib's objects takes about
    # 0.4 s; without this, a run of the catalogue spent some 20 s scanning the same objects.
    gc.freeze()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


_child_peak = 0  # bytes: the largest utils.fanout worker of this window


def record_child_peak(nbytes: int) -> None:
    """A worker's peak memory (utils.fanout); peak_rss() reports the larger of it and this process's."""
    global _child_peak
    _child_peak = max(_child_peak, int(nbytes))


def reset_peak_rss() -> bool:
    """Start a new peak-memory window (Linux: writing 5 to clear_refs resets VmHWM); memory freed
    by earlier work is released first, so the window starts from what is really in use."""
    release_freed_memory()
    return reset_peak_window()


def reset_peak_window() -> bool:
    """reset_peak_rss without releasing memory first (cheap: for a freshly forked worker)."""
    global _child_peak
    _child_peak = 0
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """Peak resident memory in bytes since the last reset_peak_rss() (else since the process began),
    of this process or of the largest worker it forked for a task's runs (each counts on its own)."""
    return max(_own_peak_rss(), _child_peak)


def _own_peak_rss() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux
    except (ImportError, OSError):
        return 0


_CODE_VERSION: str | None = None


def code_version() -> str:
    """The git commit of this checkout (with '+dirty' when it has uncommitted changes), or 'unknown'."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        import subprocess
        from pathlib import Path

        root = Path(__file__).resolve().parents[1]
        try:
            head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                  timeout=5).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            _CODE_VERSION = (head + ("+dirty" if dirty else "")) if head else "unknown"
        except (OSError, subprocess.SubprocessError):
            _CODE_VERSION = "unknown"
    return _CODE_VERSION
