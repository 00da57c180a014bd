"""Build a report from a tracking store, write its files, and log them to MLflow.

`build_report` is the entry point of ``bench report``. It reads one experiment
through `MlflowClient` (any tracking URI), computes the tables and tests,
draws the plots, and writes into the output folder:

- ``leaderboard.md``: Markdown, with plots linked as ``plots/*.png``;
- ``report.html``: one self-contained page with embedded plots;
- ``results.csv`` and ``results.parquet``: one row per counted final seed;
- ``leaderboard.csv`` and ``per_dataset.csv``: the aggregated tables.

The same files are logged under ``report/`` of the experiment's report run
(tagged ``phase=report``, created once and reused).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import polars as pl
from mlflow.tracking import MlflowClient

from reports.artifacts import (
    read_bin_weights,
    read_split_sizes,
    recorded_normalized_score,
)
from reports.collect import Results, collect_results, quiet_mlflow, search_all
from reports.html import render_html
from reports.leaderboard import Leaderboard, build_leaderboard
from reports.markdown import render_markdown
from reports.plots import draw_plots

logger = logging.getLogger(__name__)

RAW_COLUMNS = (
    "dataset",
    "openml_id",
    "encoder",
    "seed",
    "test_rmse",
    "test_mae",
    "test_r2",
    "val_rmse",
    "train_time_s",
    "predict_time_s",
    "n_params",
    "n_train",
    "n_val",
    "n_test",
    "status",
    "params_hash",
    "study_key",
    "run_id",
)


class ReportError(LookupError):
    """The experiment to report on does not exist."""


class ReportWriteError(ValueError):
    """A report file could not be written to the output folder."""


# MLflow logs a failed database write here with a traceback, before raising it.
DATABASE_LOGGER = "mlflow.store.db.utils"

# MLflow creates this experiment in every store, and no suite writes to it.
MLFLOW_DEFAULT_EXPERIMENT = "Default"


def suite_names(client: MlflowClient) -> list[str]:
    """Return the sorted experiment names of the store, except MLflow's ``Default``."""
    return sorted(
        e.name
        for e in client.search_experiments()
        if e.name != MLFLOW_DEFAULT_EXPERIMENT
    )


def default_suite(tracking_uri: str) -> str:
    """Return the suite to report on when none is named.

    That is the only experiment in the store apart from MLflow's ``Default``,
    else ``demo`` if it exists.

    Raises:
        ReportError: if the store has several suites and no ``demo``, or none.
    """
    names = suite_names(MlflowClient(tracking_uri))
    if len(names) == 1:
        return names[0]
    if "demo" in names:
        return "demo"
    raise ReportError(
        f"The store at {redact_uri(tracking_uri)} contains "
        f"{'no suites' if not names else 'the suites ' + ', '.join(names)}; "
        "name one with --suite."
    )


