"""Running under ``torchrun``: one process per rank, the shared fit loop data-parallel.

    torchrun --nproc_per_node=2 main.py 4.9 --mode hybrid          # two processes on this machine
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST --master_port=29500 --nproc_per_node=1 main.py 4.9

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous variables; ``init_from_env``
joins the process group (NCCL on GPUs, gloo on CPUs). Tasks need no change: ``utils.train.fit``
wraps the model in DistributedDataParallel (batch norm made SyncBatchNorm), gives each rank its
share of every global batch, and reduces the epoch's loss and accuracy across ranks. Only rank 0
writes figures and results; metrics.json records ``world_size``.
"""
from __future__ import annotations

import sys

import os


def world_size() -> int:
    try:
        import torch.distributed as dist
    except ImportError:
        return 1
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    try:
        import torch.distributed as dist
    except ImportError:
        return 0
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device: str = "auto") -> int:
    """Join the process group torchrun prepared (no-op otherwise); returns the world size."""
    if not launched_by_torchrun():
        return 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        use_nccl = device in ("auto", "cuda") and torch.cuda.is_available()
        if use_nccl:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if use_nccl else "gloo")
    return dist.get_world_size()


def shutdown() -> None:
    """Leave a torchrun process group cleanly; a no-op, importing nothing, when torch was never loaded
    (importing torch.distributed here cost every menu, --list and bad command line 3 s at exit)."""
    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
