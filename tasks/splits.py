"""Deterministic train / validation / test splits with a recorded hash."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

MIN_TRAIN_ROWS = 2
MIN_EVAL_ROWS = 1
# Slack for float products such as 100 * 0.29 = 28.999999999999996, which
# must round down to 29 rows, not 28.
ROUNDING_SLACK = 1e-6


class SplitError(ValueError):
    """A split is impossible for the given sizes; the message names the dataset."""


@dataclass(frozen=True)
class Split:
    """Row indices of the three parts of one dataset.

    Attributes:
        train, val, test: Sorted, disjoint row indices into the dataset.
        seed: Seed of the permutation that made the split.
        hash: First 16 hex digits of the SHA-256 of the three index arrays, so
            two runs can tell whether they used the same rows.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int
    hash: str

    def sizes(self) -> dict[str, int]:
        """Return the number of rows in each part."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def make_split(
    n_rows: int,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    train_cap: int | None = None,
    dataset: str = "dataset",
) -> Split:
    """Split ``n_rows`` rows at random into train, validation and test.

    ``test_fraction`` and ``val_fraction`` are fractions of all rows, rounded
    down to whole rows, so neither part is larger than requested. The rest is
    training data, of which at most ``train_cap`` rows are kept (the others
    are left out of every part). The same arguments always give the same split.

    Raises:
        SplitError: if ``train_cap`` is below 1, or a part would have fewer
            rows than the minimum (2 for train, 1 for validation and test),
            naming ``dataset`` and the sizes.
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1):
        raise SplitError(
            f"{dataset}: val_fraction ({val_fraction}) and test_fraction "
            f"({test_fraction}) must each lie strictly between 0 and 1."
        )
    if val_fraction + test_fraction >= 1:
        raise SplitError(
            f"{dataset}: val_fraction + test_fraction = "
            f"{val_fraction + test_fraction} leaves no training rows; it must be "
            "below 1."
        )
    if train_cap is not None and train_cap < 1:
        raise SplitError(
            f"{dataset}: train_cap ({train_cap}) must be at least 1. Leave it "
            "unset to keep every training row."
        )

    order = np.random.default_rng(seed).permutation(n_rows)
    n_test = math.floor(n_rows * test_fraction + ROUNDING_SLACK)
    n_val = math.floor(n_rows * val_fraction + ROUNDING_SLACK)
    test = order[:n_test]
    val = order[n_test : n_test + n_val]
    train = order[n_test + n_val :]
    if train_cap is not None:
        train = train[:train_cap]

    _check_sizes(
        dataset, n_rows, train, val, test, "Use larger fractions or drop the dataset."
    )
    return _finish(train, val, test, seed)


def _check_sizes(
    dataset: str,
    n_rows: int,
    train: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    advice: str,
) -> None:
    """Raise `SplitError` naming the sizes if a part is below its minimum."""
    sizes = {"train": len(train), "val": len(val), "test": len(test)}
    if (
        sizes["train"] < MIN_TRAIN_ROWS
        or sizes["val"] < MIN_EVAL_ROWS
        or sizes["test"] < MIN_EVAL_ROWS
    ):
        raise SplitError(
            f"{dataset}: {n_rows} rows give split sizes {sizes}; at least "
            f"{MIN_TRAIN_ROWS} training rows and {MIN_EVAL_ROWS} validation and "
            f"test row are needed. {advice}"
        )


def _finish(train: np.ndarray, val: np.ndarray, test: np.ndarray, seed: int) -> Split:
    parts = [np.sort(p).astype(np.int64) for p in (train, val, test)]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.tobytes())
        digest.update(b"|")
    return Split(*parts, seed=seed, hash=digest.hexdigest()[:16])


def make_capped_split(
    n_rows: int,
    *,
    seed: int,
    train_fraction: float,
    train_cap: int | None,
    val_share: float,
    val_cap: int | None = None,
    test_cap: int | None = None,
    dataset: str = "dataset",
) -> Split:
    """Split ``n_rows`` rows as Grinsztajn et al. (NeurIPS 2022) do.

    The training part takes ``min(floor(n_rows * train_fraction), train_cap)``
    rows. Of the rows left, ``val_share`` (rounded down) go to validation and
    the others to test. Validation and test are then cut to ``val_cap`` and
    ``test_cap`` rows, and rows beyond a cap are left out of every part.
    The same arguments always give the same split.

    Raises:
        SplitError: if a fraction lies outside (0, 1), a cap is below 1, or a
            part would have fewer rows than the minimum (2 for train, 1 for
            validation and test), naming ``dataset``.
    """
    for name, value in (("train_fraction", train_fraction), ("val_share", val_share)):
        if not 0 < value < 1:
            raise SplitError(
                f"{dataset}: {name} ({value}) must lie strictly between 0 and 1."
            )
    for name, cap in (("train_cap", train_cap), ("val_cap", val_cap)):
        if cap is not None and cap < 1:
            raise SplitError(f"{dataset}: {name} ({cap}) must be at least 1.")
    if test_cap is not None and test_cap < 1:
        raise SplitError(f"{dataset}: test_cap ({test_cap}) must be at least 1.")

    order = np.random.default_rng(seed).permutation(n_rows)
    n_train = math.floor(n_rows * train_fraction + ROUNDING_SLACK)
    if train_cap is not None:
        n_train = min(n_train, train_cap)
    rest = order[n_train:]
    n_val = math.floor(len(rest) * val_share + ROUNDING_SLACK)
    train, val, test = order[:n_train], rest[:n_val], rest[n_val:]
    if val_cap is not None:
        val = val[:val_cap]
    if test_cap is not None:
        test = test[:test_cap]

    _check_sizes(
        dataset,
        n_rows,
        train,
        val,
        test,
        "Use a larger train_fraction or val_share, or drop the dataset.",
    )
    return _finish(train, val, test, seed)


# Resampling rule of Grinsztajn et al. (NeurIPS 2022), from
# src/run_experiment.py of github.com/LeoGrin/tabular-benchmark: the smaller
# the test part, the more random splits a result is averaged over.
RESAMPLE_RULE: tuple[tuple[int, int], ...] = ((6000, 1), (3000, 2), (1000, 3))
RESAMPLES_FOR_SMALL_TEST = 5


def resamples_for_test_size(n_test: int) -> int:
    """Return how many random splits to average over for ``n_test`` test rows.

    More than 6,000 test rows give 1 split, more than 3,000 give 2, more than
    1,000 give 3, and 1,000 or fewer give 5.
    """
    for threshold, count in RESAMPLE_RULE:
        if n_test > threshold:
            return count
    return RESAMPLES_FOR_SMALL_TEST
