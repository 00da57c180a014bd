"""Significance tests: per dataset against the baseline, and across datasets.

Per dataset, an encoder's test RMSE over its final seeds is compared with the
baseline's by Welch's t-test (two-sided, unequal variances). Seeds of different
encoders share the data split but nothing else, so a seed number pairs nothing
and a paired test would be arbitrary. A p-value below ``alpha`` (default 0.05)
is a win when the encoder's mean is lower and a loss when it is higher. Any
other result is a tie. With fewer than two seeds on either side the dataset is
counted as untested.

Across datasets, each encoder is compared with the baseline by the Wilcoxon
signed-rank test on ``log(rmse_encoder / rmse_baseline)``, so the differences
are free of the targets' units, with Holm's step-down correction over all
encoders. The Friedman test and the Nemenyi critical difference (Demšar, 2006,
"Statistical comparisons of classifiers over multiple data sets", JMLR 7)
compare all encoders at once on the datasets where every encoder has results.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

logger = logging.getLogger(__name__)

ALPHA = 0.05


def welch_outcomes(
    finals: pl.DataFrame, baseline: str, alpha: float = ALPHA
) -> pl.DataFrame:
    """Compare every encoder with the baseline on each dataset by Welch's t-test.

    Returns:
        Columns ``openml_id``, ``encoder``, ``p_welch`` (null when untested)
        and ``outcome`` (``win``, ``tie``, ``loss`` or ``untested``).
    """
    samples = finals.group_by("openml_id", "encoder").agg(pl.col("test_rmse"))
    base = samples.filter(pl.col("encoder") == baseline).select(
        "openml_id", base_rmse="test_rmse"
    )
    rows = []
    pairs = samples.filter(pl.col("encoder") != baseline).join(base, on="openml_id")
    for row in pairs.iter_rows(named=True):
        p_value = welch_p(row["test_rmse"], row["base_rmse"])
        delta = float(np.mean(row["test_rmse"]) - np.mean(row["base_rmse"]))
        if p_value is None:
            outcome = "untested"
        elif p_value < alpha and delta < 0:
            outcome = "win"
        elif p_value < alpha and delta > 0:
            outcome = "loss"
        else:
            outcome = "tie"
        rows.append(
            {
                "openml_id": row["openml_id"],
                "encoder": row["encoder"],
                "p_welch": p_value,
                "outcome": outcome,
            }
        )
    schema = {
        "openml_id": pl.Int64,
        "encoder": pl.String,
        "p_welch": pl.Float64,
        "outcome": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def welch_p(sample: list[float], reference: list[float]) -> float | None:
    """Return the two-sided Welch t-test p-value, or None with under two seeds.

    Two samples without spread are decided exactly: p is 0 when their values
    differ and 1 when they are equal (scipy would return NaN or warn).
    """
    a = np.asarray(sample, dtype=float)
    b = np.asarray(reference, dtype=float)
    if a.size < 2 or b.size < 2:
        return None
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 0.0 if a[0] != b[0] else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Return Holm's step-down adjusted p-values, in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * p_values[index]))
        adjusted[index] = running
    return adjusted


def wilcoxon_vs_baseline(per_dataset: pl.DataFrame, baseline: str) -> pl.DataFrame:
    """Run the signed-rank test of each encoder against the baseline.

    Returns:
        Columns ``encoder``, ``wilcoxon_n`` (shared datasets),
        ``wilcoxon_statistic``, ``wilcoxon_p`` and ``wilcoxon_p_holm``; the
        p-values are null for fewer than two shared datasets.
    """
    base = per_dataset.filter(pl.col("encoder") == baseline).select(
        "openml_id", base_rmse="rmse_mean"
    )
    rows = []
    for (encoder,), group in (
        per_dataset.filter(pl.col("encoder") != baseline)
        .join(base, on="openml_id")
        .group_by("encoder")
    ):
        ratios = (group["rmse_mean"] / group["base_rmse"]).log().to_numpy()
        statistic, p_value = _signed_rank(ratios)
        rows.append(
            {
                "encoder": encoder,
                "wilcoxon_n": len(ratios),
                "wilcoxon_statistic": statistic,
                "wilcoxon_p": p_value,
            }
        )
    frame = pl.DataFrame(
        rows,
        schema={
            "encoder": pl.String,
            "wilcoxon_n": pl.Int64,
            "wilcoxon_statistic": pl.Float64,
            "wilcoxon_p": pl.Float64,
        },
    )
    tested = frame.filter(pl.col("wilcoxon_p").is_not_null())
    adjusted = tested.select("encoder").with_columns(
        wilcoxon_p_holm=pl.Series(
            holm(tested["wilcoxon_p"].to_list()), dtype=pl.Float64
        )
    )
    return frame.join(adjusted, on="encoder", how="left").sort("encoder")


def _signed_rank(differences: np.ndarray) -> tuple[float | None, float | None]:
    if differences.size < 2:
        return None, None
    if not np.any(differences != 0):
        # scipy warns and divides by zero here; no difference means no evidence.
        return 0.0, 1.0
    result = stats.wilcoxon(differences)
    return float(result.statistic), float(result.pvalue)


@dataclass
class FriedmanResult:
    """The Friedman test over the datasets where every encoder has results.

    Attributes:
        average_ranks: Average rank per encoder on those datasets.
        critical_difference: Nemenyi critical difference at ``alpha``, in
            ranks; two encoders differ when their average ranks differ by at
            least this much.
        statistic, p_value: Friedman chi-square and its p-value; None with
            fewer than three encoders.
    """

    encoders: list[str]
    datasets: list[int]
    average_ranks: dict[str, float]
    critical_difference: float
    alpha: float
    statistic: float | None
    p_value: float | None


def friedman(per_dataset: pl.DataFrame, alpha: float = ALPHA) -> FriedmanResult | None:
    """Run the Friedman test and the Nemenyi critical difference.

    Returns:
        None when fewer than two encoders or two complete datasets remain.
    """
    matrix = per_dataset.pivot(on="encoder", index="openml_id", values="rmse_mean")
    complete = matrix.drop_nulls().sort("openml_id")
    encoders = sorted(c for c in complete.columns if c != "openml_id")
    if len(encoders) < 2 or complete.height < 2:
        return None
    values = complete.select(encoders).to_numpy()
    ranks = stats.rankdata(values, axis=1).mean(axis=0)
    statistic = p_value = None
    if len(encoders) >= 3:
        result = stats.friedmanchisquare(*values.T)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return FriedmanResult(
        encoders=encoders,
        datasets=complete["openml_id"].to_list(),
        average_ranks=dict(zip(encoders, map(float, ranks), strict=True)),
        critical_difference=nemenyi_cd(len(encoders), complete.height, alpha),
        alpha=alpha,
        statistic=statistic,
        p_value=p_value,
    )


def nemenyi_cd(n_encoders: int, n_datasets: int, alpha: float = ALPHA) -> float:
    """Return the Nemenyi critical difference of average ranks.

    ``CD = q_alpha * sqrt(k (k + 1) / (6 N))``, where ``q_alpha`` is the
    studentized range quantile for ``k`` groups and infinite degrees of freedom,
    divided by sqrt(2).
    """
    k = n_encoders
    q_alpha = stats.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0)
    return float(q_alpha * math.sqrt(k * (k + 1) / (6.0 * n_datasets)))
