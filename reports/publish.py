"""Build a report from a tracking store, write it, and log it back to MLflow."""

from __future__ import annotations

import logging
from pathlib import Path

from mlflow.tracking import MlflowClient

from reports.collect import collect_results, search_all
from reports.leaderboard import Leaderboard, build_leaderboard
from reports.markdown import render_markdown

logger = logging.getLogger(__name__)


class ReportError(LookupError):
    """The experiment to report on does not exist."""


def build_report(
    tracking_uri: str, experiment: str, out_dir: Path
) -> tuple[Path, Leaderboard]:
    """Write ``leaderboard.md`` and ``results.csv`` for one experiment.

    The files go to ``out_dir`` and are logged as artifacts of the experiment's
    report run (tagged ``phase=report``, created once and reused).

    Raises:
        ReportError: if the experiment does not exist.
    """
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = [e.name for e in client.search_experiments()]
        raise ReportError(
            f"No MLflow experiment named {experiment!r} at {tracking_uri}; "
            f"experiments there: {names}. Run `bench run` first or pass --suite."
        )

    results = collect_results(client, found.experiment_id)
    board = build_leaderboard(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / "leaderboard.md"
    markdown.write_text(render_markdown(board, experiment, tracking_uri))
    raw = out_dir / "results.csv"
    results.finals.sort("openml_id", "encoder", "seed").write_csv(raw)

    report_run = _report_run(client, found.experiment_id)
    for path in (markdown, raw):
        client.log_artifact(report_run, str(path), "report")
    logger.info(
        "Leaderboard written to %s (%d final runs)", markdown, results.finals.height
    )
    return markdown, board


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
