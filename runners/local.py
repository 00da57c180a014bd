"""Local worker processes: one per GPU, or one per share of the CPU cores.

Processes are started with the ``spawn`` method, so each worker initializes
CUDA and torch's thread pools itself, after the runner has set
``CUDA_VISIBLE_DEVICES`` and the OpenMP thread count in its environment.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from runners.base import WorkerResult, WorkerSlot

logger = logging.getLogger(__name__)

# Seconds between two looks at the worker processes while waiting.
POLL_S = 0.5


class LocalRunner:
    """Starts ``workers`` processes on this machine and waits for them.

    Args:
        workers: Number of worker processes, at least 1.
        gpus: GPU ids to spread the workers over (round robin); None detects
            them from ``CUDA_VISIBLE_DEVICES`` or torch, and an empty list
            means CPU only.
        threads: torch threads per worker; None divides this process's CPU
            cores evenly between the workers.
    """

    def __init__(
        self,
        workers: int,
        gpus: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"--workers {workers}: give at least 1 worker.")
        if threads is not None and threads < 1:
            raise ValueError(f"{threads} threads per worker: give at least 1.")
        self._workers = workers
        self.gpus = list(gpus) if gpus is not None else visible_gpus()
        cores = len(os.sched_getaffinity(0))
        self.threads = threads or max(1, cores // workers)

    @property
    def workers(self) -> int:
        """Number of worker processes."""
        return self._workers

    @property
    def same_machine(self) -> bool:
        """Always True."""
        return True

    def environment(self, index: int) -> dict[str, str]:
        """Return the variables set for worker ``index``."""
        env = {
            "OMP_NUM_THREADS": str(self.threads),
            "MKL_NUM_THREADS": str(self.threads),
        }
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[index % len(self.gpus)]
        return env

    def run(self, worker: Callable[[WorkerSlot], Any]) -> list[WorkerResult[Any]]:
        """Start every worker, wait for all, and return their results."""
        if self.gpus and self._workers > len(self.gpus):
            logger.warning(
                "%d workers share %d GPUs (%s); workers on one GPU compete for it",
                self._workers,
                len(self.gpus),
                ",".join(self.gpus),
            )
        context = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue = context.Queue()
        processes = []
        for index in range(self._workers):
            slot = WorkerSlot(index, self._workers, True, self.threads)
            env = self.environment(index)
            with _environment(env):
                process = context.Process(
                    target=_worker_main,
                    args=(worker, slot, results),
                    name=f"bench-worker-{index}",
                )
                process.start()
            logger.info(
                "Worker %d started, pid %d, %s",
                index,
                process.pid,
                " ".join(f"{k}={v}" for k, v in sorted(env.items())),
            )
            processes.append(process)
        try:
            return _collect(processes, results)
        except BaseException:
            for process in processes:
                if process.is_alive():
                    process.terminate()
            for process in processes:
                process.join(timeout=30)
            raise


def visible_gpus() -> list[str]:
    """Return the GPU ids this process may use, empty without CUDA."""
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        return [d.strip() for d in declared.split(",") if d.strip() and d != "-1"]
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _worker_main(
    worker: Callable[[WorkerSlot], Any],
    slot: WorkerSlot,
    results: multiprocessing.Queue,
) -> None:
    # The launcher ends its workers with SIGTERM when it is interrupted. As a
    # KeyboardInterrupt, the signal lets the worker mark its running trial
    # FAIL and end its MLflow run before the process exits.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        results.put(WorkerResult(slot.index, value=worker(slot)))
    except KeyboardInterrupt as error:
        name = str(error) or "SIGINT"
        results.put(WorkerResult(slot.index, error=f"interrupted by {name}"))
        logging.getLogger(__name__).warning(
            "Worker %d interrupted by %s", slot.index, name
        )
    except BaseException as error:
        text = "".join(traceback.format_exception(error))
        results.put(WorkerResult(slot.index, error=f"{type(error).__name__}: {error}"))
        logging.getLogger(__name__).error("Worker %d failed:\n%s", slot.index, text)
        if not isinstance(error, Exception):
            raise


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _collect(
    processes: list[multiprocessing.process.BaseProcess],
    results: multiprocessing.Queue,
) -> list[WorkerResult[Any]]:
    collected: dict[int, WorkerResult[Any]] = {}
    # A worker that dies without reporting still counts once it has exited
    # and its queue entries (if any) have been read.
    while len(collected) < len(processes):
        try:
            result = results.get(timeout=POLL_S)
            collected[result.index] = result
            continue
        except queue.Empty:
            pass
        for index, process in enumerate(processes):
            if index in collected or process.is_alive():
                continue
            # Give a result that is still in the pipe a moment to arrive.
            time.sleep(POLL_S)
            try:
                while True:
                    result = results.get_nowait()
                    collected[result.index] = result
            except queue.Empty:
                pass
            if index not in collected:
                collected[index] = WorkerResult(
                    index,
                    error=f"worker {index} (pid {process.pid}) exited with code "
                    f"{process.exitcode} before reporting a result",
                )
                logger.error("%s", collected[index].error)
    for process in processes:
        process.join()
    return [collected[i] for i in range(len(processes))]
