"""Leaderboards built from MLflow runs alone.

This package reads a tracking store through MLflow's client and never imports
the encoders or the training code, so a report can be rebuilt anywhere the
tracking server is reachable.
"""

from reports.collect import collect_results
from reports.leaderboard import Leaderboard, build_leaderboard
from reports.publish import build_report

__all__ = ["Leaderboard", "build_leaderboard", "build_report", "collect_results"]