def build_report(
    tracking_uri: str,
    experiment: str,
    out_dir: Path,
    normalized_score: str | None = None,
    log_to_mlflow: bool = True,
) -> tuple[Path, Leaderboard]:
    """Write every report file for one experiment and log them to MLflow.

    A store that rejects the upload (read-only, or no permission to write)
    gets a warning, and the written files stay.

    Args:
        tracking_uri: Any MLflow tracking URI (``sqlite:///...``, a server URL).
        experiment: Name of the experiment, which is the suite name.
        out_dir: Output folder, created if needed; existing files of the same
            names are replaced.
        normalized_score: Metric the normalized score rescales, ``rmse`` or
            ``r2`` (see `reports.leaderboard.build_leaderboard`). None takes
            the value that the studies' recorded presets name.
        log_to_mlflow: Whether to log the files to a ``report`` run of the
            experiment.

    Returns:
        The path of ``leaderboard.md`` and the leaderboard tables.

    Raises:
        ReportError: if the experiment does not exist. The message lists the
            suites in the store and is worded for ``bench report --suite``.
        ReportWriteError: if a file cannot be written to ``out_dir``.
    """
    client = MlflowClient(tracking_uri)
    source = redact_uri(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = suite_names(client)
        listing = (
            f"Suites there: {', '.join(names)}"
            if names
            else "The store contains no suites yet"
        )
        raise ReportError(
            f"No results for suite {experiment!r} at {source}, because the store "
            f"has no MLflow experiment of that name. {listing}. Check --suite, or run "
            f"`bench run --suite {experiment}` first."
        )

    results = collect_results(client, found.experiment_id)
    split_sizes = read_split_sizes(client, results.studies, results.notes)
    weights = read_bin_weights(client, results.finals, results.notes)
    if normalized_score is None:
        normalized_score = recorded_normalized_score(
            client, results.studies, results.notes
        )
    board = build_leaderboard(results, split_sizes, normalized_score=normalized_score)

    try:
        files, figures = _write_files(
            board, weights, results, split_sizes, out_dir, experiment, source
        )
    except OSError as error:
        raise ReportWriteError(
            f"The report of suite {experiment!r} could not be written to "
            f"{out_dir} ({type(error).__name__}: {error}). Give a writable "
            "folder with --out."
        ) from None

    counts = f"{board.n_final_runs} final runs, {board.missing.height} missing cells"
    if not log_to_mlflow:
        logger.info("Report written to %s (%s)", out_dir, counts)
        return files[0], board
    try:
        with quiet_mlflow(), _muted(DATABASE_LOGGER):
            run_id = _report_run(client, found.experiment_id)
            for path in files:
                client.log_artifact(run_id, str(path), "report")
            for path in figures:
                client.log_artifact(run_id, str(path), "report/plots")
    except Exception as error:  # MLflow's own errors, SQLAlchemy's and OSError
        logger.warning(
            "Report written to %s (%s), but not logged to MLflow at %s (%s: %s). "
            "The files are complete; --no-log skips the upload.",
            out_dir,
            counts,
            source,
            type(error).__name__,
            _cause_line(error),
        )
        return files[0], board
    logger.info("Report written to %s (%s); logged to run %s", out_dir, counts, run_id)
    return files[0], board


@contextlib.contextmanager
def _muted(name: str) -> Iterator[None]:
    """Drop the records of logger ``name`` inside the block."""
    target = logging.getLogger(name)
    previous = target.disabled
    target.disabled = True
    try:
        yield
    finally:
        target.disabled = previous


def _cause_line(error: Exception) -> str:
    """Return the line of ``error``'s message that names the database error.

    SQLAlchemy's messages can start with a note on autoflush and put the
    driver's error, such as ``attempt to write a readonly database``, on a
    later line.
    """
    lines = [line for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "Error)" in line:
            return line
    return lines[0] if lines else ""


def _write_files(
    board: Leaderboard,
    weights: pl.DataFrame,
    results: Results,
    split_sizes: pl.DataFrame,
    out_dir: Path,
    experiment: str,
    source: str,
) -> tuple[list[Path], list[Path]]:
    """Write the report files into ``out_dir``.

    Returns:
        The report files, ``leaderboard.md`` first, and the plot files.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = draw_plots(board, weights, out_dir / "plots", out_dir)
    markdown = out_dir / "leaderboard.md"
    markdown.write_text(render_markdown(board, experiment, source, plots))
    page = out_dir / "report.html"
    page.write_text(render_html(board, experiment, source, plots, out_dir))
    raw = raw_results(results, split_sizes)
    raw.write_csv(out_dir / "results.csv")
    raw.write_parquet(out_dir / "results.parquet")
    board.overall.write_csv(out_dir / "leaderboard.csv")
    board.per_dataset.write_csv(out_dir / "per_dataset.csv")

    files = [
        markdown,
        page,
        out_dir / "results.csv",
        out_dir / "results.parquet",
        out_dir / "leaderboard.csv",
        out_dir / "per_dataset.csv",
    ]
    figures = [plots.cd_diagram, plots.rmse, plots.heatmap, *plots.bin_weights]
    return files, [out_dir / plot.path for plot in figures if plot is not None]


def raw_results(results: Results, split_sizes: pl.DataFrame) -> pl.DataFrame:
    """Return one row per counted final seed, with row counts and study status."""
    return (
        results.finals.join(split_sizes, on="openml_id", how="left")
        .join(
            results.studies.select("openml_id", "encoder", "status"),
            on=["openml_id", "encoder"],
            how="left",
        )
        .select(RAW_COLUMNS)
        .sort("openml_id", "encoder", "seed")
    )


def redact_uri(uri: str) -> str:
    """Return ``uri`` with any user name and password replaced by ``***``."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _report_run(client: MlflowClient, experiment_id: str) -> str:
    existing = search_all(client, experiment_id, "tags.phase = 'report'")
    if existing:
        run_id = existing[0].info.run_id
    else:
        run_id = client.create_run(
            experiment_id, run_name="leaderboard", tags={"phase": "report"}
        ).info.run_id
    client.set_terminated(run_id, "FINISHED")
    return run_id
