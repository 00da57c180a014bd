"""Claims that let several workers share one Optuna study without repeating work.

Workers, on one machine or many, share an Optuna storage. A worker owns a unit
of work (a tuning trial, a final seed) while a RUNNING Optuna trial of its
own stands for it. Every storage (SQLite, PostgreSQL, journal file) numbers
the trials of a study in creation order under a lock, so when two workers
claim the same unit at the same moment, the claim with the lower trial number
wins.

A claim records its owner (`WorkerIdentity`) and a heartbeat time that the
owner refreshes while it works. Any worker ends a RUNNING claim when
- its owner ran on the same machine and that process is gone,
- its owner was an earlier run of the same Slurm array task on another
  machine (the Slurm runner starts one worker per task, and Slurm runs one
  instance of a task at a time, so a requeued task finds its own leftovers), or
- its heartbeat is older than the grace period (the owner died elsewhere).
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

logger = logging.getLogger(__name__)

# Set by the Slurm runner in each array task: the task's ``ARRAYJOB_TASK`` id.
SLURM_TASK_ENV = "BENCH_SLURM_TASK"
OWNER_ATTR = "worker"
HEARTBEAT_ATTR = "heartbeat"
RETRY_ATTR = "retry_history"
END_REASON_ATTR = "ended_because"
MAX_RETRIES = 2


@dataclass(frozen=True)
class LeaseSettings:
    """How often owners refresh their claims and when others may end them.

    Attributes:
        heartbeat_interval: Seconds between two heartbeats of a claim.
        grace_period: Seconds without a heartbeat after which a claim is
            stale and any worker may end it. Worker clocks must agree to well
            within this margin.
    """

    heartbeat_interval: float = 30.0
    grace_period: float = 120.0

    def __post_init__(self) -> None:
        if self.heartbeat_interval <= 0:
            raise ValueError(
                f"heartbeat interval {self.heartbeat_interval} s must be positive."
            )
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError(
                f"grace period {self.grace_period} s must be longer than the "
                f"heartbeat interval {self.heartbeat_interval} s."
            )


@dataclass(frozen=True)
class WorkerIdentity:
    """The process that owns claims, as recorded in each claim.

    Attributes:
        host: Host name.
        machine: Boot id and PID namespace, which tell apart two containers or
            two boots of hosts with the same name; empty where unknown.
        pid: Process id.
        slurm_task: ``ARRAYJOB_TASK`` id of the Slurm runner's array task that
            runs this worker, which stays the same when Slurm requeues the
            task; None outside such a task.
    """

    host: str
    machine: str
    pid: int
    slurm_task: str | None = None

    @classmethod
    def current(cls) -> WorkerIdentity:
        """Describe the calling process."""
        return cls(
            host=socket.gethostname(),
            machine=_machine_id(),
            pid=os.getpid(),
            slurm_task=os.environ.get(SLURM_TASK_ENV) or None,
        )

    @property
    def label(self) -> str:
        """Short name for logs."""
        if self.slurm_task:
            return f"slurm task {self.slurm_task} ({self.host} pid {self.pid})"
        return f"{self.host} pid {self.pid}"

    def record(self) -> dict[str, Any]:
        """Return the JSON-ready form stored in a claim."""
        return {
            "host": self.host,
            "machine": self.machine,
            "pid": self.pid,
            "slurm_task": self.slurm_task,
        }

    def shares_machine(self, owner: dict[str, Any]) -> bool:
        """Return whether ``owner`` ran in this machine's process table."""
        return bool(self.machine) and (
            owner.get("host") == self.host and owner.get("machine") == self.machine
        )


def slurm_task_id() -> str | None:
    """Return ``ARRAYJOB_TASK`` or the job id inside a Slurm job, else None."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def _machine_id() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def _process_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A killed child that its parent has not reaped yet is a zombie.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class ClaimStatus(enum.Enum):
    """Whether a RUNNING claim's owner is still working on it."""

    LIVE = "live"
    ORPHANED = "orphaned"
    STALE = "stale"


