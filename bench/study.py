"""One (dataset, encoder) study: tune with Optuna, then train final seeds.

Everything a study computes is stored as it goes: Optuna trials in the study
storage, trial and seed runs in MLflow. Running the same study again continues
where it stopped: finished trials count against the trial budget, and a final
seed is trained only if no finished run with the same configuration exists.

Several workers may run the same study at once. A trial beyond the budget is
dropped before it trains, and the parent run and each final seed are claimed
through a ledger study in the same storage (see `bench.claims`).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
import numpy as np
import optuna
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from bench.attention import bin_weight_profile
from bench.claims import (
    HEARTBEAT_ATTR,
    RETRY_ATTR,
    Claim,
    Heartbeat,
    LeaseSettings,
    Ledger,
    WorkerIdentity,
    end_dead_trials,
    owner_attrs,
    retry_trial,
    within_budget,
)
from bench.config import Preset
from bench.tracking import Tracker, fingerprint
from bench.training import (
    ENCODER_PREFIX,
    MONITOR,
    DeviceData,
    count_parameters,
    predict,
    regression_metrics,
    train_model,
)
from bench.vectorized import SeedRun, resolve_vectorized, train_seeds
from encoders import Encoder

logger = logging.getLogger(__name__)

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
LEDGER_SUFFIX = ".claims"
# Seconds `StudyRunner.run` waits before looking again at work other workers hold.
POLL_INTERVAL_S = 2.0


class StepResult(enum.Enum):
    """Outcome of one `StudyRunner.step`."""

    WORKED = "worked"  # ran one trial or one final seed
    BUSY = "busy"  # the remaining work is held by other workers
    DONE = "done"  # the study is over; see `StudyRunner.outcome`


class SurplusTrialError(Exception):
    """A trial started beyond the budget while other workers filled it."""


class _DropSurplusWarnings(logging.Filter):
    """Drops Optuna's warning, with traceback, for a trial ended as surplus.

    `StudyRunner._log_trial` reports such a trial in one line instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return SurplusTrialError.__name__ not in record.getMessage()


# NOTE: Optuna 5.1 logs failed trials from this module; under another name
# the filter does nothing and the warning shows again.
logging.getLogger("optuna.study._optimize").addFilter(_DropSurplusWarnings())


