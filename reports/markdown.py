"""Markdown rendering of a leaderboard."""

from __future__ import annotations

from datetime import datetime, timezone

from reports.leaderboard import Leaderboard


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}"


def render_markdown(board: Leaderboard, title: str, source: str) -> str:
    """Return the leaderboard as a Markdown document.

    Args:
        title: Heading, usually the suite or experiment name.
        source: Where the runs were read from, shown under the heading.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"# Leaderboard: {title}",
        "",
        f"Built from MLflow ({source}) on {stamp}. Test RMSE is in the target's "
        "original units, mean ± sample standard deviation over final seeds; rank "
        "1 is the lowest mean RMSE on a dataset.",
        "",
        "## Average rank across datasets",
        "",
        _table(
            ["encoder", "average rank", "datasets"],
            [
                [r["encoder"], f"{r['average_rank']:.2f}", str(r["n_datasets"])]
                for r in board.overall.iter_rows(named=True)
            ],
        ),
        "",
        "## Per dataset",
    ]

    for (openml_id, dataset), rows in board.per_dataset.group_by(
        "openml_id", "dataset", maintain_order=True
    ):
        parts += [
            "",
            f"### {dataset} (OpenML {openml_id})",
            "",
            _table(
                ["rank", "encoder", "test RMSE", "MAE", "R²", "seeds"],
                [
                    [
                        _rank(r["rank"]),
                        r["encoder"],
                        f"{_number(r['rmse_mean'])} ± {_number(r['rmse_std'])}",
                        _number(r["mae_mean"]),
                        _number(r["r2_mean"]),
                        str(r["n_seeds"]),
                    ]
                    for r in rows.iter_rows(named=True)
                ],
            ),
        ]

    if board.missing.height:
        parts += [
            "",
            f"## Studies without results ({board.missing.height})",
            "",
            _table(
                ["dataset", "OpenML id", "encoder", "status", "reason"],
                [
                    [
                        r["dataset"],
                        str(r["openml_id"]),
                        r["encoder"],
                        r["status"],
                        r["status_reason"] or "",
                    ]
                    for r in board.missing.iter_rows(named=True)
                ],
            ),
        ]
    return "\n".join(parts) + "\n"


def _rank(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


__all__ = ["render_markdown"]
