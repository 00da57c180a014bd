"""Leaderboards, statistics and plots built from MLflow runs alone.

This package reads a tracking store through MLflow's client and never imports
the benchmark, the encoders or the training code, so a report can be rebuilt
anywhere the tracking store is reachable. `build_report` writes Markdown, a
self-contained HTML page, per-seed CSV and Parquet files and PNG plots, and
logs them to the experiment's report run.
"""

from reports.collect import Results, collect_results
from reports.leaderboard import Leaderboard, build_leaderboard
from reports.publish import ReportError, build_report

__all__ = [
    "Leaderboard",
    "ReportError",
    "Results",
    "build_leaderboard",
    "build_report",
    "collect_results",
]