def claim_status(
    trial: FrozenTrial,
    me: WorkerIdentity,
    settings: LeaseSettings,
    now: float | None = None,
) -> ClaimStatus:
    """Classify a RUNNING trial owned by another process (or an earlier me).

    The calling worker must have no claim of its own in this study while it
    calls this, because a claim that names the caller's own process or Slurm
    task counts as orphaned.
    """
    owner = trial.user_attrs.get(OWNER_ATTR)
    if isinstance(owner, dict):
        if me.shares_machine(owner):
            pid = owner.get("pid")
            if pid == me.pid or not _process_alive(pid):
                return ClaimStatus.ORPHANED
        elif me.slurm_task and owner.get("slurm_task") == me.slurm_task:
            return ClaimStatus.ORPHANED
    last = float(trial.user_attrs.get(HEARTBEAT_ATTR, 0.0))
    if trial.datetime_start is not None:
        last = max(last, trial.datetime_start.timestamp())
    # A live worker names itself within milliseconds of starting a trial, so a
    # trial without an owner is given less time than a heartbeat gap.
    grace = settings.grace_period
    if not isinstance(owner, dict):
        grace = min(grace, 2 * settings.heartbeat_interval)
    now = time.time() if now is None else now
    if now - last > grace:
        return ClaimStatus.STALE
    return ClaimStatus.LIVE


def owner_attrs(me: WorkerIdentity) -> dict[str, Any]:
    """Return the user attributes that mark a new claim as owned by ``me``."""
    return {OWNER_ATTR: me.record(), HEARTBEAT_ATTR: time.time()}


class Heartbeat:
    """Refreshes a claim's heartbeat time from a background thread.

    Args:
        beat: Stores the given time (seconds since the epoch) on the claim.
        interval: Seconds between two calls of ``beat``.
        label: Names the claim in log messages.

    Attributes:
        lost: True once the storage rejected a heartbeat because another
            worker ended the claim.
    """

    def __init__(
        self, beat: Callable[[float], None], interval: float, label: str
    ) -> None:
        self._beat = beat
        self._interval = interval
        self._label = label
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat {label}", daemon=True
        )
        self.lost = False

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        failures = 0
        while not self._stop.wait(self._interval):
            try:
                self._beat(time.time())
                failures = 0
            except UpdateFinishedTrialError:
                logger.warning(
                    "%s was ended by another worker (its heartbeats were late)",
                    self._label,
                )
                self.lost = True
                return
            except Exception as error:  # keep beating through storage hiccups
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    logger.warning(
                        "Heartbeat of %s failed (%d in a row): %s",
                        self._label,
                        failures,
                        error,
                    )