class _DropInterruptWarnings(logging.Filter):
    """Drops Optuna's two warnings for a trial that a ``KeyboardInterrupt`` ended.

    The first carries the interrupt's traceback and the second names the
    trial's value. ``bench run`` reports the interruption in one line instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            # The message starts with "Trial N failed with parameters".
            self._pending = record.getMessage().split(" failed", 1)[0]
            return False
        if self._pending and record.getMessage().startswith(
            f"{self._pending} failed with value"
        ):
            self._pending = ""
            return False
        return True


logging.getLogger("optuna.study._optimize").addFilter(_DropInterruptWarnings())


class ClaimLostError(Exception):
    """Another worker took over a claim whose heartbeats arrived too late."""


@dataclass(frozen=True)
class Resample:
    """Another random split of a pair's dataset, for final seeds only.

    Attributes:
        data: The split's preprocessed parts (fitted on its training rows).
        test_target: Test target in the original units.
        split_hash: Hash of the split's row indices.
        split_seed: Seed of the split.
    """

    data: DeviceData
    test_target: np.ndarray
    split_hash: str
    split_seed: int


@dataclass
class PairSpec:
    """Identity of one study and the data it trains on.

    ``data``, ``test_target`` and ``split_hash`` are those of resample 0,
    on which tuning runs. ``resamples`` contains resamples 1 and later: final
    seed ``s`` trains and tests on resample ``s % (len(resamples) + 1)``.
    """

    suite: str
    openml_id: int
    dataset: str
    encoder: type[Encoder]
    data: DeviceData
    test_target: np.ndarray
    split_hash: str
    tags: dict[str, str] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    resamples: list[Resample] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.dataset} ({self.openml_id}) x {self.encoder.name}"

    def for_seed(self, seed: int) -> tuple[int, DeviceData, np.ndarray, str]:
        """Return the resample index, data, test target and split hash of
        final seed ``seed``."""
        index = seed % (len(self.resamples) + 1)
        if index == 0:
            return 0, self.data, self.test_target, self.split_hash
        chosen = self.resamples[index - 1]
        return index, chosen.data, chosen.test_target, chosen.split_hash


@dataclass
class PairOutcome:
    """Final status of one study, with its summary metrics or the reason."""

    status: str
    summary: dict[str, float] = field(default_factory=dict)
    reason: str = ""


class TrialPruning(pl.Callback):
    """Report the validation RMSE to Optuna after every validation.

    Raises `optuna.TrialPruned` when the study's pruner decides to stop the trial.
    """

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.curve: list[float] = []

    def on_validation_end(
        self, trainer: pl.Trainer, module: pl.LightningModule
    ) -> None:
        value = float(trainer.callback_metrics[MONITOR])
        self.curve.append(value)
        self.trial.report(value, step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {trainer.current_epoch}")


def search_space(preset: Preset, encoder: type[Encoder]) -> dict[str, BaseDistribution]:
    """Return the flat search space: the backbone's and the prefixed encoder's.

    A preset may override any encoder distribution in ``[encoders.NAME.space]``.
    """
    encoder_space = {
        **encoder.search_space(),
        **preset.encoder_spaces.get(encoder.name, {}),
    }
    return {
        **preset.backbone_space,
        **{ENCODER_PREFIX + k: v for k, v in encoder_space.items()},
    }


def suggest(trial: optuna.Trial, space: dict[str, BaseDistribution]) -> dict[str, Any]:
    """Draw one value per distribution through the trial's public suggest API."""
    params: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, IntDistribution):
            params[name] = trial.suggest_int(
                name, dist.low, dist.high, step=dist.step, log=dist.log
            )
        elif isinstance(dist, FloatDistribution):
            params[name] = trial.suggest_float(
                name, dist.low, dist.high, step=dist.step, log=dist.log
            )
        elif isinstance(dist, CategoricalDistribution):
            params[name] = trial.suggest_categorical(name, dist.choices)
        else:
            raise TypeError(f"Unsupported distribution for {name!r}: {dist!r}")
    return params


