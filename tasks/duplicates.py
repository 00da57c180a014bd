"""Exact duplicate rows, within a table and across split parts."""

from __future__ import annotations

import numpy as np
import polars as pl


def rows_shared(frame: pl.DataFrame, train: np.ndarray, other: np.ndarray) -> int:
    """Return how many rows of ``other`` equal some training row exactly.

    Every column counts, target included; nulls compare equal to nulls.

    Args:
        frame: The whole table.
        train, other: Row indices of the training part and of the part to
            check (validation or test).
    """
    if len(other) == 0 or len(train) == 0:
        return 0
    seen = frame[train].unique()
    shared = frame[other].join(seen, on=frame.columns, how="semi", nulls_equal=True)
    return shared.height


def drop_duplicate_rows(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Return the table without exact duplicate rows (first kept), and the count
    of rows dropped."""
    unique = frame.unique(keep="first", maintain_order=True)
    return unique, frame.height - unique.height