def trial_id(storage: optuna.storages.BaseStorage, study_name: str, number: int) -> int:
    """Return the storage id of trial ``number`` of the study ``study_name``."""
    study_id = storage.get_study_id_from_name(study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


def end_claim(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    trial: FrozenTrial,
    reason: str,
) -> bool:
    """Mark a RUNNING claim FAIL with ``reason``; return False if it had ended."""
    identifier = trial_id(storage, study_name, trial.number)
    try:
        storage.set_trial_user_attr(identifier, END_REASON_ATTR, reason)
        return bool(storage.set_trial_state_values(identifier, TrialState.FAIL))
    except UpdateFinishedTrialError:
        return False


def end_dead_trials(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    me: WorkerIdentity,
    settings: LeaseSettings,
) -> list[int]:
    """Fail the study's RUNNING trials whose owner is gone, and queue retries.

    Each failed trial is queued again with the parameters it had drawn, up to
    `MAX_RETRIES` times per original trial. Optuna's heartbeat does the same
    for RDB storages, but the journal storage has no heartbeat of its own.

    Returns:
        The numbers of the trials this call failed.
    """
    ended = []
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in running:
        status = claim_status(trial, me, settings)
        if status is ClaimStatus.LIVE:
            continue
        reason = f"{status.value} claim ended by {me.label}"
        if end_claim(storage, study.study_name, trial, reason):
            logger.warning(
                "%s: trial %d was left running by %s (%s); marked failed",
                study.study_name,
                trial.number,
                _owner_label(trial),
                status.value,
            )
            ended.append(trial.number)
            retry_trial(study, trial)
    return ended


def retry_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial's parameters again, without its owner attributes.

    Usable as an RDB storage's heartbeat callback. Optuna's own retry callback
    copies every user attribute, including the dead owner's, which would make
    the retried trial look orphaned before its new owner stamps it.
    """
    history = [*trial.user_attrs.get(RETRY_ATTR, []), trial.number]
    if len(history) > MAX_RETRIES:
        logger.warning(
            "%s: trial %d failed %d times; not retried again",
            study.study_name,
            history[0],
            len(history),
        )
        return
    study.enqueue_trial(dict(trial.params), user_attrs={RETRY_ATTR: history})


def within_budget(trials: Iterable[FrozenTrial], number: int, budget: int) -> bool:
    """Return whether trial ``number`` is among the first ``budget`` live trials.

    A trial counts if it is done, running or waiting. Trials are numbered in
    creation order, and a waiting trial is always run before a new one is
    created, so every worker reaches the same verdict for the same trial.
    """
    live = (
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.RUNNING,
        TrialState.WAITING,
    )
    earlier = sum(1 for t in trials if t.number < number and t.state in live)
    return earlier < budget


class Ledger:
    """Records and claims of one study, kept as trials of a study of their own.

    An entry is a trial created with its key (and owner or value) in one
    storage write, so it is complete the moment it gets its number.
    - A record (COMPLETE) fixes a value once: the lowest-numbered record of a
      key wins, so workers that record at the same moment agree.
    - A claim (RUNNING) reserves a unit of work. It is valid while no live
      claim with a lower number has the same key.

    Args:
        storage: The shared Optuna storage.
        name: Study name of the ledger.
        me: The calling worker.
        settings: Heartbeat timing.
    """

    def __init__(
        self,
        storage: optuna.storages.BaseStorage,
        name: str,
        me: WorkerIdentity,
        settings: LeaseSettings,
    ) -> None:
        self.storage = storage
        self.name = name
        self.me = me
        self.settings = settings
        self.study_id = _get_or_create_study(storage, name)

    def entries(self, key: dict[str, Any]) -> list[FrozenTrial]:
        """Return the ledger's entries for ``key``, in number order."""
        trials = self.storage.get_all_trials(self.study_id, deepcopy=False)
        return sorted(
            (t for t in trials if t.user_attrs.get("key") == key),
            key=lambda t: t.number,
        )

    def recorded(self, key: dict[str, Any]) -> Any:
        """Return the winning value recorded for ``key``, or None."""
        for trial in self.entries(key):
            if trial.state == TrialState.COMPLETE:
                return trial.user_attrs.get("value")
        return None

    def record(self, key: dict[str, Any], value: Any) -> Any:
        """Record ``value`` for ``key`` and return the winning value.

        The winner is the value of the lowest-numbered record, which may be
        another worker's.
        """
        template = optuna.trial.create_trial(
            state=TrialState.COMPLETE,
            value=0.0,
            user_attrs={"key": key, "value": value, OWNER_ATTR: self.me.record()},
        )
        self.storage.create_new_trial(self.study_id, template)
        return self.recorded(key)

    def held_by_other(self, key: dict[str, Any]) -> bool:
        """Return whether a live claim for ``key`` exists, ending dead ones."""
        for trial in self.entries(key):
            if trial.state == TrialState.RUNNING and self.live(trial):
                return True
        return False

    def claim(self, key: dict[str, Any]) -> Claim | None:
        """Claim ``key``; return the claim, or None if another worker has it."""
        if self.held_by_other(key):
            return None
        template = optuna.trial.create_trial(
            state=TrialState.RUNNING,
            user_attrs={"key": key, **owner_attrs(self.me)},
        )
        identifier = self.storage.create_new_trial(self.study_id, template)
        number = self.storage.get_trial(identifier).number
        for trial in self.entries(key):
            if trial.number >= number:
                break
            if trial.state == TrialState.RUNNING and self.live(trial):
                self.storage.set_trial_user_attr(
                    identifier, END_REASON_ATTR, f"claim {trial.number} came first"
                )
                self.storage.set_trial_state_values(identifier, TrialState.FAIL)
                return None
        return Claim(self, identifier, number, key)

    def claim_state(self, number: int) -> TrialState | None:
        """Return the state of claim ``number``; RUNNING only if it is live."""
        try:
            identifier = self.storage.get_trial_id_from_study_id_trial_number(
                self.study_id, number
            )
        except KeyError:
            return None
        trial = self.storage.get_trial(identifier)
        if trial.state == TrialState.RUNNING and not self.live(trial):
            return TrialState.FAIL
        return trial.state

    def live(self, trial: FrozenTrial) -> bool:
        """Return whether a RUNNING claim is live, and end it (FAIL) if not."""
        status = claim_status(trial, self.me, self.settings)
        if status is ClaimStatus.LIVE:
            return True
        reason = f"{status.value} claim ended by {self.me.label}"
        identifier = self.storage.get_trial_id_from_study_id_trial_number(
            self.study_id, trial.number
        )
        try:
            self.storage.set_trial_user_attr(identifier, END_REASON_ATTR, reason)
            self.storage.set_trial_state_values(identifier, TrialState.FAIL)
            logger.warning(
                "%s: claim %s was left running by %s (%s); released",
                self.name,
                trial.user_attrs.get("key"),
                _owner_label(trial),
                status.value,
            )
        except UpdateFinishedTrialError:
            pass
        return False


class Claim:
    """A held claim; release it with `finish` or `abandon`."""

    def __init__(
        self, ledger: Ledger, identifier: int, number: int, key: dict[str, Any]
    ) -> None:
        self.ledger = ledger
        self.identifier = identifier
        self.number = number
        self.key = key

    def heartbeat(self) -> Heartbeat:
        """Return a heartbeat context that keeps this claim live."""
        storage = self.ledger.storage

        def beat(now: float) -> None:
            storage.set_trial_user_attr(self.identifier, HEARTBEAT_ATTR, now)

        return Heartbeat(
            beat,
            self.ledger.settings.heartbeat_interval,
            f"claim {self.number} {self.key}",
        )

    def held(self) -> bool:
        """Return whether the claim is still RUNNING, that is, no one ended it."""
        trial = self.ledger.storage.get_trial(self.identifier)
        return trial.state == TrialState.RUNNING

    def finish(self) -> None:
        """Mark the claim COMPLETE once its work is stored."""
        try:
            self.ledger.storage.set_trial_state_values(
                self.identifier, TrialState.COMPLETE, [0.0]
            )
        except UpdateFinishedTrialError:
            logger.warning(
                "%s: claim %d %s had been ended by another worker",
                self.ledger.name,
                self.number,
                self.key,
            )

    def abandon(self, reason: str) -> None:
        """Mark the claim FAIL, so another worker may take the work at once."""
        try:
            self.ledger.storage.set_trial_user_attr(
                self.identifier, END_REASON_ATTR, reason[:500]
            )
            self.ledger.storage.set_trial_state_values(self.identifier, TrialState.FAIL)
        except UpdateFinishedTrialError:
            pass


def _get_or_create_study(storage: optuna.storages.BaseStorage, name: str) -> int:
    try:
        return storage.get_study_id_from_name(name)
    except KeyError:
        pass
    try:
        return storage.create_new_study(
            [optuna.study.StudyDirection.MINIMIZE], study_name=name
        )
    except optuna.exceptions.DuplicatedStudyError:
        return storage.get_study_id_from_name(name)


def _owner_label(trial: FrozenTrial) -> str:
    owner = trial.user_attrs.get(OWNER_ATTR)
    if not isinstance(owner, dict):
        return "an unknown worker"
    if owner.get("slurm_task"):
        return f"slurm task {owner['slurm_task']}"
    return f"{owner.get('host')} pid {owner.get('pid')}"
