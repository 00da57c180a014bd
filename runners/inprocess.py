"""The default runner: jobs one after another in the calling process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from runners.base import JobResult

logger = logging.getLogger(__name__)

JobT = TypeVar("JobT")


class InProcessRunner:
    """Runs jobs sequentially; an exception fails that job only.

    ``KeyboardInterrupt`` and ``SystemExit`` still stop the whole run.
    """

    def run(
        self, jobs: Sequence[JobT], work: Callable[[JobT], Any]
    ) -> list[JobResult[JobT]]:
        results: list[JobResult[JobT]] = []
        for job in jobs:
            try:
                results.append(JobResult(job, value=work(job)))
            except Exception as error:  # the job's failure is its result
                logger.exception("Job %s failed", job)
                results.append(JobResult(job, error=f"{type(error).__name__}: {error}"))
        return results