class StudyRunner:
    """Runs one pair's study and final seeds against shared storage.

    Args:
        spec: The pair and its data.
        preset: The protocol.
        tracker: MLflow access.
        storage: The Optuna storage shared by all workers.
        experiment_id: MLflow experiment of the suite.
        worker: The calling process, recorded in its claims.
        leases: Heartbeat timing of claims.
        sampler_offset: Added to the sampler seed, so workers that open the
            study at the same moment draw different configurations.
    """

    def __init__(
        self,
        spec: PairSpec,
        preset: Preset,
        tracker: Tracker,
        storage: Any,
        experiment_id: str,
        *,
        worker: WorkerIdentity | None = None,
        leases: LeaseSettings | None = None,
        sampler_offset: int = 0,
    ) -> None:
        self.spec = spec
        self.preset = preset
        self.tracker = tracker
        self.storage = storage
        self.experiment_id = experiment_id
        self.worker = worker or WorkerIdentity.current()
        self.leases = leases or LeaseSettings()
        self.sampler_offset = sampler_offset
        self.outcome: PairOutcome | None = None
        self.space = search_space(preset, spec.encoder)
        self.study_key = self._study_key(
            {
                "openml_id": spec.openml_id,
                "encoder": spec.encoder.name,
                "split_hash": spec.split_hash,
                "preset": preset.study_fingerprint(),
                "space": {k: repr(v) for k, v in self.space.items()},
                "record": spec.record.get("target"),
                # Only present when set, so that study keys made before the
                # field existed stay the same.
                **(
                    {"target_transform": spec.record["target_transform"]}
                    if spec.record.get("target_transform")
                    else {}
                ),
            }
        )

        self._parent_run: Run | None = None
        self._optuna_study: optuna.Study | None = None
        self._ledger_cache: Ledger | None = None
        self._attempts = 0
        self._tuning_logged = False
        self._best_logged = ""

    def _study_key(self, fields: dict[str, Any]) -> str:
        """Return the key of the study: a hash of ``fields`` and the experiment.

        The experiment is part of the key, so a suite under another name (a
        copied suite file) tunes and trains its own studies instead of finding
        those of the first suite complete. Studies keyed from ``fields`` alone,
        before the experiment was part of the key, keep that key while their
        parent run is in this experiment, so that their runs resume.
        """
        key = fingerprint({**fields, "experiment_id": self.experiment_id})
        older = fingerprint(fields)
        if self._parent_experiment(older) == self.experiment_id:
            return older
        return key

    def _parent_experiment(self, study_key: str) -> str | None:
        """Return the experiment of the parent run recorded for ``study_key``.

        None if the storage has no ledger for that key, or the ledger records
        no parent, or the run no longer exists. Creates nothing.
        """
        name = study_key + LEDGER_SUFFIX
        try:
            self.storage.get_study_id_from_name(name)
        except KeyError:
            return None
        ledger = Ledger(self.storage, name, self.worker, self.leases)
        run_id = ledger.recorded({"kind": "parent"})
        if run_id is None:
            return None
        try:
            return self.tracker.client.get_run(run_id).info.experiment_id
        except MlflowException:
            return None

    def run(self) -> PairOutcome:
        """Tune, train the final seeds, and summarize on the parent run.

        Waits while other workers hold the study's remaining work.
        """
        while (step := self.step()) is not StepResult.DONE:
            if step is StepResult.BUSY:
                time.sleep(POLL_INTERVAL_S)
        assert self.outcome is not None
        return self.outcome

    def step(self) -> StepResult:
        """Run one unit of work (a trial or a final seed) if one is free."""
        if self.outcome is not None:
            return StepResult.DONE
        if self._parent_run is None or self._optuna_study is None:
            parent = self._parent()
            if self._complete(parent):
                logger.info("%s: complete, skipped", self.spec.label)
                self.outcome = PairOutcome("complete", _summary_of(parent))
                return StepResult.DONE
            self._parent_run = parent
            self._optuna_study = self._study()
        study, parent = self._optuna_study, self._parent_run

        tuning = self._tune_step(study, parent)
        if tuning is not None:
            return tuning
        if not any(t.state == TrialState.COMPLETE for t in study.trials):
            reason = "no trial completed; see the failed trial runs for errors"
            self.tracker.client.set_tag(parent.info.run_id, "status", "failed")
            self.tracker.client.set_tag(parent.info.run_id, "status_reason", reason)
            logger.error("%s: %s", self.spec.label, reason)
            self.outcome = PairOutcome("failed", reason=reason)
            return StepResult.DONE
        return self._finals_step(study, parent)

    def _ledger(self) -> Ledger:
        if self._ledger_cache is None:
            self._ledger_cache = Ledger(
                self.storage, self.study_key + LEDGER_SUFFIX, self.worker, self.leases
            )
        return self._ledger_cache

    def _parent(self) -> Run:
        """Return the study's parent run, which every worker must share.

        Workers that start the study at the same moment may each create a
        parent; the ledger's first record decides, and losers delete theirs.
        """
        ledger = self._ledger()
        key = {"kind": "parent"}
        chosen = ledger.recorded(key)
        if chosen is None:
            found = self.tracker.find_runs(
                self.experiment_id,
                f"tags.phase = 'study' and tags.study_key = '{self.study_key}'",
            )
            if found:
                candidate = min(found, key=lambda r: r.info.start_time).info.run_id
            else:
                candidate = self._create_parent()
            chosen = ledger.record(key, candidate)
            if not found and chosen != candidate:
                self.tracker.client.delete_run(candidate)
        parent = self.tracker.client.get_run(chosen)
        if not parent.data.params:
            try:
                self.tracker.log_params(parent.info.run_id, self._parent_params())
            except MlflowException as error:
                # Another worker logged the same parameters at the same moment.
                logger.debug("%s: parent parameters: %s", self.spec.label, error)
            self.tracker.log_json(parent.info.run_id, self.spec.record, "data.json")
            self.tracker.log_json(
                parent.info.run_id, self.preset.record(), "preset.json"
            )
        return parent

    def _create_parent(self) -> str:
        tags = {
            **self.spec.tags,
            "suite": self.spec.suite,
            "dataset": self.spec.dataset,
            "openml_id": str(self.spec.openml_id),
            "encoder": self.spec.encoder.name,
            "split_hash": self.spec.split_hash,
            "preset": self.preset.name,
            "preset_fingerprint": self.preset.study_fingerprint(),
            "phase": "study",
            "study_key": self.study_key,
        }
        run = self.tracker.client.create_run(
            self.experiment_id,
            run_name=f"{self.spec.dataset}/{self.spec.encoder.name}",
            tags=tags,
        )
        return run.info.run_id

    def _parent_params(self) -> dict[str, Any]:
        record = self.spec.record
        return {
            "preset": self.preset.name,
            "split_method": self.preset.split_method,
            "n_resamples": len(self.spec.resamples) + 1,
            "target_transform": record.get("target_transform") or "none",
            "quantile_noise": self.preset.quantile_noise,
            "split_seed": self.preset.split_seed,
            "split_sizes": record.get("split_sizes"),
            "numeric_transform": self.preset.numeric_transform,
            "max_epochs": self.preset.max_epochs,
            "patience": self.preset.patience,
            "batch_size": self.preset.batch_size,
            "dropped_constant_columns": record.get("dropped_constant", []),
            "test_rows_in_train": record.get("test_rows_in_train", 0),
            "duplicates_dropped": record.get("duplicates_dropped", 0),
            "search_space": {k: repr(v) for k, v in self.space.items()},
        }

    def _complete(self, parent: Run) -> bool:
        tags = parent.data.tags
        return (
            tags.get("status") == "complete"
            and int(tags.get("n_trials", 0)) >= self.preset.n_trials
            and int(tags.get("n_seeds", 0)) >= self.preset.n_seeds
        )

    def _study(self) -> optuna.Study:
        study = optuna.create_study(
            study_name=self.study_key,
            storage=self.storage,
            direction="minimize",
            load_if_exists=True,
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=2, n_warmup_steps=self.preset.pruner_warmup_epochs
            ),
        )
        # A new seed per resume, so a resumed study does not replay the random
        # start-up configurations it already tried, and one per worker.
        study.sampler = optuna.samplers.TPESampler(
            seed=self.preset.sampler_seed + len(study.trials) + self.sampler_offset,
            n_startup_trials=self.preset.n_startup_trials,
        )
        if study.user_attrs.get("label") != self.spec.label:
            study.set_user_attr("label", self.spec.label)
        return study

    def _tune_step(self, study: optuna.Study, parent: Run) -> StepResult | None:
        """Run one trial if the budget has room; None once tuning is over.

        A worker makes at most ``n_trials`` attempts per study, so a study
        whose trials keep failing ends instead of looping.
        """
        end_dead_trials(study, self.storage, self.worker, self.leases)
        self._reconcile_trial_runs(study)
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in DONE_STATES for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if done >= self.preset.n_trials:
            return None
        if self._attempts >= self.preset.n_trials:
            return StepResult.BUSY if running else None
        if done + running >= self.preset.n_trials:
            return StepResult.BUSY
        if not self._tuning_logged:
            logger.info(
                "%s: tuning, %d of %d trials to run",
                self.spec.label,
                self.preset.n_trials - done,
                self.preset.n_trials,
            )
            self._tuning_logged = True
        self._attempts += 1
        try:
            study.optimize(
                lambda trial: self._interruptible_objective(trial, parent),
                n_trials=1,
                catch=(Exception,),
                callbacks=[self._log_trial],
            )
        except UpdateFinishedTrialError as error:
            # Another worker ended the trial because its heartbeats were late;
            # the trial's run is ended when the runs are reconciled.
            logger.warning("%s: %s", self.spec.label, error)
        return StepResult.WORKED

    def _interruptible_objective(self, trial: optuna.Trial, parent: Run) -> float:
        """Run `_objective`; queue the trial's parameters again if interrupted.

        Optuna marks an interrupted trial FAIL. Without the retry, the resumed
        study would draw a new configuration in its place, and the results would
        depend on when the run was stopped.
        """
        try:
            return self._objective(trial, parent)
        except KeyboardInterrupt:
            if trial.params:
                retry_trial(trial.study, trial.study.trials[trial.number])
            raise

    def _objective(self, trial: optuna.Trial, parent: Run) -> float:
        # Name the owner first: until then, other workers cannot tell whether
        # the trial's process is alive.
        for key, value in owner_attrs(self.worker).items():
            trial.set_user_attr(key, value)
        trials = trial.study.get_trials(deepcopy=False)
        if not within_budget(trials, trial.number, self.preset.n_trials):
            self._attempts -= 1
            trial.set_user_attr("surplus", True)
            raise SurplusTrialError(
                f"trial {trial.number} is beyond the budget of "
                f"{self.preset.n_trials} trials, which other workers filled at "
                "the same moment; it is dropped without training"
            )
        params = suggest(trial, self.space)
        pruning = TrialPruning(trial)
        tags = {
            "phase": "trial",
            "trial_number": str(trial.number),
            "study_key": self.study_key,
            "encoder": self.spec.encoder.name,
            "dataset": self.spec.dataset,
        }
        # The run stays RUNNING on success: `_log_trial` finishes it once Optuna
        # has stored the trial's state, so a kill in between cannot leave a
        # FINISHED run for a trial that Optuna will run again.
        run_id = self.tracker.start_child(parent, f"trial {trial.number}", tags)
        trial.set_user_attr("mlflow_run_id", run_id)
        heartbeat = Heartbeat(
            lambda now: trial.set_user_attr(HEARTBEAT_ATTR, now),
            self.leases.heartbeat_interval,
            f"{self.spec.label} trial {trial.number}",
        )
        try:
            self.tracker.log_params(run_id, params)
            with heartbeat:
                model, encoder, result = train_model(
                    self.spec.encoder,
                    params,
                    self.spec.data,
                    # A retried trial trains with the seed of the trial it repeats.
                    seed=trial.user_attrs.get(RETRY_ATTR, [trial.number])[0],
                    callbacks=[pruning],
                    **self._loop_settings(),
                )
        except optuna.TrialPruned:
            self.tracker.log_curve(run_id, MONITOR, pruning.curve)
            self.tracker.client.set_tag(run_id, "trial_state", "PRUNED")
            raise
        except BaseException as error:
            self.tracker.fail(run_id, error)
            raise

        self.tracker.log_curve(run_id, MONITOR, result.curve)
        self.tracker.log_json(run_id, encoder.summary(), "encoder_state.json")
        self.tracker.log_metrics(
            run_id,
            {
                "best_val_rmse": result.best_val_rmse,
                "best_epoch": result.best_epoch,
                "train_time_s": result.train_time_s,
                "n_params": count_parameters(model),
            },
        )
        self.tracker.client.set_tag(run_id, "trial_state", "COMPLETE")
        trial.set_user_attr("train_time_s", result.train_time_s)
        return result.best_val_rmse

    def _reconcile_trial_runs(self, study: optuna.Study) -> None:
        """End RUNNING trial runs whose Optuna trial is over.

        A process killed after Optuna stored a trial but before MLflow heard of
        it leaves such runs. They end FINISHED when the trial completed or was
        pruned, and KILLED when it failed; runs of trials still RUNNING in
        Optuna are left alone, because another worker may own them.
        """
        states = {t.number: t.state for t in study.trials}
        leftovers = self.tracker.find_runs(
            self.experiment_id,
            f"tags.phase = 'trial' and tags.study_key = '{self.study_key}' "
            "and attributes.status = 'RUNNING'",
        )
        for run in leftovers:
            state = states.get(int(run.data.tags["trial_number"]))
            if state in DONE_STATES:
                self.tracker.client.set_terminated(run.info.run_id, "FINISHED")
            elif state != TrialState.RUNNING:
                self.tracker.client.set_terminated(run.info.run_id, "KILLED")

    def _log_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """End the trial's MLflow run and log one line about the trial.

        Lines count the finished (complete or pruned) trials from 1 against the
        budget, as in ``trial 2/6``, and also name Optuna's own trial number,
        which starts at 0 and also counts failed and dropped trials. Optuna's
        warnings and the MLflow run name ``trial N`` use that number.
        """
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id and trial.state in DONE_STATES:
            self.tracker.client.set_terminated(run_id, "FINISHED")
        number = sum(t.state in DONE_STATES for t in study.trials)
        label, budget = self.spec.label, self.preset.n_trials
        if trial.state == TrialState.COMPLETE:
            logger.info(
                "%s: trial %d/%d (Optuna trial %d) val RMSE %.5g (best %.5g)",
                label,
                number,
                budget,
                trial.number,
                trial.value,
                study.best_value,
            )
        elif trial.state == TrialState.PRUNED:
            logger.info(
                "%s: trial %d/%d (Optuna trial %d) pruned",
                label,
                number,
                budget,
                trial.number,
            )
        elif trial.user_attrs.get("surplus"):
            logger.info(
                "%s: Optuna trial %d dropped because the budget is full",
                label,
                trial.number,
            )
        else:
            logger.warning(
                "%s: Optuna trial %d ended %s and does not count, so %d/%d trials "
                "are done",
                label,
                trial.number,
                trial.state.name,
                number,
                budget,
            )

    def _loop_settings(self) -> dict[str, int]:
        return {
            "max_epochs": self.preset.max_epochs,
            "patience": self.preset.patience,
            "batch_size": self.preset.batch_size,
            "eval_batch_size": self.preset.eval_batch_size,
        }

    def _finals_step(self, study: optuna.Study, parent: Run) -> StepResult:
        """Train one unclaimed final seed, or summarize once all are stored."""
        best = study.best_trial
        params_hash = fingerprint(best.params)
        parent_id = parent.info.run_id
        if self._best_logged != params_hash:
            self.tracker.client.set_tag(parent_id, "best_params_hash", params_hash)
            self.tracker.log_json(parent_id, best.params, "best_params.json")
            self.tracker.log_metrics(parent_id, {"best_val_rmse": best.value})
            self._best_logged = params_hash

        self._end_leftover_final_runs()
        done = {int(r.data.tags["seed"]) for r in self._final_runs(params_hash)}
        if resolve_vectorized(
            self.preset.vectorized_seeds, self.spec.data.train.y.device, best.params
        ):
            group = self._claim_seed_group(params_hash, done)
            if group:
                self._vectorized_finals(parent, best.params, params_hash, group)
                return StepResult.WORKED
        ledger = self._ledger()
        for seed in range(self.preset.n_seeds):
            if seed in done:
                continue
            claim = ledger.claim({"phase": "final", "seed": seed, "hash": params_hash})
            if claim is None:
                continue
            try:
                # Another worker may have stored the seed since `done` was read.
                runs = self._final_runs(params_hash)
                if seed not in {int(r.data.tags["seed"]) for r in runs}:
                    self._end_leftover_final_runs()
                    with claim.heartbeat():
                        self._final_seed(parent, best.params, params_hash, seed, claim)
            except ClaimLostError as error:
                logger.warning("%s: %s", self.spec.label, error)
                return StepResult.WORKED
            except BaseException as error:
                claim.abandon(f"{type(error).__name__}: {error}")
                raise
            claim.finish()
            return StepResult.WORKED

        runs = self._final_runs(params_hash)
        if len(runs) < self.preset.n_seeds:
            return StepResult.BUSY
        latest = self.tracker.client.get_run(parent.info.run_id)
        if self._complete(latest):
            # Another worker stored the last seed and the summary.
            self.outcome = PairOutcome("complete", _summary_of(latest))
        else:
            self.outcome = PairOutcome("complete", self._summarize(study, parent, runs))
        return StepResult.DONE

    def _claim_seed_group(
        self, params_hash: str, done: set[int]
    ) -> list[tuple[int, Claim]]:
        """Claim every free pending seed of the first resample that has any.

        Seeds of one resample share their data, so they can train as one
        vectorized model. Returns the claimed seeds with their claims, or an
        empty list when other workers hold every pending seed.
        """
        ledger = self._ledger()
        pending = [s for s in range(self.preset.n_seeds) if s not in done]
        for resample in sorted({self.spec.for_seed(s)[0] for s in pending}):
            group = []
            for seed in pending:
                if self.spec.for_seed(seed)[0] != resample:
                    continue
                key = {"phase": "final", "seed": seed, "hash": params_hash}
                claim = ledger.claim(key)
                if claim is not None:
                    group.append((seed, claim))
            if group:
                return group
        return []

    def _vectorized_finals(
        self,
        parent: Run,
        params: dict[str, Any],
        params_hash: str,
        group: list[tuple[int, Claim]],
    ) -> None:
        """Train the claimed seeds together, then log each as its own run.

        A seed that another worker stored in the meantime is not trained again.
        A worker killed during training leaves no run, and its claims expire.
        """
        stored = {int(r.data.tags["seed"]) for r in self._final_runs(params_hash)}
        for seed, claim in group:
            if seed in stored:
                claim.finish()
        group = [(seed, claim) for seed, claim in group if seed not in stored]
        if not group:
            return
        self._end_leftover_final_runs()
        seeds = [seed for seed, _ in group]
        _, data, _, _ = self.spec.for_seed(seeds[0])
        unfinished = dict(group)
        try:
            with contextlib.ExitStack() as heartbeats:
                for _, claim in group:
                    heartbeats.enter_context(claim.heartbeat())
                runs, mode = train_seeds(
                    self.spec.encoder,
                    params,
                    data,
                    seeds,
                    vectorized=True,
                    **self._loop_settings(),
                )
                logger.info(
                    "%s: final seeds %s trained, %s", self.spec.label, seeds, mode
                )
                for run in runs:
                    claim = unfinished[run.seed]
                    try:
                        self._final_seed(
                            parent, params, params_hash, run.seed, claim, trained=run
                        )
                    except ClaimLostError as error:
                        logger.warning("%s: %s", self.spec.label, error)
                        del unfinished[run.seed]
                        continue
                    claim.finish()
                    del unfinished[run.seed]
        except BaseException as error:
            for claim in unfinished.values():
                claim.abandon(f"{type(error).__name__}: {error}")
            raise

    def _summarize(
        self, study: optuna.Study, parent: Run, runs: list[Run]
    ) -> dict[str, float]:
        parent_id = parent.info.run_id
        summary = _aggregate(runs)
        trial_times = [t.user_attrs.get("train_time_s", 0.0) for t in study.trials]
        summary["tune_time_s"] = float(sum(trial_times))
        summary["n_trials_done"] = float(
            sum(t.state in DONE_STATES for t in study.trials)
        )
        self.tracker.log_metrics(parent_id, summary)
        for key, value in {
            "status": "complete",
            "n_trials": str(self.preset.n_trials),
            "n_seeds": str(self.preset.n_seeds),
        }.items():
            self.tracker.client.set_tag(parent_id, key, value)
        self.tracker.finish(parent_id)
        logger.info(
            "%s: test RMSE %.5g ± %.3g over %d seeds",
            self.spec.label,
            summary["test_rmse_mean"],
            summary["test_rmse_std"],
            len(runs),
        )
        return summary

    def _end_leftover_final_runs(self) -> None:
        """Mark final-seed runs KILLED whose claim is over or dead.

        A run's ``claim`` tag names its claim in the ledger; while that claim
        is live, another worker is training the seed and its run stays.
        Runs without the tag predate claims and are ended as well.
        """
        running = self.tracker.find_runs(
            self.experiment_id,
            f"tags.phase = 'final' and tags.study_key = '{self.study_key}' "
            "and attributes.status = 'RUNNING'",
        )
        ledger = self._ledger()
        for run in running:
            number = run.data.tags.get("claim")
            if number is not None and ledger.claim_state(int(number)) == (
                TrialState.RUNNING
            ):
                continue
            logger.warning(
                "%s: final seed %s was left running by a stopped worker; run %s "
                "marked KILLED",
                self.spec.label,
                run.data.tags.get("seed"),
                run.info.run_id,
            )
            self.tracker.client.set_terminated(run.info.run_id, "KILLED")

    def _final_runs(self, params_hash: str) -> list[Run]:
        runs = self.tracker.find_runs(
            self.experiment_id,
            f"tags.phase = 'final' and tags.study_key = '{self.study_key}' "
            f"and tags.params_hash = '{params_hash}' "
            "and attributes.status = 'FINISHED'",
        )
        by_seed: dict[str, Run] = {}
        for run in sorted(runs, key=lambda r: r.info.start_time):
            by_seed.setdefault(run.data.tags["seed"], run)
        return list(by_seed.values())

    def _final_seed(
        self,
        parent: Run,
        params: dict[str, Any],
        params_hash: str,
        seed: int,
        claim: Claim,
        trained: SeedRun | None = None,
    ) -> None:
        """Train final seed ``seed`` (unless ``trained`` is given) and log its run."""
        spec = self.spec
        resample, data, test_target, split_hash = spec.for_seed(seed)
        tags = {
            "phase": "final",
            "seed": str(seed),
            "resample": str(resample),
            "split_hash": split_hash,
            "study_key": self.study_key,
            "params_hash": params_hash,
            "claim": str(claim.number),
            "encoder": spec.encoder.name,
            "dataset": spec.dataset,
            "openml_id": str(spec.openml_id),
        }
        with self.tracker.child_run(parent, f"seed {seed}", tags) as run_id:
            self.tracker.log_params(run_id, params)
            if trained is None:
                model, encoder, result = train_model(
                    spec.encoder, params, data, seed=seed, **self._loop_settings()
                )
            else:
                model, encoder, result = trained.model, trained.encoder, trained.result
                self.tracker.client.set_tag(run_id, "seed_training", trained.mode)
            self.tracker.log_json(run_id, encoder.summary(), "encoder_state.json")
            profile = None
            if seed == 0:
                profile = bin_weight_profile(
                    model, data.train.x_num, spec.record["numeric_features"]
                )
            if profile is not None:
                self.tracker.log_json(run_id, profile, "encoder_weights.json")
            started = time.perf_counter()
            standardized = predict(model, data.test, self.preset.eval_batch_size)
            predict_time = time.perf_counter() - started
            y_pred = standardized.astype("float64") * data.y_std + data.y_mean
            metrics = {
                f"test_{k}": v
                for k, v in regression_metrics(test_target, y_pred).items()
            }
            self.tracker.log_curve(run_id, MONITOR, result.curve)
            self.tracker.log_metrics(
                run_id,
                {
                    **metrics,
                    "val_rmse": result.best_val_rmse,
                    "best_epoch": result.best_epoch,
                    "train_time_s": result.train_time_s,
                    "predict_time_s": predict_time,
                    "n_params": count_parameters(model),
                },
            )
            if not claim.held():
                # Another worker saw this claim's heartbeat stop and took the
                # seed over; ending the run FAILED keeps one result per seed.
                raise ClaimLostError(
                    f"final seed {seed} was taken over by another worker; this "
                    "worker's run of it is marked FAILED"
                )
        logger.info(
            "%s: seed %d/%d test RMSE %.5g",
            spec.label,
            seed + 1,
            self.preset.n_seeds,
            metrics["test_rmse"],
        )


def _aggregate(runs: list[Run]) -> dict[str, float]:
    """Return the mean and standard deviation of each test metric over seeds.

    A metric that is NaN in any seed (R² of a test set whose target is
    constant, or a seed that diverged) gives NaN for its mean and deviation.
    """
    summary: dict[str, float] = {"n_seeds_done": float(len(runs))}
    for name in ("test_rmse", "test_mae", "test_r2"):
        values = [r.data.metrics[name] for r in runs if name in r.data.metrics]
        mean, std = mean_and_std(values)
        summary[f"{name}_mean"] = mean
        summary[f"{name}_std"] = std
    return summary


def mean_and_std(values: list[float]) -> tuple[float, float]:
    """Return the mean and the sample standard deviation of ``values``.

    The deviation is 0.0 for one value, and both are NaN for none. Any NaN
    among the values makes both NaN; `statistics.stdev` raises on NaN instead.
    """
    if not values:
        return math.nan, math.nan
    mean = math.fsum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    squares = math.fsum((value - mean) ** 2 for value in values)
    return mean, math.sqrt(squares / (len(values) - 1))


def _summary_of(parent: Run) -> dict[str, float]:
    return dict(parent.data.metrics)
