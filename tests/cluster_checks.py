"""Checks shared by the runner and cluster tests: all work done, none twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from bench.storage import open_storage
from bench.study import LEDGER_SUFFIX

DONE = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class RunCounts:
    """What a finished run left in Optuna and MLflow."""

    studies: int
    done_trials: int
    workers: set[str]


def tuning_studies(storage: str | optuna.storages.BaseStorage) -> list[optuna.Study]:
    """Return the run's tuning studies, leaving out the claim ledgers."""
    if isinstance(storage, str):
        storage = open_storage(storage)
    return [
        optuna.load_study(study_name=s.study_name, storage=storage)
        for s in optuna.get_all_study_summaries(storage)
        if not s.study_name.endswith(LEDGER_SUFFIX)
    ]


def check_exactly_once(
    storage: str | optuna.storages.BaseStorage,
    tracking_uri: str,
    experiment: str,
    studies: int,
    trials: int,
    seeds: int,
) -> RunCounts:
    """Assert that every trial and final seed is stored exactly once.

    Returns:
        Counts, and the workers (``host pid`` or Slurm task) that ran trials.
    """
    found = tuning_studies(storage)
    assert len(found) == studies
    done_by_key: dict[str, set[int]] = {}
    workers: set[str] = set()
    for study in found:
        done = [t for t in study.trials if t.state in DONE]
        assert len(done) == trials, study.study_name
        assert not [t for t in study.trials if t.state == TrialState.RUNNING]
        done_by_key[study.study_name] = {t.number for t in done}
        for trial in done:
            owner = trial.user_attrs["worker"]
            workers.add(owner["slurm_task"] or f"{owner['host']} {owner['pid']}")

    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id], max_results=50000)
    parents = [r for r in runs if r.data.tags.get("phase") == "study"]
    assert len(parents) == studies
    assert not [r for r in runs if r.info.status == "RUNNING"]

    trial_runs = Counter(
        (r.data.tags["study_key"], int(r.data.tags["trial_number"]))
        for r in runs
        if r.data.tags.get("phase") == "trial" and r.info.status == "FINISHED"
    )
    expected = Counter(
        (key, number) for key, numbers in done_by_key.items() for number in numbers
    )
    assert trial_runs == expected

    for parent in parents:
        assert parent.data.tags["status"] == "complete"
        best = parent.data.tags["best_params_hash"]
        finals = Counter(
            r.data.tags["seed"]
            for r in runs
            if r.data.tags.get("phase") == "final"
            and r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
            and r.info.status == "FINISHED"
            and r.data.tags["params_hash"] == best
        )
        assert finals == {str(s): 1 for s in range(seeds)}
    return RunCounts(len(found), sum(len(v) for v in done_by_key.values()), workers)
