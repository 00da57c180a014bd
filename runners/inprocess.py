"""The default runner: one worker, called in the calling process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from runners.base import WorkerResult, WorkerSlot

logger = logging.getLogger(__name__)


class InProcessRunner:
    """Runs a single worker inline; an exception becomes its result.

    ``KeyboardInterrupt`` and ``SystemExit`` still stop the whole run.
    """

    @property
    def workers(self) -> int:
        """Always 1."""
        return 1

    @property
    def same_machine(self) -> bool:
        """Always True."""
        return True

    def run(self, worker: Callable[[WorkerSlot], Any]) -> list[WorkerResult[Any]]:
        """Call ``worker`` once, in slot 0 of 1."""
        try:
            return [WorkerResult(0, value=worker(WorkerSlot(0, 1)))]
        except Exception as error:  # the worker's failure is its result
            logger.exception("Worker failed")
            return [WorkerResult(0, error=f"{type(error).__name__}: {error}")]
