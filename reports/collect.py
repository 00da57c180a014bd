"""Read the study and final-seed runs of one MLflow experiment into polars tables.

Parent runs are tagged ``phase=study`` with ``dataset``, ``openml_id``,
``encoder``, ``status`` and ``best_params_hash``, and carry the metrics
``tune_time_s`` (the sum of the trials' training times), ``n_trials_done`` and,
when the benchmark logs it, ``tune_wall_time_s``. Final-seed runs are tagged
``phase=final`` with ``seed``, ``study_key`` and ``params_hash``, and carry the
test metrics. Runs tagged ``phase=skipped`` record a dataset that the benchmark
could not load, with ``openml_id``, ``dataset`` and ``status_reason``. A final
run counts when it finished and its ``params_hash`` is
its study's current ``best_params_hash``. A (dataset, encoder) pair with
several studies (a re-run under another preset gets a new ``study_key``) is
represented by its newest study with final results. Every search follows
MLflow's result pages to the last one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import polars as pl
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000

# MLflow 3 draws a download progress bar on stderr. With a tracking server it
# also prints a "View run" link to stdout when a run ends, which would mix into
# the Markdown that `bench report` writes to stdout.
QUIET_VARIABLES = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}

FINAL_METRICS = (
    "test_rmse",
    "test_mae",
    "test_r2",
    "val_rmse",
    "train_time_s",
    "predict_time_s",
    "n_params",
)

STUDY_SCHEMA: dict[str, type[pl.DataType]] = {
    "study_key": pl.String,
    "run_id": pl.String,
    "start_time": pl.Int64,
    "dataset": pl.String,
    "openml_id": pl.Int64,
    "encoder": pl.String,
    "status": pl.String,
    "status_reason": pl.String,
    "best_params_hash": pl.String,
    "tune_time_s": pl.Float64,
    "n_trials_done": pl.Float64,
    "preset": pl.String,
    "preset_fingerprint": pl.String,
}

SKIPPED_SCHEMA: dict[str, type[pl.DataType]] = {
    "openml_id": pl.Int64,
    "dataset": pl.String,
    "reason": pl.String,
}

FINAL_SCHEMA: dict[str, type[pl.DataType]] = {
    "study_key": pl.String,
    "params_hash": pl.String,
    "seed": pl.Int64,
    "run_id": pl.String,
    "start_time": pl.Int64,
    **{name: pl.Float64 for name in FINAL_METRICS},
}


@dataclass
class Results:
    """Rows read from MLflow.

    Attributes:
        studies: One row per (dataset, encoder) pair, from its selected parent
            run: identity tags, ``status`` (the ``status`` tag, else
            ``running`` while the run is open and ``stopped`` once it ended),
            ``tune_time_s`` (seconds, from `_tuning_time`) and
            ``n_trials_done``.
        finals: One row per (study, seed) counted in the report, with the test
            metrics (target units), ``val_rmse``, ``train_time_s`` and
            ``predict_time_s`` (seconds), ``n_params`` and the study's identity.
        notes: Data problems found while reading (runs left out and why).
        skipped: One row per dataset that the benchmark skipped (``openml_id``,
            ``dataset`` and ``reason``), from its latest ``phase=skipped`` run.
    """

    studies: pl.DataFrame
    finals: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    skipped: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=SKIPPED_SCHEMA)
    )


def search_all(
    client: MlflowClient, experiment_id: str, filter_string: str
) -> list[Run]:
    """Return every matching run, following MLflow's result pages to the end."""
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string, max_results=PAGE_SIZE, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def collect_results(
    client: MlflowClient, experiment_id: str, preset_fingerprint: str | None = None
) -> Results:
    """Read the studies and their counted final-seed runs of one experiment.

    Args:
        client: Client of any tracking store (SQLite file or server).
        experiment_id: The experiment of one suite.
        preset_fingerprint: If given, only studies of the preset with this
            `bench.config.Preset.study_fingerprint` count.

    Returns:
        The selected studies, their final-seed rows, and notes on left-out runs.
    """
    notes: list[str] = []
    studies = _study_frame(search_all(client, experiment_id, "tags.phase = 'study'"))
    if preset_fingerprint is not None:
        studies = studies.filter(pl.col("preset_fingerprint") == preset_fingerprint)
    finals_raw = search_all(
        client, experiment_id, "tags.phase = 'final' and attributes.status = 'FINISHED'"
    )
    finals = _final_frame(finals_raw)

    no_metric = finals.filter(pl.col("test_rmse").is_null())
    if no_metric.height:
        notes.append(f"{no_metric.height} finished final runs lack test_rmse.")
        finals = finals.filter(pl.col("test_rmse").is_not_null())

    identity = studies.select(
        "study_key", "dataset", "openml_id", "encoder", "best_params_hash"
    )
    orphans = finals.join(identity, on="study_key", how="anti")
    if orphans.height:
        notes.append(f"{orphans.height} final runs have no parent study run.")
    current = (
        finals.join(identity, on="study_key")
        .filter(pl.col("params_hash") == pl.col("best_params_hash"))
        .sort("start_time")
        .unique(subset=["study_key", "seed"], keep="first", maintain_order=True)
        .drop("best_params_hash", "start_time")
    )

    selected = _select_studies(studies, current, notes)
    current = current.join(selected.select("study_key"), on="study_key", how="semi")
    current = _drop_incomplete(selected, current, notes)
    _note_mixed_presets(selected, notes)
    _note_mixed_budgets(selected, current, notes)
    skipped_runs = search_all(client, experiment_id, "tags.phase = 'skipped'")
    skipped = _skipped_frame(skipped_runs)
    logger.info(
        "Read %d studies and %d final runs (%d counted) from experiment %s",
        studies.height,
        len(finals_raw),
        current.height,
        experiment_id,
    )
    return Results(
        studies=selected.drop("start_time"),
        finals=current.sort("openml_id", "encoder", "seed"),
        notes=notes,
        skipped=skipped,
    )


