"""Critical-difference diagram of average ranks (Demšar, 2006).

The axis runs from rank 1 (left, best) to rank k. Each encoder hangs from its
average rank to a label, the better half on the left and the rest on the
right. A thick bar joins every maximal group of encoders whose average ranks
differ by less than the Nemenyi critical difference, that is, encoders the test
cannot tell apart. The figure is drawn with matplotlib's object API and the
Agg canvas, so no display and no global pyplot state are needed.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

ROW = 0.32
AXIS_WIDTH = 5.5
CHAR_WIDTH = 0.085


def cliques(ranks: list[float], critical_difference: float) -> list[tuple[int, int]]:
    """Return maximal (first, last) index runs of sorted ranks within the CD.

    Args:
        ranks: Average ranks in ascending order.
        critical_difference: Ranks closer than this are not different.
    """
    groups: list[tuple[int, int]] = []
    for first in range(len(ranks)):
        last = first
        while (
            last + 1 < len(ranks)
            and ranks[last + 1] - ranks[first] < critical_difference
        ):
            last += 1
        if last > first and not any(g[1] >= last for g in groups):
            groups.append((first, last))
    return groups


def draw_cd_diagram(
    average_ranks: dict[str, float], critical_difference: float, path: Path
) -> Path:
    """Write the diagram as a PNG to ``path`` and return ``path``."""
    names = sorted(average_ranks, key=lambda n: (average_ranks[n], n))
    ranks = [average_ranks[n] for n in names]
    k = len(names)
    groups = cliques(ranks, critical_difference)
    half = math.ceil(k / 2)
    label_rows = max(half, k - half)
    bars_depth = 0.15 + 0.12 * len(groups)
    bottom = -(bars_depth + ROW * (label_rows + 0.5))

    labels = [f"{name} ({rank:.2f})" for name, rank in zip(names, ranks, strict=True)]
    # Inches: room for the longest label on each side of the rank axis.
    margin = 0.5 + CHAR_WIDTH * max(len(label) for label in labels)
    width = AXIS_WIDTH + 2 * margin
    left, right = margin / width, 1.0 - margin / width

    figure = Figure(figsize=(width, 1.4 + 0.45 * (label_rows + len(groups) / 3)))
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_axis_off()
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(bottom, 0.9)

    def x(rank: float) -> float:
        return left + (right - left) * (rank - 1.0) / max(k - 1, 1)

    axes.plot([x(1), x(k)], [0, 0], color="black", linewidth=1.2)
    for tick in range(1, k + 1):
        axes.plot([x(tick)] * 2, [0, 0.06], color="black", linewidth=1.0)
        axes.text(x(tick), 0.1, str(tick), ha="center", va="bottom", fontsize=10)
    for tick in range(1, k):
        axes.plot([x(tick + 0.5)] * 2, [0, 0.03], color="black", linewidth=0.7)

    cd_end = min(1.0 + critical_difference, float(max(k, 2)))
    axes.plot([x(1), x(cd_end)], [0.55, 0.55], color="black", linewidth=1.5)
    for end in (1.0, cd_end):
        axes.plot([x(end)] * 2, [0.5, 0.6], color="black", linewidth=1.5)
    axes.text(
        (x(1) + x(cd_end)) / 2,
        0.63,
        f"CD = {critical_difference:.2f}",
        ha="center",
        va="bottom",
        fontsize=10,
    )

    for index, (first, last) in enumerate(groups):
        y = -0.12 - 0.12 * index
        axes.plot(
            [x(ranks[first]) - 0.006, x(ranks[last]) + 0.006],
            [y, y],
            color="black",
            linewidth=4,
            solid_capstyle="round",
        )

    for index in range(k):
        on_left = index < half
        row = index if on_left else k - 1 - index
        y = -(bars_depth + ROW * (row + 1))
        end = left - 0.02 if on_left else right + 0.02
        axes.plot([x(ranks[index])] * 2, [0, y], color="black", linewidth=0.8)
        axes.plot([x(ranks[index]), end], [y, y], color="black", linewidth=0.8)
        axes.text(
            end - 0.01 if on_left else end + 0.01,
            y,
            labels[index],
            ha="right" if on_left else "left",
            va="center",
            fontsize=10,
        )
    figure.savefig(path, dpi=110)
    return path
