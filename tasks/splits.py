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

    sizes = {"train": len(train), "val": len(val), "test": len(test)}
    if (
        sizes["train"] < MIN_TRAIN_ROWS
        or sizes["val"] < MIN_EVAL_ROWS
        or sizes["test"] < MIN_EVAL_ROWS
    ):
        raise SplitError(
            f"{dataset}: {n_rows} rows give split sizes {sizes}; at least "
            f"{MIN_TRAIN_ROWS} training rows and {MIN_EVAL_ROWS} validation and "
            "test row are needed. Use larger fractions or drop the dataset."
        )

    parts = [np.sort(p).astype(np.int64) for p in (train, val, test)]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.tobytes())
        digest.update(b"|")
    return Split(*parts, seed=seed, hash=digest.hexdigest()[:16])
