"""Rows shared between split parts, and de-duplication before splitting."""

from __future__ import annotations

import numpy as np
import polars as pl

from tasks.duplicates import drop_duplicate_rows, rows_shared


def table_with_copies() -> pl.DataFrame:
    """800 unique rows, then exact copies of rows 1 to 200."""
    unique = pl.DataFrame({"x": np.arange(800) * 1.5, "y": np.arange(800) % 7})
    return pl.concat([unique, unique[1:201]])


def test_shared_test_rows_counted():
    frame = table_with_copies()
    index = np.arange(frame.height)
    test = index[index % 5 == 0]
    train = index[index % 5 != 0]

    assert frame.height == 1000
    assert rows_shared(frame, train, test) == 80


def test_deduplication_removes_overlap():
    frame, dropped = drop_duplicate_rows(table_with_copies())
    index = np.arange(frame.height)
    test = index[index % 5 == 0]
    train = index[index % 5 != 0]

    assert dropped == 200
    assert frame.height == 800
    assert rows_shared(frame, train, test) == 0


def test_nulls_compare_equal():
    frame = pl.DataFrame({"x": [None, None, 1.0], "y": [1, 1, 2]})
    assert rows_shared(frame, np.array([0]), np.array([1, 2])) == 1