def _study_frame(parents: list[Run]) -> pl.DataFrame:
    rows = []
    for run in parents:
        tags = run.data.tags
        default_status = "running" if run.info.status == "RUNNING" else "stopped"
        rows.append(
            {
                "study_key": tags.get("study_key", run.info.run_id),
                "run_id": run.info.run_id,
                "start_time": run.info.start_time,
                "dataset": tags.get("dataset", "?"),
                "openml_id": _int(tags.get("openml_id")),
                "encoder": tags.get("encoder", "?"),
                "status": tags.get("status", default_status),
                "status_reason": tags.get("status_reason", ""),
                "best_params_hash": tags.get("best_params_hash", ""),
                "tune_time_s": _tuning_time(run),
                "n_trials_done": run.data.metrics.get("n_trials_done"),
                "preset": tags.get("preset", "?"),
                "preset_fingerprint": tags.get("preset_fingerprint", "?"),
            }
        )
    return pl.DataFrame(rows, schema=STUDY_SCHEMA)


def _skipped_frame(runs: list[Run]) -> pl.DataFrame:
    """Return one row per skipped dataset, from its newest record."""
    rows = []
    seen: set[int | None] = set()
    for run in sorted(runs, key=lambda r: r.info.start_time, reverse=True):
        openml_id = _int(run.data.tags.get("openml_id"))
        if openml_id in seen:
            continue
        seen.add(openml_id)
        rows.append(
            {
                "openml_id": openml_id,
                "dataset": run.data.tags.get("dataset", ""),
                "reason": run.data.tags.get("status_reason", ""),
            }
        )
    return pl.DataFrame(rows, schema=SKIPPED_SCHEMA).sort("openml_id")


def _final_frame(runs: list[Run]) -> pl.DataFrame:
    rows = [
        {
            "study_key": run.data.tags.get("study_key", ""),
            "params_hash": run.data.tags.get("params_hash", ""),
            "seed": _int(run.data.tags.get("seed")),
            "run_id": run.info.run_id,
            "start_time": run.info.start_time,
            **{name: run.data.metrics.get(name) for name in FINAL_METRICS},
        }
        for run in runs
    ]
    return pl.DataFrame(rows, schema=FINAL_SCHEMA)


def _select_studies(
    studies: pl.DataFrame, finals: pl.DataFrame, notes: list[str]
) -> pl.DataFrame:
    """Keep one study per (dataset, encoder): the newest with final results."""
    with_finals = finals.select("study_key").unique().with_columns(has_finals=True)
    ordered = (
        studies.join(with_finals, on="study_key", how="left")
        .with_columns(pl.col("has_finals").fill_null(False))
        .sort(["has_finals", "start_time"], descending=True)
    )
    selected = ordered.unique(
        subset=["openml_id", "encoder"], keep="first", maintain_order=True
    )
    superseded = studies.height - selected.height
    if superseded:
        notes.append(
            f"{superseded} older studies of the same (dataset, encoder) pair "
            "were left out in favour of the newest one with final results."
        )
    return selected.drop("has_finals").sort("openml_id", "encoder")


