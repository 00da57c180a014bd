"""Slurm job arrays through submitit: every array task is one worker.

The workers keep all their state in the shared storage, so a task can end at
any moment and start again from the beginning. On the signal Slurm sends
before a time limit or a preemption (submitit asks for ``USR2`` 90 s ahead),
submitit requeues the task; a task requeued with ``scontrol requeue`` or by
Slurm's own preemption starts again the same way. Lightning's own Slurm
requeue, which would save a model checkpoint, is not used: one trial or seed
is the unit that is redone.

The runner follows the tasks with ``squeue`` and the result files that
submitit writes, so it needs no accounting database (``sacct``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import FailedJobError, UncompletedJobError

from runners.base import WorkerResult, WorkerSlot

logger = logging.getLogger(__name__)

# The worker reads its array task id from here (see `bench.claims`).
TASK_ENV = "BENCH_SLURM_TASK"
# Seconds a task may be gone from squeue before its missing result file
# counts as a failure (shared filesystems show new files late).
RESULT_GRACE_S = 60.0
# File in the settings' folder that records the last array submitted from it.
ACTIVE_FILE = "active_array.json"


@dataclass(frozen=True)
class SlurmSettings:
    """Resources and limits of the job array.

    Attributes:
        folder: Folder for submitit's files and the task logs (one subfolder
            per array job); must be on a filesystem the nodes share.
        partition: Slurm partition; None uses the cluster's default.
        gpus_per_task: GPUs per task (worker).
        cpus_per_task: CPU cores per task, also the worker's torch threads.
        mem_gb: Memory per task in GiB; None uses the cluster's default.
        time_min: Time limit per task in minutes. Near the limit a task is
            requeued and continues.
        array_parallelism: Tasks that may run at once; None runs all.
        max_requeues: How often a task may be requeued after reaching its time
            limit.
        job_name: Slurm job name.
        extra: Further sbatch options, for example ``{"account": "abc"}``.
        poll_s: Seconds between two looks at the queue while waiting.
    """

    folder: Path
    partition: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int = 1
    mem_gb: float | None = None
    time_min: int = 60
    array_parallelism: int | None = None
    max_requeues: int = 3
    job_name: str = "bench"
    extra: dict[str, str] = field(default_factory=dict)
    poll_s: float = 5.0


class RequeueableWorker(submitit.helpers.Checkpointable):
    """A worker that submitit may requeue: it restarts from the beginning.

    `submitit.helpers.Checkpointable.checkpoint` resubmits the same callable
    with the same slot, which is all a worker needs, because its progress is
    in the shared storage.
    """

    def __init__(self, worker: Callable[[WorkerSlot], Any]) -> None:
        self.worker = worker

    def __call__(self, slot: WorkerSlot) -> Any:
        """Run the worker in its slot, naming its array task in the environment."""
        array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        if array_job and task:
            os.environ[TASK_ENV] = f"{array_job}_{task}"
        return self.worker(slot)


class SlurmRunner:
    """Submits one job array of ``workers`` tasks and waits for it.

    Args:
        workers: Number of array tasks.
        settings: Resources and limits.
        wait: Wait for the tasks to end; False returns right after submitting.
    """

    def __init__(self, workers: int, settings: SlurmSettings, wait: bool = True):
        if workers < 1:
            raise ValueError(f"--workers {workers}: give at least 1 worker.")
        if settings.gpus_per_task < 0 or settings.cpus_per_task < 1:
            raise ValueError(
                f"--gpus-per-task {settings.gpus_per_task} and --cpus-per-task "
                f"{settings.cpus_per_task}: GPUs must be >= 0 and CPUs >= 1."
            )
        if settings.time_min < 1:
            raise ValueError(f"--time {settings.time_min}: give at least 1 minute.")
        self._workers = workers
        self.settings = settings
        self.wait = wait
        self.array_id: str | None = None

    @property
    def workers(self) -> int:
        """Number of array tasks."""
        return self._workers

    @property
    def same_machine(self) -> bool:
        """False: tasks run on the cluster's nodes."""
        return False

    def executor(self) -> submitit.SlurmExecutor:
        """Return a submitit executor set up with the settings."""
        settings = self.settings
        executor = submitit.SlurmExecutor(
            folder=settings.folder / "%A", max_num_timeout=settings.max_requeues
        )
        parameters: dict[str, Any] = {
            "job_name": settings.job_name,
            "time": settings.time_min,
            "nodes": 1,
            "ntasks_per_node": 1,
            "cpus_per_task": settings.cpus_per_task,
            "array_parallelism": settings.array_parallelism or self._workers,
        }
        if settings.partition:
            parameters["partition"] = settings.partition
        if settings.gpus_per_task:
            parameters["gpus_per_task"] = settings.gpus_per_task
        if settings.mem_gb is not None:
            parameters["mem"] = f"{max(1, round(settings.mem_gb * 1024))}M"
        if settings.extra:
            parameters["additional_parameters"] = dict(settings.extra)
        executor.update_parameters(**parameters)
        return executor

    def run(self, worker: Callable[[WorkerSlot], Any]) -> list[WorkerResult[Any]]:
        """Submit the array; wait for it unless ``wait`` is False.

        Raises:
            RuntimeError: if sbatch rejects the job (the message has its output).
        """
        jobs = self._running_jobs()
        if jobs:
            logger.info(
                "Slurm job array %s of this results folder is still queued or "
                "running (%d tasks); following it instead of submitting another. "
                "`scancel %s` stops it.",
                self.array_id,
                len(jobs),
                self.array_id,
            )
        else:
            jobs = self._submit(worker)
        if not self.wait:
            return []
        try:
            return self._wait(jobs)
        except KeyboardInterrupt:
            logger.warning(
                "Stopped waiting; the tasks keep running. `scancel %s` stops them, "
                "and running the same command again waits for them.",
                self.array_id,
            )
            raise

    def _submit(self, worker: Callable[[WorkerSlot], Any]) -> list[submitit.Job]:
        threads = self.settings.cpus_per_task
        slots = [
            WorkerSlot(i, self._workers, True, threads) for i in range(self._workers)
        ]
        try:
            jobs = self.executor().map_array(RequeueableWorker(worker), slots)
        except (subprocess.CalledProcessError, FailedJobError) as error:
            raise RuntimeError(f"Slurm rejected the job array: {error}") from error
        self.array_id = jobs[0].job_id.split("_")[0]
        record = {"array_id": self.array_id, "tasks": [job.job_id for job in jobs]}
        (self.settings.folder / ACTIVE_FILE).write_text(json.dumps(record))
        logger.info(
            "Submitted Slurm job array %s: %d tasks, logs in %s",
            self.array_id,
            len(jobs),
            self.settings.folder / self.array_id,
        )
        return jobs

    def _running_jobs(self) -> list[submitit.Job]:
        """Return the tasks of the last array submitted here, if any is in squeue.

        A second ``bench run`` on the same results folder then waits for the
        running array instead of starting more workers for the same work.
        """
        path = self.settings.folder / ACTIVE_FILE
        try:
            record = json.loads(path.read_text())
            array_id, tasks = str(record["array_id"]), list(record["tasks"])
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("Ignoring invalid %s: %s", path, error)
            return []
        queued = _queued_tasks(array_id)
        if not queued:
            return []
        self.array_id = array_id
        pattern = self.settings.folder / "%A"
        return [submitit.SlurmJob(folder=pattern, job_id=task) for task in tasks]

    def _wait(self, jobs: list[submitit.Job]) -> list[WorkerResult[Any]]:
        results: dict[int, WorkerResult[Any]] = {}
        gone_since: dict[int, float] = {}
        while len(results) < len(jobs):
            queued = _queued_tasks(self.array_id or "")
            for index, job in enumerate(jobs):
                if index in results:
                    continue
                if job.paths.result_pickle.exists():
                    results[index] = _result_of(index, job)
                    continue
                if queued is None or job.job_id in queued:
                    gone_since.pop(index, None)
                    continue
                first_seen = gone_since.setdefault(index, time.monotonic())
                if time.monotonic() - first_seen > RESULT_GRACE_S:
                    results[index] = WorkerResult(
                        index,
                        error=f"Slurm task {job.job_id} left the queue without a "
                        f"result; see {job.paths.stdout} and {job.paths.stderr}"
                        f"{_tail(job.paths.stderr)}",
                    )
                    logger.error("%s", results[index].error)
            if len(results) < len(jobs):
                time.sleep(self.settings.poll_s)
        return [results[i] for i in range(len(jobs))]


def _result_of(index: int, job: submitit.Job) -> WorkerResult[Any]:
    try:
        return WorkerResult(index, value=job.result())
    except (FailedJobError, UncompletedJobError) as error:
        logger.error("Slurm task %s failed: %s", job.job_id, error)
        return WorkerResult(index, error=f"Slurm task {job.job_id} failed: {error}")


def _queued_tasks(array_id: str) -> set[str] | None:
    """Return the ids (``ARRAY_TASK``) of the array's tasks still in the queue.

    None when squeue fails, so that a passing hiccup is not read as "gone".
    """
    command = ["squeue", "--noheader", "--array", "--jobs", array_id, "--format", "%i"]
    try:
        listing = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        logger.warning("squeue failed, will look again: %s", error)
        return None
    if listing.returncode != 0:
        # Slurm forgets finished jobs after MinJobAge and then calls the id
        # invalid, which means that no task is left.
        if "invalid job id" in listing.stderr.lower():
            return set()
        logger.warning("squeue failed, will look again: %s", listing.stderr.strip())
        return None
    return {line.strip() for line in listing.stdout.splitlines() if line.strip()}


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "; last lines:\n" + "\n".join(text)
