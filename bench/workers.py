"""Workers: the processes that share the studies of one benchmark run.

Every worker walks the suite's (dataset, encoder) pairs in order and runs one
unit of work at a time, a tuning trial or a final seed, on the first pair that
has a free one. Several workers therefore fill one Optuna study together,
then move on to the next pair. A worker ends when every pair is complete,
failed or skipped. While other workers have the work that is left, it waits
and looks again, so it can take over the work of a worker that dies.

The runner (`runners`) decides where workers execute; everything they share
lives in the Optuna storage and the MLflow tracking store.
"""

from __future__ import annotations

import functools
import logging
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.claims import LeaseSettings, WorkerIdentity, slurm_task_id
from bench.config import Preset
from bench.pipeline import PairJob, RunSummary, _prepare, resolve_device
from bench.storage import open_storage
from bench.study import PairOutcome, PairSpec, StepResult, StudyRunner
from bench.tracking import Tracker, code_version
from encoders import get_encoder
from runners import Runner, WorkerSlot
from tasks import DatasetError, DataSources, Suite
from tasks.splits import SplitError

logger = logging.getLogger(__name__)

# Prepared datasets a worker keeps in memory (on the training device).
PREPARED_CACHE = 3
# Keeps sampler seeds of different workers apart.
SAMPLER_STRIDE = 100_003


@dataclass(frozen=True)
class WorkPlan:
    """Everything a worker needs; picklable, so it travels to other processes.

    Attributes:
        suite: The suite.
        preset: The protocol with the run's budget.
        jobs: The (dataset, encoder) pairs, in the order workers visit them.
        sources: Where datasets come from.
        results: Results folder (artifacts, reports).
        tracking_uri: MLflow tracking URI.
        storage_url: Optuna storage URL.
        experiment_id: MLflow experiment of the suite.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        leases: Heartbeat timing of claims.
        verbosity: Log verbosity of worker processes (as ``bench -v``).
        poll_s: Seconds a worker waits before looking again at held work.
    """

    suite: Suite
    preset: Preset
    jobs: tuple[PairJob, ...]
    sources: DataSources
    results: Path
    tracking_uri: str
    storage_url: str
    experiment_id: str
    device: str = "auto"
    leases: LeaseSettings = field(default_factory=LeaseSettings)
    verbosity: int = 0
    poll_s: float = 2.0


@dataclass
class WorkerReport:
    """Record of one worker's work.

    Attributes:
        index: Worker number.
        worker: The worker's identity, for logs.
        outcomes: Final status per pair, keyed by ``str(PairJob)``.
        skipped: Datasets that could not be loaded, with the reason.
        failed: Pairs that raised an error, with the error.
        units: Trials and final seeds this worker ran.
    """

    index: int
    worker: str
    outcomes: dict[str, PairOutcome] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    units: int = 0


def artifact_root(tracking_uri: str, results: Path) -> Path | None:
    """Return where new experiments keep artifacts: the results folder, or
    None for a tracking server, which then stores them (``mlflow-artifacts:``)."""
    if tracking_uri.startswith(("http://", "https://")):
        return None
    return results / "mlartifacts"


def launch(plan: WorkPlan, runner: Runner) -> RunSummary:
    """Run the plan's workers through ``runner`` and merge their reports."""
    results = runner.run(functools.partial(run_worker, plan))
    summary = RunSummary()
    for result in results:
        if result.error is not None:
            summary.worker_errors[result.index] = result.error
            continue
        report: WorkerReport = result.value
        summary.skipped.update(report.skipped)
        for pair, error in report.failed.items():
            summary.failed.setdefault(pair, error)
        for pair, outcome in report.outcomes.items():
            known = summary.outcomes.get(pair)
            if known is None or _rank(outcome) > _rank(known):
                summary.outcomes[pair] = outcome
    # A pair that failed in one worker and was completed by another is complete.
    for pair, outcome in summary.outcomes.items():
        if outcome.status == "complete":
            summary.failed.pop(pair, None)
    return summary


def _rank(outcome: PairOutcome) -> int:
    return {"complete": 2, "failed": 1}.get(outcome.status, 0)


def run_worker(plan: WorkPlan, slot: WorkerSlot) -> WorkerReport:
    """Work on the plan's pairs until none has work left; the worker's entry point."""
    if slot.separate_process:
        from bench.cli import configure_logging

        configure_logging(plan.verbosity, f"worker {slot.index}")
    if slot.threads is not None:
        import torch

        torch.set_num_threads(slot.threads)
    return Worker(plan, slot).run()


