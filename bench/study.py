"""One (dataset, encoder) study: tune with Optuna, then train final seeds.

Everything a study computes is stored as it goes: Optuna trials in the study
storage, trial and seed runs in MLflow. Running the same study again continues
where it stopped: finished trials count against the trial budget, and a final
seed is trained only if no finished run with the same configuration exists.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
import numpy as np
import optuna
from mlflow.entities import Run
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from bench.attention import bin_weight_profile
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
from encoders import Encoder

logger = logging.getLogger(__name__)

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class PairSpec:
    """Identity of one study and the data it trains on."""

    suite: str
    openml_id: int
    dataset: str
    encoder: type[Encoder]
    data: DeviceData
    test_target: np.ndarray
    split_hash: str
    tags: dict[str, str] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.dataset} ({self.openml_id}) x {self.encoder.name}"


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
    """Runs one pair's study and final seeds against shared storage."""

    def __init__(
        self,
        spec: PairSpec,
        preset: Preset,
        tracker: Tracker,
        storage: Any,
        experiment_id: str,
    ) -> None:
        self.spec = spec
        self.preset = preset
        self.tracker = tracker
        self.storage = storage
        self.experiment_id = experiment_id
        self.space = search_space(preset, spec.encoder)
        self.study_key = fingerprint(
            {
                "openml_id": spec.openml_id,
                "encoder": spec.encoder.name,
                "split_hash": spec.split_hash,
                "preset": preset.study_fingerprint(),
                "space": {k: repr(v) for k, v in self.space.items()},
                "record": spec.record.get("target"),
            }
        )

    def run(self) -> PairOutcome:
        """Tune, train the final seeds, and summarize on the parent run."""
        parent = self._parent()
        if self._complete(parent):
            logger.info("%s: complete, skipped", self.spec.label)
            return PairOutcome("complete", _summary_of(parent))

        study = self._study()
        self._tune(study, parent)
        if not any(t.state == TrialState.COMPLETE for t in study.trials):
            reason = "no trial completed; see the failed trial runs for errors"
            self.tracker.client.set_tag(parent.info.run_id, "status", "failed")
            self.tracker.client.set_tag(parent.info.run_id, "status_reason", reason)
            logger.error("%s: %s", self.spec.label, reason)
            return PairOutcome("failed", reason=reason)

        summary = self._finals(study, parent)
        return PairOutcome("complete", summary)

    def _parent(self) -> Run:
        name = f"{self.spec.dataset}/{self.spec.encoder.name}"
        tags = {
            **self.spec.tags,
            "suite": self.spec.suite,
            "dataset": self.spec.dataset,
            "openml_id": str(self.spec.openml_id),
            "encoder": self.spec.encoder.name,
            "split_hash": self.spec.split_hash,
            "preset": self.preset.name,
        }
        parent = self.tracker.parent_run(self.experiment_id, self.study_key, name, tags)
        if not parent.data.params:
            self.tracker.log_params(parent.info.run_id, self._parent_params())
            self.tracker.log_json(parent.info.run_id, self.spec.record, "data.json")
            self.tracker.log_json(
                parent.info.run_id, self.preset.record(), "preset.json"
            )
        return parent

    def _parent_params(self) -> dict[str, Any]:
        record = self.spec.record
        return {
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
        # start-up configurations it already tried.
        study.sampler = optuna.samplers.TPESampler(
            seed=self.preset.sampler_seed + len(study.trials),
            n_startup_trials=self.preset.n_startup_trials,
        )
        study.set_user_attr("label", self.spec.label)
        return study

    def _tune(self, study: optuna.Study, parent: Run) -> None:
        self._reconcile_trial_runs(study)
        done = sum(t.state in DONE_STATES for t in study.trials)
        remaining = self.preset.n_trials - done
        if remaining <= 0:
            return
        logger.info(
            "%s: tuning, %d of %d trials to run",
            self.spec.label,
            remaining,
            self.preset.n_trials,
        )
        study.optimize(
            lambda trial: self._objective(trial, parent),
            n_trials=remaining,
            catch=(Exception,),
            callbacks=[self._log_trial],
        )

    def _objective(self, trial: optuna.Trial, parent: Run) -> float:
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
        try:
            self.tracker.log_params(run_id, params)
            model, _, result = train_model(
                self.spec.encoder,
                params,
                self.spec.data,
                seed=trial.number,
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
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id and trial.state in DONE_STATES:
            self.tracker.client.set_terminated(run_id, "FINISHED")
        number = sum(t.state in DONE_STATES for t in study.trials)
        if trial.state == TrialState.COMPLETE:
            logger.info(
                "%s: trial %d/%d val RMSE %.5g (best %.5g)",
                self.spec.label,
                number,
                self.preset.n_trials,
                trial.value,
                study.best_value,
            )
        elif trial.state == TrialState.PRUNED:
            logger.info(
                "%s: trial %d/%d pruned", self.spec.label, number, self.preset.n_trials
            )
        else:
            logger.warning(
                "%s: trial %d %s", self.spec.label, trial.number, trial.state.name
            )

    def _loop_settings(self) -> dict[str, int]:
        return {
            "max_epochs": self.preset.max_epochs,
            "patience": self.preset.patience,
            "batch_size": self.preset.batch_size,
            "eval_batch_size": self.preset.eval_batch_size,
        }

    def _finals(self, study: optuna.Study, parent: Run) -> dict[str, float]:
        best = study.best_trial
        params_hash = fingerprint(best.params)
        parent_id = parent.info.run_id
        self.tracker.client.set_tag(parent_id, "best_params_hash", params_hash)
        self.tracker.log_json(parent_id, best.params, "best_params.json")
        self.tracker.log_metrics(parent_id, {"best_val_rmse": best.value})

        done = {int(r.data.tags["seed"]) for r in self._final_runs(params_hash)}
        self._end_stale_final_runs()
        for seed in range(self.preset.n_seeds):
            if seed in done:
                continue
            self._final_seed(parent, best.params, params_hash, seed)

        runs = self._final_runs(params_hash)
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

    def _end_stale_final_runs(self) -> None:
        """Mark final-seed runs left RUNNING by a killed process as KILLED.

        NOTE: this assumes one process per study, as the in-process runner
        guarantees; with several workers on one study it would end a seed that
        another worker is still training.
        """
        stale = self.tracker.find_runs(
            self.experiment_id,
            f"tags.phase = 'final' and tags.study_key = '{self.study_key}' "
            "and attributes.status = 'RUNNING'",
        )
        for run in stale:
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
        self, parent: Run, params: dict[str, Any], params_hash: str, seed: int
    ) -> None:
        spec = self.spec
        tags = {
            "phase": "final",
            "seed": str(seed),
            "study_key": self.study_key,
            "params_hash": params_hash,
            "encoder": spec.encoder.name,
            "dataset": spec.dataset,
            "openml_id": str(spec.openml_id),
        }
        with self.tracker.child_run(parent, f"seed {seed}", tags) as run_id:
            self.tracker.log_params(run_id, params)
            model, encoder, result = train_model(
                spec.encoder, params, spec.data, seed=seed, **self._loop_settings()
            )
            self.tracker.log_json(run_id, encoder.summary(), "encoder_state.json")
            profile = None
            if seed == 0:
                profile = bin_weight_profile(
                    model, spec.data.train.x_num, spec.record["numeric_features"]
                )
            if profile is not None:
                self.tracker.log_json(run_id, profile, "encoder_weights.json")
            started = time.perf_counter()
            standardized = predict(model, spec.data.test, self.preset.eval_batch_size)
            predict_time = time.perf_counter() - started
            y_pred = standardized.astype("float64") * spec.data.y_std + spec.data.y_mean
            metrics = {
                f"test_{k}": v
                for k, v in regression_metrics(spec.test_target, y_pred).items()
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
        logger.info(
            "%s: seed %d/%d test RMSE %.5g",
            spec.label,
            seed + 1,
            self.preset.n_seeds,
            metrics["test_rmse"],
        )


def _aggregate(runs: list[Run]) -> dict[str, float]:
    summary: dict[str, float] = {"n_seeds_done": float(len(runs))}
    for name in ("test_rmse", "test_mae", "test_r2"):
        values = [r.data.metrics[name] for r in runs if name in r.data.metrics]
        summary[f"{name}_mean"] = statistics.fmean(values) if values else math.nan
        summary[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return summary


def _summary_of(parent: Run) -> dict[str, float]:
    return dict(parent.data.metrics)
