"""A self-contained HTML page of a report: embedded plots, sortable tables.

The page needs no server and loads nothing from the network: the plots are
embedded as base64 PNG data URIs, the style sheet and the sorting script are
inline. Clicking a column header sorts its table by that column (numbers by
value, blanks and ``n/a`` last), and clicking again reverses the order.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from html import escape
from pathlib import Path

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

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1500px;
       padding: 0 1em; color: #222; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left;
         white-space: nowrap; }
td[data-sort] { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; cursor: pointer; user-select: none;
     white-space: normal; vertical-align: bottom; }
th[data-order="asc"]::after { content: " \\25B2"; }
th[data-order="desc"]::after { content: " \\25BC"; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #8a4b00; }
"""

SCRIPT = """
function sortKey(cell) {
  const key = cell.dataset.sort;
  return key === undefined || key === "" ? null : Number(key);
}
function textKey(cell) { return cell.textContent.trim().toLowerCase(); }
document.querySelectorAll("table.sortable").forEach((table) => {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((header, column) => {
    header.addEventListener("click", () => {
      const ascending = header.dataset.order !== "asc";
      headers.forEach((h) => delete h.dataset.order);
      header.dataset.order = ascending ? "asc" : "desc";
      const sign = ascending ? 1 : -1;
      const rows = Array.from(table.tBodies[0].rows);
      rows.sort((a, b) => {
        const x = sortKey(a.cells[column]), y = sortKey(b.cells[column]);
        if (x !== null && y !== null) return sign * (x - y);
        if (x !== null || y !== null) return x === null ? 1 : -1;
        return sign * textKey(a.cells[column]).localeCompare(textKey(b.cells[column]));
      });
      table.tBodies[0].append(...rows);
    });
  });
});
"""


def render_table(table: Table) -> str:
    """Return a sortable ``<table>``; numeric cells carry ``data-sort``."""
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = []
    for row in table.rows:
        cells = []
        for cell in row:
            key = "" if cell.sort is None else f' data-sort="{float(cell.sort)!r}"'
            cells.append(f"<td{key}>{escape(cell.text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<div class="scroll"><table class="sortable"><thead><tr>'
        + head
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def render_html(
    board: Leaderboard, title: str, source: str, plots: Plots, root: Path
) -> str:
    """Return the report as one HTML document.

    Args:
        board: The report's tables.
        title: Heading, usually the suite or experiment name.
        source: Where the runs were read from.
        plots: Plots to embed; their paths are relative to ``root``.
        root: Folder the plot paths are relative to.
    """
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<h1>Leaderboard: {escape(title)}</h1>"]
    parts.append(f"<p>Built from MLflow ({escape(source)}) on {stamp}.</p>")
    parts += [f"<p>{escape(line)}</p>" for line in summary_lines(board)]
    notes = board.notes + plots.notes
    if notes:
        items = "".join(f'<li class="note">{escape(n)}</li>' for n in notes)
        parts.append(f"<p>Notes:</p><ul>{items}</ul>")

    parts += ["<h2>Leaderboard</h2>", render_table(build_overall_table(board))]
    parts.append("<h2>Significance</h2>")
    parts += [f"<p>{escape(line)}</p>" for line in significance_lines(board)]
    if plots.cd_diagram is not None:
        parts.append(_figure(plots.cd_diagram, root))

    parts.append("<h2>Per dataset</h2>")
    for heading, table in dataset_tables(board):
        parts += [f"<h3>{escape(heading)}</h3>", render_table(table)]

    figures = [p for p in (plots.rmse, plots.heatmap) if p is not None]
    if figures or plots.bin_weights:
        parts.append("<h2>Plots</h2>")
        for plot in figures + plots.bin_weights:
            parts += [f"<h3>{escape(plot.title)}</h3>", _figure(plot, root)]

    if board.missing.height:
        parts.append(f"<h2>Missing cells ({board.missing.height})</h2>")
        parts.append(render_table(missing_table(board)))
    if board.skipped.height:
        parts.append(f"<h2>Skipped datasets ({board.skipped.height})</h2>")
        parts.append(render_table(skipped_table(board)))
    items = "".join(f"<li>{escape(line)}</li>" for line in method_lines(board))
    parts += ["<h2>Method</h2>", f"<ul>{items}</ul>"]

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Leaderboard: {escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>\n"
        + "\n".join(parts)
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def _figure(plot: Plot, root: Path) -> str:
    data = base64.b64encode((root / plot.path).read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" '
        f'alt="{escape(plot.title)}"><figcaption>{escape(plot.caption)}'
        "</figcaption></figure>"
    )