class Worker:
    """One worker's loop over the pairs; see the module docstring."""

    def __init__(self, plan: WorkPlan, slot: WorkerSlot) -> None:
        if slurm_task_id() is None:
            # Lightning warns at every fit on a machine with Slurm installed
            # that srun is not used; a worker outside a Slurm job means that.
            warnings.filterwarnings("ignore", message="The `srun` command is available")
        self.plan = plan
        self.slot = slot
        self.identity = WorkerIdentity.current()
        self.device = resolve_device(plan.device)
        self.tracker = Tracker(
            plan.tracking_uri,
            artifact_root=artifact_root(plan.tracking_uri, plan.results),
        )
        self.storage = open_storage(plan.storage_url, plan.leases)
        self.report = WorkerReport(slot.index, self.identity.label)
        self._studies: dict[PairJob, StudyRunner] = {}
        self._prepared: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def run(self) -> WorkerReport:
        """Loop until every pair is done; return what this worker saw."""
        logger.info(
            "Worker %d of %d (%s) on %s",
            self.slot.index,
            self.slot.count,
            self.identity.label,
            self.device,
        )
        pending = list(self.plan.jobs)
        while pending:
            worked = False
            for job in list(pending):
                result = self._step(job)
                if result is StepResult.DONE:
                    pending.remove(job)
                    self._studies.pop(job, None)
                elif result is StepResult.WORKED:
                    self.report.units += 1
                    worked = True
                    # Back to the first pair with work, which keeps the
                    # workers together on the earliest unfinished study.
                    break
            if pending and not worked:
                time.sleep(self.plan.poll_s)
        logger.info(
            "Worker %d done: ran %d trials and seeds",
            self.slot.index,
            self.report.units,
        )
        return self.report

    def _step(self, job: PairJob) -> StepResult:
        label = str(job)
        skipped = self.report.skipped.get(job.entry.openml_id)
        if skipped is not None:
            self.report.outcomes[label] = PairOutcome("skipped", reason=skipped)
            return StepResult.DONE
        try:
            study = self._study(job)
            if study is None:
                reason = self.report.skipped[job.entry.openml_id]
                self.report.outcomes[label] = PairOutcome("skipped", reason=reason)
                return StepResult.DONE
            result = study.step()
        except Exception as error:  # the pair's failure is its result
            logger.exception("Study %s failed", label)
            self.report.failed[label] = f"{type(error).__name__}: {error}"
            return StepResult.DONE
        if result is StepResult.DONE and study.outcome is not None:
            self.report.outcomes[label] = study.outcome
        return result

    def _study(self, job: PairJob) -> StudyRunner | None:
        study = self._studies.get(job)
        if study is not None:
            return study
        logger.info("[%d/%d] %s", job.index, job.total, job)
        prepared = self._prepare(job)
        if prepared is None:
            return None
        spec = PairSpec(
            suite=self.plan.suite.name,
            encoder=get_encoder(job.encoder),
            tags={"code_version": code_version(), "device": str(self.device)},
            **prepared,
        )
        study = StudyRunner(
            spec,
            self.plan.preset,
            self.tracker,
            self.storage,
            self.plan.experiment_id,
            worker=self.identity,
            leases=self.plan.leases,
            sampler_offset=SAMPLER_STRIDE * self.slot.index,
        )
        self._studies[job] = study
        return study

    def _prepare(self, job: PairJob) -> dict[str, Any] | None:
        openml_id = job.entry.openml_id
        if openml_id in self._prepared:
            self._prepared.move_to_end(openml_id)
            return self._prepared[openml_id]
        try:
            prepared = _prepare(
                job.entry, self.plan.preset, self.plan.sources, self.device
            )
        except (DatasetError, SplitError) as error:
            logger.error("Skipping dataset %d: %s", openml_id, error)
            self.report.skipped[openml_id] = str(error)
            self.tracker.record_skipped(
                self.plan.experiment_id, openml_id, job.entry.name, str(error)
            )
            return None
        self.tracker.clear_skipped(self.plan.experiment_id, openml_id)
        self._prepared[openml_id] = prepared
        while len(self._prepared) > PREPARED_CACHE:
            self._prepared.popitem(last=False)
        return prepared