def _drop_incomplete(
    studies: pl.DataFrame, finals: pl.DataFrame, notes: list[str]
) -> pl.DataFrame:
    """Return ``finals`` without the runs of studies whose status is not complete.

    A study that failed, was interrupted or is still running may have some of
    its final seeds. Ranking those would compare a partial or broken cell with
    complete ones, so their cells count as missing until the study completes.
    """
    incomplete = studies.filter(pl.col("status") != "complete").select(
        "study_key", "status"
    )
    dropped = finals.join(incomplete, on="study_key")
    if dropped.height == 0:
        return finals
    counts = dropped.group_by("status").agg(pl.col("study_key").n_unique())
    detail = ", ".join(
        f"{n} {status}" for status, n in counts.sort("status").iter_rows()
    )
    n_studies = dropped["study_key"].n_unique()
    notes.append(
        f"{n_studies} studies have final runs but are not complete ({detail}). "
        f"Their {dropped.height} final runs are left out until the study "
        "completes, and their cells count as missing."
    )
    return finals.join(incomplete, on="study_key", how="anti")


def preset_counts(studies: pl.DataFrame) -> list[tuple[str, str, int]]:
    """Return (preset, fingerprint, number of studies) per preset, most used first.

    Frames without the preset columns (built by hand) give an empty list.
    """
    if not {"preset", "preset_fingerprint"} <= set(studies.columns):
        return []
    counts = studies.group_by("preset", "preset_fingerprint").len()
    counts = counts.sort(["len", "preset"], descending=[True, False])
    return [(row[0], row[1], row[2]) for row in counts.iter_rows()]


def _note_mixed_presets(studies: pl.DataFrame, notes: list[str]) -> None:
    """Add a note, also logged as a warning, when the studies come from more
    than one preset or version."""
    counts = preset_counts(studies)
    if len(counts) < 2:
        return
    parts = [f"{name} ({fingerprint}): {n}" for name, fingerprint, n in counts]
    note = (
        "The studies come from different presets (name and fingerprint: number "
        f"of studies): {'; '.join(parts)}. Their rows are not comparable; report "
        "one preset per results folder or suite."
    )
    notes.append(note)
    logger.warning("%s", note)


def _note_mixed_budgets(
    studies: pl.DataFrame, finals: pl.DataFrame, notes: list[str]
) -> None:
    """Add a note, also logged as a warning, when the counted studies finished
    different numbers of trials or counted different numbers of final seeds."""
    seeds = finals.group_by("study_key").len("n_seeds")
    counted = studies.join(seeds, on="study_key")
    for column, noun in (("n_trials_done", "trial"), ("n_seeds", "final seed")):
        counts = counted.group_by(column).len().drop_nulls(column).sort(column)
        if counts.height < 2:
            continue
        parts = [
            f"{_plural(n, 'study', 'studies')} with {_plural(int(value), noun)}"
            for value, n in counts.iter_rows()
        ]
        note = (
            f"The studies differ in their budget: {', '.join(parts)}. An encoder "
            "with a smaller budget may rank lower for that reason alone; rerun "
            "with the same --trials and --seeds to compare them."
        )
        notes.append(note)
        logger.warning("%s", note)


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    """Return ``count`` and the noun, as in ``1 trial`` or ``2 trials``."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _tuning_time(run: Run) -> float | None:
    """Return the study's tuning time in seconds.

    That is ``tune_wall_time_s`` (wall clock) when the parent run logs it, else
    ``tune_time_s`` (the sum of the trials' training times).
    """
    metrics = run.data.metrics
    return metrics.get("tune_wall_time_s", metrics.get("tune_time_s"))


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Keep MLflow from writing to stdout and stderr inside the block.

    The environment variables are restored afterwards, so the setting does
    not leak into the calling program.
    """
    previous = {name: os.environ.get(name) for name in QUIET_VARIABLES}
    os.environ.update(QUIET_VARIABLES)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
