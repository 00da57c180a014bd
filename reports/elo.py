"""Elo ratings from pairwise comparisons on datasets, with bootstrap intervals.

This follows the Elo of TabArena's ``EloHelper``. Every dataset is a set of
battles in which each pair of encoders with results on it plays once. The
lower mean test RMSE wins, and equal means are a draw worth half a win each.
Ratings are the maximum-likelihood fit of the Bradley-Terry model,
``P(i beats j) = 1 / (1 + 10 ** ((R_j - R_i) / 400))``, shifted so that the
baseline (TabArena's calibration method) is exactly 1000, or so that the mean
is 1000 when there is no baseline. The 95% interval comes from refitting on
datasets resampled with replacement.

NOTE: TabArena's L2 penalty is negligible (scikit-learn ``C=1e6``). Here the
penalty is 0.1 on the log-odds strengths, because with a few datasets an
encoder often wins every battle and a negligible penalty would then give it a
rating thousands of points high that depends only on the penalty.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

ELO_SCALE = 400.0
ELO_ANCHOR = 1000.0
L2_PENALTY = 0.1
N_BOOTSTRAP = 200
MAX_NEWTON_STEPS = 100


def battle_matrix(means: np.ndarray) -> np.ndarray:
    """Count pairwise wins from a datasets-by-encoders matrix of mean RMSE.

    Args:
        means: Shape ``(n_datasets, n_encoders)``; NaN where an encoder has no
            result, which skips every battle of that encoder on that dataset.

    Returns:
        Shape ``(n_encoders, n_encoders)``: entry ``[i, j]`` is the number of
        datasets where ``i`` beat ``j``, draws counting 0.5.
    """
    a = means[:, :, None]
    b = means[:, None, :]
    played = ~np.isnan(a) & ~np.isnan(b)
    wins = np.where(played, (a < b) + 0.5 * (a == b), 0.0).sum(axis=0)
    np.fill_diagonal(wins, 0.0)
    return wins


def fit_ratings(wins: np.ndarray, l2: float = L2_PENALTY) -> np.ndarray:
    """Fit Bradley-Terry strengths to a win matrix by Newton's method.

    The penalized negative log-likelihood is convex, so Newton steps with step
    halving converge in a few iterations for the few encoders of a benchmark.

    Returns:
        Ratings on the Elo scale (400 points for 10:1 odds), centred on 0.
    """
    k = wins.shape[0]
    games = wins + wins.T
    theta = np.zeros(k)
    value = _penalized_loss(theta, wins, l2)
    for _ in range(MAX_NEWTON_STEPS):
        p_win = _expit(theta[:, None] - theta[None, :])
        weighted = wins * (1.0 - p_win)
        grad = weighted.sum(axis=0) - weighted.sum(axis=1) + l2 * theta
        if np.max(np.abs(grad)) < 1e-10:
            break
        variance = games * p_win * (1.0 - p_win)
        hessian = np.diag(variance.sum(axis=1)) - variance + l2 * np.eye(k)
        step = np.linalg.lstsq(hessian, grad, rcond=None)[0]
        size = 1.0
        candidate = theta - step
        new_value = _penalized_loss(candidate, wins, l2)
        while new_value > value and size > 1e-6:
            size /= 2.0
            candidate = theta - size * step
            new_value = _penalized_loss(candidate, wins, l2)
        if new_value > value:
            break  # No step lowers the loss: converged to rounding error.
        theta, value = candidate, new_value
    return (theta - theta.mean()) * ELO_SCALE / math.log(10.0)


def _penalized_loss(theta: np.ndarray, wins: np.ndarray, l2: float) -> float:
    diff = theta[:, None] - theta[None, :]
    log_win = -np.logaddexp(0.0, -diff)
    return float(-(wins * log_win).sum() + 0.5 * l2 * theta @ theta)


def _expit(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def elo_table(
    per_dataset: pl.DataFrame,
    baseline: str,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
    l2: float = L2_PENALTY,
) -> pl.DataFrame:
    """Return ``elo``, ``elo_low`` and ``elo_high`` (95% interval) per encoder.

    Args:
        per_dataset: One row per (dataset, encoder) with ``rmse_mean``.
        baseline: Encoder pinned to 1000 in the fit and in every resample.
        n_bootstrap: Number of resamples of the datasets.
        seed: Seed of the resampling, so a report is reproducible.
    """
    matrix = per_dataset.pivot(
        on="encoder", index="openml_id", values="rmse_mean"
    ).sort("openml_id")
    encoders = sorted(c for c in matrix.columns if c != "openml_id")
    means = matrix.select(encoders).to_numpy().astype(float)
    anchor = encoders.index(baseline) if baseline in encoders else None

    ratings = _pinned(means, anchor, l2)
    rng = np.random.default_rng(seed)
    samples = np.full((n_bootstrap, len(encoders)), np.nan)
    for index in range(n_bootstrap):
        rows = rng.integers(0, means.shape[0], means.shape[0])
        samples[index] = _pinned(means[rows], anchor, l2)
    low, high = _interval(samples, ratings)
    return pl.DataFrame(
        {
            "encoder": encoders,
            "elo": [None if np.isnan(r) else float(r) for r in ratings],
            "elo_low": low,
            "elo_high": high,
        },
        schema={
            "encoder": pl.String,
            "elo": pl.Float64,
            "elo_low": pl.Float64,
            "elo_high": pl.Float64,
        },
    )


def _pinned(means: np.ndarray, anchor: int | None, l2: float) -> np.ndarray:
    """Fit ratings and shift them to the anchor; NaN for encoders with no battle."""
    wins = battle_matrix(means)
    played = (wins + wins.T).sum(axis=1) > 0
    ratings = np.full(means.shape[1], np.nan)
    if not played.any():
        # A lone encoder has nothing to be compared with: it sits at the anchor.
        if means.shape[1] == 1:
            ratings[:] = ELO_ANCHOR
        elif anchor is not None:
            ratings[anchor] = ELO_ANCHOR
        return ratings
    if anchor is not None and not played[anchor]:
        return ratings
    index = np.flatnonzero(played)
    fitted = fit_ratings(wins[np.ix_(index, index)], l2)
    if anchor is None:
        ratings[index] = fitted + ELO_ANCHOR
    else:
        ratings[index] = fitted - fitted[np.searchsorted(index, anchor)] + ELO_ANCHOR
    return ratings


def _interval(samples: np.ndarray, ratings: np.ndarray) -> tuple[list, list]:
    low, high = [], []
    for column, point in zip(samples.T, ratings, strict=True):
        finite = column[~np.isnan(column)]
        if finite.size == 0 or np.isnan(point):
            low.append(None)
            high.append(None)
            continue
        low.append(float(np.percentile(finite, 2.5)))
        high.append(float(np.percentile(finite, 97.5)))
    return low, high
