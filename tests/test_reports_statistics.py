"""Statistics of the report checked against hand-computed and scipy values."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from reports.cd_diagram import cliques
from reports.elo import battle_matrix, elo_table, fit_ratings
from reports.significance import (
    friedman,
    holm,
    nemenyi_cd,
    welch_outcomes,
    welch_p,
    wilcoxon_vs_baseline,
)
from reports.tables import add_normalized_scores, add_ranks, average_ranks


def per_dataset(table: dict[str, list[float]]) -> pl.DataFrame:
    """Build per-dataset rows from {encoder: [mean RMSE on dataset 1, 2, ...]}."""
    rows = [
        {"openml_id": index + 1, "encoder": encoder, "rmse_mean": value, "n_seeds": 1}
        for encoder, values in table.items()
        for index, value in enumerate(values)
        if value is not None
    ]
    return pl.DataFrame(rows)


def by_key(frame: pl.DataFrame, column: str) -> dict[tuple[int, str], float]:
    return {
        (r["openml_id"], r["encoder"]): r[column] for r in frame.iter_rows(named=True)
    }


def test_ranks_with_ties_by_hand():
    frame = add_ranks(
        per_dataset(
            {
                "a": [1.0, 2.0, 5.0],
                "b": [2.0, 2.0, 4.0],
                "c": [3.0, 1.0, None],
            }
        )
    )
    ranks = by_key(frame, "rank")
    assert ranks == {
        (1, "a"): 1.0,
        (1, "b"): 2.0,
        (1, "c"): 3.0,
        (2, "a"): 2.5,
        (2, "b"): 2.5,
        (2, "c"): 1.0,
        (3, "a"): 2.0,
        (3, "b"): 1.0,
    }
    scored = add_normalized_scores(frame)
    overall = {r["encoder"]: r for r in average_ranks(scored).iter_rows(named=True)}
    assert overall["a"]["average_rank"] == pytest.approx((1 + 2.5 + 2) / 3)
    assert overall["b"]["average_rank"] == pytest.approx((2 + 2.5 + 1) / 3)
    assert overall["c"]["average_rank"] == pytest.approx(2.0)
    assert overall["c"]["n_datasets"] == 2


def test_normalized_score_hand_example():
    # RMSE 1, 2, 3, 5: best 1, median 2.5, so (2.5 - x) / 1.5, clipped at 0.
    frame = add_normalized_scores(
        per_dataset({"a": [1.0], "b": [2.0], "c": [3.0], "d": [5.0]})
    )
    scores = by_key(frame, "normalized_score")
    assert scores[(1, "a")] == pytest.approx(1.0)
    assert scores[(1, "b")] == pytest.approx(1 / 3)
    assert scores[(1, "c")] == 0.0
    assert scores[(1, "d")] == 0.0


def test_normalized_score_degenerate_datasets():
    # Dataset 1 has one encoder; on dataset 2 the best equals the median.
    frame = add_normalized_scores(
        per_dataset({"a": [4.0, 1.0], "b": [None, 1.0], "c": [None, 2.0]})
    )
    scores = by_key(frame, "normalized_score")
    assert scores[(1, "a")] == 1.0
    assert scores[(2, "a")] == 1.0
    assert scores[(2, "b")] == 1.0
    assert scores[(2, "c")] == 0.0


def test_wilcoxon_matches_scipy():
    base = [10.0, 1.0, 100.0, 5.0, 2.0, 40.0, 7.0]
    enc = [9.0, 1.1, 90.0, 4.0, 1.9, 41.0, 6.0]
    frame = per_dataset({"none": base, "x": enc})
    result = wilcoxon_vs_baseline(frame, "none").row(0, named=True)
    expected = stats.wilcoxon(np.log(np.array(enc) / np.array(base)))
    assert result["encoder"] == "x"
    assert result["wilcoxon_n"] == 7
    assert result["wilcoxon_statistic"] == pytest.approx(expected.statistic)
    assert result["wilcoxon_p"] == pytest.approx(expected.pvalue)
    assert result["wilcoxon_p_holm"] == pytest.approx(expected.pvalue)


def test_wilcoxon_without_differences():
    frame = per_dataset({"none": [1.0, 2.0, 3.0], "x": [1.0, 2.0, 3.0], "y": [1.0]})
    result = {
        r["encoder"]: r
        for r in wilcoxon_vs_baseline(frame, "none").iter_rows(named=True)
    }
    assert result["x"]["wilcoxon_p"] == 1.0
    assert result["y"]["wilcoxon_p"] is None
    assert result["y"]["wilcoxon_p_holm"] is None


def test_holm_known_values():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 with a running maximum.
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_friedman_known_table():
    # Ranks per dataset (a, b, c): (1,2,3) (1,2,3) (1,3,2) (2,1,3); rank sums
    # 5, 8, 11, so chi-square = 12 N / (k (k + 1)) * sum(R^2) - 3 N (k + 1)
    # = 12 * 4 / 12 * (1.5625 + 4 + 7.5625) - 3 * 4 * 4 = 4.5.
    frame = per_dataset(
        {
            "a": [1.0, 1.0, 1.0, 2.0],
            "b": [2.0, 2.0, 3.0, 1.0],
            "c": [3.0, 3.0, 2.0, 3.0],
        }
    )
    result = friedman(frame)
    assert result is not None
    assert result.statistic == pytest.approx(4.5)
    assert result.p_value == pytest.approx(math.exp(-4.5 / 2))
    assert result.average_ranks == pytest.approx({"a": 1.25, "b": 2.0, "c": 2.75})
    assert result.datasets == [1, 2, 3, 4]


def test_friedman_drops_incomplete_datasets():
    frame = per_dataset(
        {"a": [1.0, 1.0, 1.0], "b": [2.0, None, 2.0], "c": [3.0, 3.0, 3.0]}
    )
    result = friedman(frame)
    assert result is not None
    assert result.datasets == [1, 3]
    assert friedman(per_dataset({"a": [1.0], "b": [2.0]})) is None


def test_nemenyi_critical_difference():
    # Four classifiers on 14 data sets at alpha 0.05: q = 2.569, CD = 1.25.
    assert nemenyi_cd(4, 14) == pytest.approx(2.569 * math.sqrt(20 / 84), abs=1e-3)
    assert nemenyi_cd(2, 10) == pytest.approx(1.960 * math.sqrt(6 / 60), abs=1e-3)


def test_cd_cliques_maximal_groups():
    assert cliques([1.0, 1.5, 2.0, 3.5], 1.1) == [(0, 2)]
    assert cliques([1.0, 1.5, 2.2, 3.0], 1.0) == [(0, 1), (1, 2), (2, 3)]
    assert cliques([1.0, 3.0], 1.0) == []


def test_welch_matches_scipy():
    a, b = [1.0, 1.2, 0.9], [1.5, 1.6, 1.4, 1.7]
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert welch_p(a, b) == pytest.approx(expected)
    assert welch_p([1.0], b) is None
    assert welch_p([1.0, 1.0], [2.0, 2.0]) == 0.0
    assert welch_p([1.0, 1.0], [1.0, 1.0]) == 1.0


def test_welch_outcomes_classified():
    rows = []
    samples = {
        "none": [1.0, 1.1, 0.9],
        "better": [0.5, 0.55, 0.45],
        "worse": [2.0, 2.1, 1.9],
        "same": [1.05, 0.95, 1.0],
        "single": [0.1],
    }
    for encoder, values in samples.items():
        for seed, value in enumerate(values):
            rows.append(
                {"openml_id": 1, "encoder": encoder, "seed": seed, "test_rmse": value}
            )
    outcomes = welch_outcomes(pl.DataFrame(rows), "none")
    result = dict(zip(outcomes["encoder"], outcomes["outcome"], strict=True))
    assert result == {
        "better": "win",
        "worse": "loss",
        "same": "tie",
        "single": "untested",
    }


def test_battle_matrix_skips_missing():
    means = np.array([[1.0, 2.0, np.nan], [2.0, 2.0, 1.0]])
    wins = battle_matrix(means)
    assert wins.tolist() == [[0.0, 1.5, 0.0], [0.5, 0.0, 0.0], [1.0, 1.0, 0.0]]


def test_elo_two_players_exact():
    # Three wins in four games: 400 log10(3) = 190.85 points apart.
    ratings = fit_ratings(np.array([[0.0, 3.0], [1.0, 0.0]]), l2=0.0)
    assert ratings[0] - ratings[1] == pytest.approx(400 * math.log10(3), abs=0.01)


def test_elo_table_pins_baseline():
    frame = per_dataset(
        {
            "none": [1.0, 1.0, 1.0, 1.0, 1.0],
            "good": [0.9, 0.9, 0.9, 1.1, 0.9],
            "bad": [1.2, 1.1, 1.3, 0.9, 1.2],
        }
    )
    table = {
        r["encoder"]: r
        for r in elo_table(frame, "none", n_bootstrap=50).iter_rows(named=True)
    }
    assert table["none"]["elo"] == 1000.0
    assert table["good"]["elo"] > 1000.0 > table["bad"]["elo"]
    for row in table.values():
        assert row["elo_low"] <= row["elo"] + 1e-9
        assert row["elo"] <= row["elo_high"] + 1e-9
    again = elo_table(frame, "none", n_bootstrap=50)
    assert again["elo_low"].to_list() == [table[e]["elo_low"] for e in again["encoder"]]


def test_elo_without_baseline_centred():
    frame = per_dataset({"a": [1.0, 2.0], "b": [2.0, 3.0]})
    table = elo_table(frame, "none", n_bootstrap=10)
    assert table["elo"].mean() == pytest.approx(1000.0)
    single = elo_table(per_dataset({"none": [1.0, 2.0]}), "none", n_bootstrap=10)
    assert single["elo"].to_list() == [1000.0]
