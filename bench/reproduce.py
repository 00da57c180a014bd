"""Compare our results under a protocol preset with the published ones.

Published values live in data files ``bench/published/PROTOCOL.toml``, one per
protocol: the suite they belong to, the metric, dataset names, and per encoder
of this benchmark the publication's name for it and one value per OpenML id.
`compare` joins them with our mean test metric per (dataset, encoder), read
from MLflow, and `render_markdown` writes the table.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import polars as pl
from mlflow.tracking import MlflowClient

from bench.preset_names import packaged_names
from reports.collect import collect_results

MISSING = "n/a"


class PublishedError(LookupError):
    """No published results exist for a protocol, or their file is invalid."""


@dataclass(frozen=True)
class Published:
    """Published results of one protocol.

    Attributes:
        protocol: Name of the preset that reproduces the publication.
        suite: Name of the suite holding its datasets.
        metric: Final-run metric the values are in, e.g. ``test_rmse``.
        source: The publication, for the table's caption.
        datasets: Display name per OpenML id.
        paper_names: The publication's name per encoder of this benchmark.
        values: Published value per (OpenML id, encoder).
    """

    protocol: str
    suite: str
    metric: str
    source: str
    datasets: dict[int, str]
    paper_names: dict[str, str]
    values: dict[tuple[int, str], float]


@dataclass(frozen=True)
class ComparisonRow:
    """One (dataset, encoder) line of a comparison.

    ``ours`` is the mean over our final runs and ``ours_std`` their sample
    standard deviation; both are None when we have no finished run.
    ``difference_pct`` is ``100 * (ours - published) / published``, so a
    positive value means a larger (worse) RMSE than published.
    """

    openml_id: int
    dataset: str
    encoder: str
    paper_name: str
    ours: float | None
    ours_std: float | None
    n_runs: int
    published: float | None

    @property
    def difference_pct(self) -> float | None:
        if self.ours is None or self.published is None or self.published == 0:
            return None
        return 100.0 * (self.ours - self.published) / self.published


def published_protocols() -> list[str]:
    """Return the protocols that have a file of published results."""
    return packaged_names("published")


def load_published(protocol: str) -> Published:
    """Read ``bench/published/PROTOCOL.toml``.

    Raises:
        PublishedError: if the file does not exist or lacks a required key.
    """
    resource = resources.files("bench") / "published" / f"{protocol}.toml"
    if not resource.is_file():
        raise PublishedError(
            f"No published results for protocol {protocol!r}; protocols with "
            f"published results: {', '.join(published_protocols())}."
        )
    document = tomllib.loads(resource.read_text())
    try:
        return _parse_published(document)
    except (KeyError, TypeError, ValueError) as error:
        raise PublishedError(
            f"bench/published/{protocol}.toml is invalid: {type(error).__name__} "
            f"{error}."
        ) from None


def _parse_published(document: dict[str, Any]) -> Published:
    values: dict[tuple[int, str], float] = {}
    paper_names: dict[str, str] = {}
    for encoder, table in document["encoders"].items():
        paper_names[encoder] = str(table.get("paper_name", encoder))
        for openml_id, value in table["values"].items():
            values[(int(openml_id), encoder)] = float(value)
    return Published(
        protocol=str(document["protocol"]),
        suite=str(document["suite"]),
        metric=str(document["metric"]),
        source=str(document.get("source", "")),
        datasets={int(k): str(v) for k, v in document["datasets"].items()},
        paper_names=paper_names,
        values=values,
    )


def our_results(
    tracking_uri: str,
    experiment: str,
    metric: str,
    preset_fingerprint: str | None = None,
) -> pl.DataFrame:
    """Return our mean, standard deviation and count of ``metric`` per pair.

    The runs are those a report would count (see `reports.collect`): per
    (dataset, encoder) the newest study with final runs, among the studies of
    the preset with ``preset_fingerprint`` when it is given.

    Returns:
        Columns ``openml_id``, ``encoder``, ``mean``, ``std`` and ``n``; no
        rows when the experiment does not exist.
    """
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    schema = {
        "openml_id": pl.Int64,
        "encoder": pl.String,
        "mean": pl.Float64,
        "std": pl.Float64,
        "n": pl.UInt32,
    }
    if found is None:
        return pl.DataFrame(schema=schema)
    finals = collect_results(client, found.experiment_id, preset_fingerprint).finals
    return (
        finals.filter(pl.col(metric).is_not_null())
        .group_by("openml_id", "encoder")
        .agg(
            mean=pl.col(metric).mean(),
            std=pl.col(metric).std(),
            n=pl.len(),
        )
        .cast(schema)
    )


def compare(
    published: Published,
    ours: pl.DataFrame,
    encoders: list[str],
    dataset_ids: list[int] | None = None,
) -> list[ComparisonRow]:
    """Pair our results with the published ones, dataset by dataset.

    Args:
        published: The publication's values.
        ours: Output of `our_results`.
        encoders: Encoders to list, in this order; one without a published
            value gets None there (shown as "n/a").
        dataset_ids: OpenML ids to list (default: every published dataset).
    """
    found = {
        (row["openml_id"], row["encoder"]): row for row in ours.iter_rows(named=True)
    }
    rows = []
    for openml_id in dataset_ids or list(published.datasets):
        for encoder in encoders:
            mine = found.get((openml_id, encoder))
            std = mine["std"] if mine else None
            rows.append(
                ComparisonRow(
                    openml_id=openml_id,
                    dataset=published.datasets.get(openml_id, str(openml_id)),
                    encoder=encoder,
                    paper_name=published.paper_names.get(encoder, MISSING),
                    ours=mine["mean"] if mine else None,
                    ours_std=None if std is None or math.isnan(std) else std,
                    n_runs=mine["n"] if mine else 0,
                    published=published.values.get((openml_id, encoder)),
                )
            )
    return rows


def render_markdown(
    rows: list[ComparisonRow],
    published: Published,
    budget: str,
    notes: Sequence[str] = (),
) -> str:
    """Return the comparison as a Markdown document with one table.

    Args:
        budget: A sentence naming the budget our numbers come from.
        notes: Warnings to print above the table, one paragraph each.
    """
    metric = published.metric.removeprefix("test_").upper()
    lines = [
        f"# Reproduction of {published.source} ({published.protocol})",
        "",
        budget,
        "",
        *(line for note in notes for line in (f"Warning: {note}", "")),
        f"| dataset | encoder | paper name | our test {metric} (mean ± std) "
        f"| runs | published | difference |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        ours = MISSING
        if row.ours is not None:
            ours = _number(row.ours)
            if row.ours_std is not None:
                ours += f" ± {_number(row.ours_std)}"
        published_text = MISSING if row.published is None else _number(row.published)
        difference = row.difference_pct
        difference_text = MISSING if difference is None else f"{difference:+.1f}%"
        lines.append(
            f"| {row.dataset} | {row.encoder} | {row.paper_name} | {ours} "
            f"| {row.n_runs} | {published_text} | {difference_text} |"
        )
    lines += [
        "",
        "difference: (ours - published) / published; a positive value is a "
        f"larger {metric} than published.",
        "",
    ]
    return "\n".join(lines)


def _number(value: float) -> str:
    """Format with 4 significant digits, without exponent below 1e7."""
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        digits = max(0, 3 - math.floor(math.log10(abs(value)))) if value else 0
        return f"{value:.{digits}f}"
    return f"{value:.4g}"
