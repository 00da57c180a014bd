"""The runner interface."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

JobT = TypeVar("JobT")


@dataclass
class JobResult(Generic[JobT]):
    """The outcome of one job: its value, or the error that stopped it."""

    job: JobT
    value: Any = None
    error: str | None = None


class Runner(Protocol):
    """Executes jobs; a failed job is reported in its result, not raised."""

    def run(
        self, jobs: Sequence[JobT], work: Callable[[JobT], Any]
    ) -> list[JobResult[JobT]]:
        """Apply ``work`` to every job and return one result per job, in order."""
        ...
