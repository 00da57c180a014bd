"""Markdown rendering of a report, for reading on a code-hosting site.

The document opens with the counts and notes, then the leaderboard (one row
per encoder), significance, a section per dataset, the plots (linked by
relative PNG paths, so they show next to the file) and the method. Every
encoder name appears once in the leaderboard table and once in each dataset's
table, so a reader or a script can find its row by ``| name |``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from reports.display import (
    Plot,
    Plots,
    Table,
    dataset_tables,
    missing_table,
    skipped_table,
)
from reports.display import overall_table as build_overall_table
from reports.leaderboard import Leaderboard
from reports.narrative import method_lines, significance_lines, summary_lines


def render_table(table: Table) -> str:
    """Return a pipe table; ``|`` inside a cell is escaped."""
    lines = [
        "| " + " | ".join(table.header) + " |",
        "|" + "|".join("---" for _ in table.header) + "|",
    ]
    for row in table.rows:
        lines.append("| " + " | ".join(c.text.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def render_markdown(
    board: Leaderboard, title: str, source: str, plots: Plots | None = None
) -> str:
    """Return the report as a Markdown document.

    Args:
        board: The report's tables.
        title: Heading, usually the suite or experiment name.
        source: Where the runs were read from, shown under the heading.
        plots: Plots to link; None leaves the plot sections out.
    """
    plots = plots or Plots()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"# Leaderboard: {title}", "", f"Built from MLflow ({source}) on {stamp}."]
    parts += ["", *_paragraphs(summary_lines(board))]
    notes = board.notes + plots.notes
    if notes:
        parts += ["", "Notes:", "", *(f"- {n}" for n in notes)]

    parts += ["", "## Leaderboard", "", render_table(build_overall_table(board))]
    parts += ["", "## Significance", "", *_paragraphs(significance_lines(board))]
    if plots.cd_diagram is not None:
        parts += ["", _image(plots.cd_diagram)]

    parts += ["", "## Per dataset"]
    for heading, table in dataset_tables(board):
        parts += ["", f"### {heading}", "", render_table(table)]

    figures = [p for p in (plots.rmse, plots.heatmap) if p is not None]
    if figures or plots.bin_weights:
        parts += ["", "## Plots"]
        for plot in figures + plots.bin_weights:
            parts += ["", f"### {plot.title}", "", _image(plot)]

    if board.missing.height:
        parts += [
            "",
            f"## Missing cells ({board.missing.height})",
            "",
            render_table(missing_table(board)),
        ]
    if board.skipped.height:
        parts += [
            "",
            f"## Skipped datasets ({board.skipped.height})",
            "",
            render_table(skipped_table(board)),
        ]
    parts += ["", "## Method", "", *(f"- {line}" for line in method_lines(board))]
    return "\n".join(parts) + "\n"


def _paragraphs(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        out += [line, ""]
    return out[:-1]


def _image(plot: Plot) -> str:
    return f"![{plot.title}]({plot.path.as_posix()})\n\n{plot.caption}"
