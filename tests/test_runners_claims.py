"""Claims between workers: budgets, dead owners, ledgers, on real storages."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.claims import (
    HEARTBEAT_ATTR,
    OWNER_ATTR,
    ClaimStatus,
    LeaseSettings,
    Ledger,
    WorkerIdentity,
    claim_status,
    end_dead_trials,
    within_budget,
)
from bench.storage import check_storage_url, default_storage_url, open_storage
from bench.study import SurplusTrialError

SETTINGS = LeaseSettings(heartbeat_interval=1.0, grace_period=5.0)


@pytest.fixture(params=["sqlite", "journal"])
def storage(request, tmp_path: Path) -> optuna.storages.BaseStorage:
    if request.param == "sqlite":
        return open_storage(f"sqlite:///{tmp_path / 'optuna.db'}", SETTINGS)
    return open_storage(f"journal:{tmp_path / 'optuna.journal'}", SETTINGS)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def running_trial(study: optuna.Study, owner: dict | None, heartbeat: float) -> int:
    attrs = {HEARTBEAT_ATTR: heartbeat}
    if owner is not None:
        attrs[OWNER_ATTR] = owner
    study.add_trial(
        optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs=attrs)
    )
    return study.trials[-1].number


def test_budget_counts_earlier_live_trials(storage):
    study = optuna.create_study(storage=storage, study_name="budget")
    for state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED):
        study.add_trial(
            optuna.trial.create_trial(
                state=state, value=1.0 if state == TrialState.COMPLETE else None
            )
        )
    running_trial(study, None, time.time())
    study.enqueue_trial({})
    trials = study.get_trials(deepcopy=False)

    # Trials 0 (complete), 2 (pruned), 3 (running), 4 (waiting) are live.
    assert within_budget(trials, 3, budget=3)
    assert not within_budget(trials, 4, budget=3)
    assert within_budget(trials, 4, budget=4)
    assert not within_budget(trials, 5, budget=4)


def test_claim_of_dead_local_process_is_orphaned():
    me = WorkerIdentity.current()
    trial = optuna.trial.create_trial(
        state=TrialState.RUNNING,
        user_attrs={
            OWNER_ATTR: {**me.record(), "pid": dead_pid()},
            HEARTBEAT_ATTR: time.time(),
        },
    )
    assert claim_status(trial, me, SETTINGS) is ClaimStatus.ORPHANED


def test_claim_of_live_process_is_live():
    me = WorkerIdentity.current()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        trial = optuna.trial.create_trial(
            state=TrialState.RUNNING,
            user_attrs={
                OWNER_ATTR: {**me.record(), "pid": sleeper.pid},
                HEARTBEAT_ATTR: time.time(),
            },
        )
        assert claim_status(trial, me, SETTINGS) is ClaimStatus.LIVE
    finally:
        sleeper.kill()
        sleeper.wait()


def test_claim_from_other_host_goes_stale():
    me = WorkerIdentity.current()
    other = {"host": "elsewhere", "machine": "x", "pid": 1, "slurm_task": None}
    fresh = optuna.trial.create_trial(
        state=TrialState.RUNNING,
        user_attrs={OWNER_ATTR: other, HEARTBEAT_ATTR: time.time()},
    )
    old = optuna.trial.create_trial(
        state=TrialState.RUNNING,
        user_attrs={OWNER_ATTR: other, HEARTBEAT_ATTR: time.time() - 60},
    )
    old.datetime_start = fresh.datetime_start.replace(year=2000)

    assert claim_status(fresh, me, SETTINGS) is ClaimStatus.LIVE
    assert claim_status(old, me, SETTINGS) is ClaimStatus.STALE


def test_trial_without_owner_goes_stale_sooner():
    me = WorkerIdentity.current()
    trial = optuna.trial.create_trial(state=TrialState.RUNNING)
    started = trial.datetime_start.timestamp()

    # Two heartbeat intervals (2 s here), not the 5 s grace period.
    assert claim_status(trial, me, SETTINGS, now=started + 1) is ClaimStatus.LIVE
    assert claim_status(trial, me, SETTINGS, now=started + 3) is ClaimStatus.STALE


def test_requeued_slurm_task_owns_its_leftovers(monkeypatch):
    monkeypatch.setenv("BENCH_SLURM_TASK", "77_1")
    me = WorkerIdentity.current()
    earlier_run = {
        "host": "node-a",
        "machine": "y",
        "pid": 4242,
        "slurm_task": "77_1",
    }
    other_task = {**earlier_run, "slurm_task": "77_0"}

    def status(owner: dict) -> ClaimStatus:
        trial = optuna.trial.create_trial(
            state=TrialState.RUNNING,
            user_attrs={OWNER_ATTR: owner, HEARTBEAT_ATTR: time.time()},
        )
        return claim_status(trial, me, SETTINGS)

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # Local workers inside one Slurm job share the job's ids but are alive.
        neighbour = {**me.record(), "pid": sleeper.pid}
        assert status(neighbour) is ClaimStatus.LIVE
    finally:
        sleeper.kill()
        sleeper.wait()
    assert me.slurm_task == "77_1"
    assert status(earlier_run) is ClaimStatus.ORPHANED
    assert status(other_task) is ClaimStatus.LIVE


def test_dead_trial_is_failed_and_retried(storage):
    study = optuna.create_study(storage=storage, study_name="dead")
    me = WorkerIdentity.current()
    study.enqueue_trial({"x": 0.5})
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr(OWNER_ATTR, {**me.record(), "pid": dead_pid()})
    trial.set_user_attr(HEARTBEAT_ATTR, time.time())
    # A claim naming the calling process is a leftover too, because a worker
    # looks for dead trials only between two trials of its own.
    mine = running_trial(study, me.record(), time.time())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = running_trial(study, {**me.record(), "pid": sleeper.pid}, time.time())
        ended = end_dead_trials(study, storage, me, SETTINGS)
    finally:
        sleeper.kill()
        sleeper.wait()

    trials = study.get_trials(deepcopy=False)
    assert ended == [trial.number, mine]
    assert trials[trial.number].state == TrialState.FAIL
    assert trials[mine].state == TrialState.FAIL
    assert trials[alive].state == TrialState.RUNNING
    retries = [t for t in trials if t.state == TrialState.WAITING]
    assert len(retries) == 2
    assert retries[0].system_attrs["fixed_params"] == {"x": 0.5}
    assert retries[0].user_attrs["retry_history"] == [trial.number]
    assert OWNER_ATTR not in retries[0].user_attrs


def test_ledger_first_claim_wins(storage):
    me = WorkerIdentity.current()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    other = WorkerIdentity(me.host, me.machine, sleeper.pid, None)
    try:
        theirs = Ledger(storage, "study.claims", other, SETTINGS)
        mine = Ledger(storage, "study.claims", me, SETTINGS)
        key = {"seed": 0, "hash": "abc"}

        held = theirs.claim(key)
        assert held is not None
        assert mine.claim(key) is None
        assert mine.claim({"seed": 1, "hash": "abc"}) is not None

        held.abandon("test")
        again = mine.claim(key)
        assert again is not None
        assert again.number > held.number
        assert again.held()
        again.finish()
        assert not again.held()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_ledger_releases_dead_claim(storage):
    me = WorkerIdentity.current()
    ghost = WorkerIdentity(me.host, me.machine, dead_pid(), None)
    key = {"seed": 0, "hash": "abc"}
    left = Ledger(storage, "study.claims", ghost, SETTINGS).claim(key)
    assert left is not None

    taken = Ledger(storage, "study.claims", me, SETTINGS).claim(key)

    assert taken is not None
    assert not left.held()


def test_ledger_record_keeps_first_value(storage):
    me = WorkerIdentity.current()
    ledger = Ledger(storage, "study.claims", me, SETTINGS)
    key = {"kind": "parent"}

    assert ledger.recorded(key) is None
    assert ledger.record(key, "run-a") == "run-a"
    assert ledger.record(key, "run-b") == "run-a"
    assert ledger.recorded(key) == "run-a"


def test_default_storage_follows_workers(tmp_path: Path):
    assert default_storage_url(tmp_path, 1) == f"sqlite:///{tmp_path / 'optuna.db'}"
    assert default_storage_url(tmp_path, 2) == f"journal:{tmp_path / 'optuna.journal'}"
    (tmp_path / "optuna.db").touch()
    assert default_storage_url(tmp_path, 4) == f"sqlite:///{tmp_path / 'optuna.db'}"


def test_storage_url_errors_name_fix(tmp_path: Path):
    with pytest.raises(ValueError, match="does not exist; create it"):
        check_storage_url(f"journal:{tmp_path / 'missing' / 'x.journal'}", 2)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValueError, match="file is a file, not a folder"):
        check_storage_url(f"journal:{tmp_path / 'file' / 'x.journal'}", 2)
    with pytest.raises(ValueError, match="postgresql://"):
        check_storage_url("optuna.db", 1)
    with pytest.raises(ValueError, match="pip install nosuchdriver"):
        check_storage_url("postgresql+nosuchdriver://u:secret@127.0.0.1/db", 1)
    try:
        check_storage_url("postgresql+nosuchdriver://u:secret@127.0.0.1/db", 1)
    except ValueError as error:
        assert "secret" not in str(error)


def test_heartbeat_keeps_trial_fresh(storage):
    from bench.claims import Heartbeat

    study = optuna.create_study(storage=storage, study_name="beat")
    trial = study.ask()
    with Heartbeat(
        lambda now: trial.set_user_attr(HEARTBEAT_ATTR, now), 0.2, "test"
    ) as beat:
        time.sleep(0.7)
    stored = study.get_trials(deepcopy=False)[trial.number].user_attrs
    assert time.time() - stored[HEARTBEAT_ATTR] < 1.0
    assert not beat.lost


def test_process_alive_sees_zombie_as_dead():
    from bench.claims import _process_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not _process_alive(child.pid)
    assert _process_alive(os.getpid())
    child.wait()


def test_surplus_trial_logs_no_traceback():

    def objective(trial: optuna.Trial) -> float:
        raise SurplusTrialError("trial 3 is beyond the budget")

    # Optuna's loggers do not propagate to the root logger, so caplog misses them.
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    logging.getLogger("optuna").addHandler(handler)
    try:
        study = optuna.create_study()
        study.optimize(objective, n_trials=1, catch=(Exception,))
    finally:
        logging.getLogger("optuna").removeHandler(handler)

    assert study.trials[0].state == TrialState.FAIL
    assert "Trial 0 failed" in output.getvalue()
    assert "SurplusTrialError" not in output.getvalue()
    assert "Traceback" not in output.getvalue()
