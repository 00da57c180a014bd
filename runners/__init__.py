"""Runners, which execute workers in this process, in local processes or on Slurm.

Every runner starts a number of workers and waits for their results; the
workers share work through the Optuna storage, so runners hand out none.
This package imports nothing else of the project.
"""

from runners.base import Runner, WorkerResult, WorkerSlot
from runners.inprocess import InProcessRunner
from runners.local import LocalRunner
from runners.slurm import SlurmRunner, SlurmSettings

__all__ = [
    "InProcessRunner",
    "LocalRunner",
    "Runner",
    "SlurmRunner",
    "SlurmSettings",
    "WorkerResult",
    "WorkerSlot",
]
