"""PNG plots of a report: RMSE per dataset, rank heat map, learned bin weights.

Figures are built with matplotlib's object API (``matplotlib.figure.Figure``),
which renders through the Agg canvas and touches no global pyplot state, so
plotting works without a display and from any thread. `draw_plots` writes every
plot that the data allows into one folder and records in ``Plots.notes`` why
any plot was skipped. A soft-bin encoder (``soft-bin...`` or ``autodis...``)
without logged bin weights gets a note; any other encoder that logs them is
plotted too.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib import colormaps
from matplotlib.figure import Figure

from reports.artifacts import WEIGHT_FAMILY_PREFIXES, WEIGHTS_ARTIFACT, BinWeights
from reports.cd_diagram import draw_cd_diagram
from reports.display import Plot, Plots
from reports.leaderboard import Leaderboard

logger = logging.getLogger(__name__)

DPI = 100


def draw_plots(
    board: Leaderboard, weights: list[BinWeights], folder: Path, relative_to: Path
) -> Plots:
    """Write every plot into ``folder``; paths in the result are relative.

    Args:
        board: The report's tables.
        weights: Learned bin weights read from final runs.
        folder: Folder for the PNG files, created if needed.
        relative_to: Folder of the report files that link to the plots.
    """
    folder.mkdir(parents=True, exist_ok=True)
    plots = Plots()

    def plot(name: str, title: str, caption: str) -> Plot:
        return Plot((folder / name).relative_to(relative_to), title, caption)

    result = board.friedman
    if result is not None:
        draw_cd_diagram(
            result.average_ranks, result.critical_difference, folder / "cd_diagram.png"
        )
        plots.cd_diagram = plot(
            "cd_diagram.png",
            "Critical-difference diagram",
            f"Average ranks on {len(result.datasets)} complete datasets; bars join "
            "encoders the Nemenyi test cannot tell apart.",
        )
    else:
        plots.notes.append("No critical-difference diagram: the test did not run.")

    if board.per_dataset.height:
        order = board.overall["encoder"].to_list()
        draw_rmse(
            board.per_dataset, order, board.baseline, folder / "rmse_per_dataset.png"
        )
        plots.rmse = plot(
            "rmse_per_dataset.png",
            "Test RMSE per dataset",
            "Mean ± standard deviation over final seeds, in the target's units; "
            f"the dashed line is {board.baseline}.",
        )
        draw_rank_heatmap(board.per_dataset, order, folder / "rank_heatmap.png")
        plots.heatmap = plot(
            "rank_heatmap.png",
            "Rank per dataset",
            "Rank 1 is the lowest mean test RMSE; grey cells are missing.",
        )

    for encoder, items in _by_encoder(weights).items():
        name = f"bin_weights_{_slug(encoder)}.png"
        draw_bin_weights(items, folder / name)
        plots.bin_weights.append(
            plot(
                name,
                f"Learned bin weights: {encoder}",
                "Weight of each bin as a function of one feature's value "
                "(preprocessed units), from the lowest-seed final run.",
            )
        )
    plotted = {w.encoder for w in weights}
    for encoder in sorted(set(board.per_dataset["encoder"].to_list()) - plotted):
        if encoder.startswith(WEIGHT_FAMILY_PREFIXES):
            plots.notes.append(
                f"No bin-weight plot for {encoder}: its final runs carry no "
                f"{WEIGHTS_ARTIFACT}."
            )
    return plots


def draw_rmse(
    per_dataset: pl.DataFrame, encoders: list[str], baseline: str, path: Path
) -> Path:
    """Plot mean ± std of test RMSE per encoder, one panel per dataset.

    Args:
        encoders: Encoders from top to bottom of every panel.
    """
    datasets = per_dataset.select("openml_id", "dataset").unique().sort("openml_id")
    columns = min(3, datasets.height)
    rows = math.ceil(datasets.height / columns)
    panel = 0.3 * len(encoders) + 0.6
    figure = _grid_figure(
        rows, columns, panel_height=panel, left=_label_width(encoders), gap_x=0.3
    )
    axes_grid = figure.subplots(rows, columns, squeeze=False, sharey=True)
    colors = colormaps["tab10"]
    for axes, (openml_id, dataset) in zip(
        axes_grid.flat, datasets.iter_rows(), strict=False
    ):
        means = dict(
            per_dataset.filter(pl.col("openml_id") == openml_id)
            .select("encoder", pl.struct("rmse_mean", "rmse_std"))
            .iter_rows()
        )
        found = [i for i, e in enumerate(encoders) if e in means]
        for position in set(range(len(encoders))) - set(found):
            axes.text(
                0.03,
                position,
                "missing",
                va="center",
                color="grey",
                transform=axes.get_yaxis_transform(),
            )
        mean = np.array([means[encoders[i]]["rmse_mean"] for i in found])
        std = np.array([means[encoders[i]]["rmse_std"] for i in found])
        color = [colors(i % 10) for i in found]
        # One call per artist type: a call per encoder is slow for big suites.
        axes.hlines(found, mean - std, mean + std, colors=color, linewidth=1.5)
        ends = np.concatenate([mean - std, mean + std])
        axes.scatter(ends, found * 2, c=color * 2, marker="|", s=60)
        axes.scatter(mean, found, c=color, s=22, zorder=3)
        if baseline in means:
            axes.axvline(means[baseline]["rmse_mean"], color="grey", linestyle="--")
        axes.set_title(f"{dataset} ({openml_id})", fontsize=10)
        axes.set_xlabel("test RMSE")
        axes.grid(axis="x", alpha=0.3)
    first = axes_grid[0, 0]
    first.set_yticks(range(len(encoders)), encoders)
    first.set_ylim(len(encoders) - 0.4, -0.6)
    for axes in list(axes_grid.flat)[datasets.height :]:
        axes.set_visible(False)
    figure.savefig(path, dpi=DPI)
    return path


def draw_rank_heatmap(
    per_dataset: pl.DataFrame, encoders: list[str], path: Path
) -> Path:
    """Plot the rank of every (dataset, encoder) cell, missing cells in grey."""
    datasets = per_dataset.select("openml_id", "dataset").unique().sort("openml_id")
    ranks = np.full((datasets.height, len(encoders)), np.nan)
    lookup = {
        (r["openml_id"], r["encoder"]): r["rank"]
        for r in per_dataset.iter_rows(named=True)
    }
    for i, openml_id in enumerate(datasets["openml_id"]):
        for j, encoder in enumerate(encoders):
            ranks[i, j] = lookup.get((openml_id, encoder), np.nan)

    # Sizes in inches: labels on the left and below, the colour bar on the right.
    labels = [f"{d} ({i})" for i, d in datasets.iter_rows()]
    left = _label_width(labels)
    bottom = 0.3 + 0.045 * max(len(e) for e in encoders)
    grid_width = 0.9 * len(encoders)
    width = left + grid_width + 1.4
    height = bottom + 0.35 * datasets.height + 0.3
    figure = Figure(figsize=(width, height))
    box_bottom = bottom / height
    box_height = 1 - (bottom + 0.3) / height
    axes = figure.add_axes((left / width, box_bottom, grid_width / width, box_height))
    colorbar_left = (left + grid_width + 0.15) / width
    colorbar_axes = figure.add_axes(
        (colorbar_left, box_bottom, 0.15 / width, box_height)
    )

    cmap = colormaps["RdYlGn_r"].with_extremes(bad="lightgrey")
    image = axes.imshow(
        np.ma.masked_invalid(ranks),
        cmap=cmap,
        vmin=1,
        vmax=max(len(encoders), 2),
        aspect="auto",
    )
    for (i, j), value in np.ndenumerate(ranks):
        text = "–" if np.isnan(value) else f"{value:g}"
        axes.text(j, i, text, ha="center", va="center", fontsize=9)
    axes.set_xticks(range(len(encoders)), encoders, rotation=30, ha="right")
    axes.set_yticks(range(datasets.height), labels)
    figure.colorbar(image, cax=colorbar_axes, label="rank (1 = lowest RMSE)")
    figure.savefig(path, dpi=DPI)
    return path


def draw_bin_weights(items: list[BinWeights], path: Path) -> Path:
    """Plot each bin's weight against the feature value, one panel per dataset."""
    columns = min(3, len(items))
    rows = math.ceil(len(items) / columns)
    figure = _grid_figure(rows, columns, panel_height=2.4, left=0.7, gap_x=0.85)
    axes_grid = figure.subplots(rows, columns, squeeze=False)
    for axes, item in zip(axes_grid.flat, items, strict=False):
        n_bins = item.weights.shape[1]
        colors = colormaps["viridis"](np.linspace(0.0, 1.0, n_bins))
        for b in range(n_bins):
            axes.plot(item.values, item.weights[:, b], color=colors[b], linewidth=1.0)
        title = f"{item.dataset}: {item.feature} (seed {item.seed})"
        axes.set_title(title, fontsize=10)
        axes.set_xlabel(f"{item.feature} (preprocessed units)")
        axes.set_ylabel("bin weight")
    for axes in list(axes_grid.flat)[len(items) :]:
        axes.set_visible(False)
    figure.savefig(path, dpi=DPI)
    return path


def _grid_figure(
    rows: int, columns: int, panel_height: float, left: float, gap_x: float
) -> Figure:
    """Return a figure sized for a grid of titled panels; sizes in inches.

    Margins are set by hand because matplotlib's layout engines doubled the
    drawing time of a six-panel figure (matplotlib 3.11, measured here).
    """
    panel_width = 3.6
    gap_y = 0.85
    width = left + columns * panel_width + (columns - 1) * gap_x + 0.2
    height = rows * panel_height + (rows - 1) * gap_y + 0.95
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(
        left=left / width,
        right=1 - 0.2 / width,
        bottom=0.55 / height,
        top=1 - 0.4 / height,
        wspace=gap_x / panel_width,
        hspace=gap_y / panel_height,
    )
    return figure


def _label_width(labels: list[str]) -> float:
    """Return the width in inches that tick labels of these strings need."""
    return 0.3 + 0.075 * max((len(label) for label in labels), default=4)


def _by_encoder(weights: list[BinWeights]) -> dict[str, list[BinWeights]]:
    grouped: dict[str, list[BinWeights]] = {}
    for item in sorted(weights, key=lambda w: (w.encoder, w.openml_id)):
        grouped.setdefault(item.encoder, []).append(item)
    return grouped


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
