"""Small worker functions for runner tests; light to import in child processes."""

from __future__ import annotations

import os

from runners import WorkerSlot


def echo_worker(slot: WorkerSlot) -> dict:
    """Return the slot and the environment variables of the worker process."""
    return {
        "index": slot.index,
        "count": slot.count,
        "threads": slot.threads,
        "separate": slot.separate_process,
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "pid": os.getpid(),
    }


def failing_worker(slot: WorkerSlot) -> int:
    """Raise in slot 1, exit without a result in slot 2, return the index else."""
    if slot.index == 1:
        raise ValueError("bad input in worker 1")
    if slot.index == 2:
        os._exit(3)
    return slot.index
