import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from utils.provenance import peak_rss, reset_peak_rss, tune_allocator

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM and glibc's mallopt are Linux's")


@linux_only
def test_a_task_peak_excludes_memory_an_earlier_task_freed():
    assert tune_allocator()  # glibc now keeps freed heap memory instead of returning it
    assert reset_peak_rss()
    base = peak_rss()
    blocks = [np.ones(1 << 17) for _ in range(300)]  # 300 MB in 1 MB blocks: heap memory, not mmap
    high = peak_rss()
    assert high - base > 250e6
    del blocks   # freed, but kept by the tuned allocator
    reset_peak_rss()
    assert peak_rss() < high - 200e6, "the next window must not start with the kept heap"


@linux_only
def test_allocator_tuning_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("DL_MALLOC_TUNE", "0")
    assert tune_allocator() is False


def test_versions_name_every_library_without_importing_it():
    # A fresh interpreter: in the test process torchvision may already be loaded.
    code = ("import sys; from utils.provenance import versions; v = versions(); "
            "print(sorted(v)); print('torchvision' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.splitlines()
    assert out[0] == str(sorted(["python", "numpy", "torch", "torchvision", "sklearn", "matplotlib"]))
    assert out[1] == "False False"
