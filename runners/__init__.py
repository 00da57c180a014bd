"""Where work executes. Runners take independent jobs and a function to apply.

This package imports nothing else of the project.
"""

from runners.base import JobResult, Runner
from runners.inprocess import InProcessRunner

__all__ = ["InProcessRunner", "JobResult", "Runner"]
