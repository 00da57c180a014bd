"""The runner interface: start a number of workers and wait for their results.

A worker is any picklable callable that takes a `WorkerSlot`. The runner
decides where it executes: this process, local processes or Slurm tasks. The
workers coordinate among themselves through shared storage, so a runner never
hands out work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class WorkerSlot:
    """Position and resources of one worker.

    Attributes:
        index: Worker number, 0 to ``count - 1``.
        count: Number of workers the runner started.
        separate_process: True when the worker runs in a process of its own,
            which must set up its own logging.
        threads: CPU threads the worker may use for torch; None leaves torch's
            default.
    """

    index: int
    count: int
    separate_process: bool = False
    threads: int | None = None


@dataclass
class WorkerResult(Generic[ResultT]):
    """The outcome of one worker: its return value, or the error that ended it."""

    index: int
    value: ResultT | None = None
    error: str | None = None


class Runner(Protocol):
    """Starts workers and returns one result per worker, in index order.

    A failed worker is reported in its result, not raised.
    """

    @property
    def workers(self) -> int:
        """Number of workers a call to `run` starts."""
        ...

    @property
    def same_machine(self) -> bool:
        """Whether the workers run on the calling machine."""
        ...

    def run(self, worker: Callable[[WorkerSlot], Any]) -> list[WorkerResult[Any]]:
        """Run ``worker`` in every slot and wait for all of them."""
        ...
