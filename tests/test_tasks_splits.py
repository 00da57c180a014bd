"""Seeded train / validation / test splits."""

from __future__ import annotations

import numpy as np
import pytest

from tasks import make_split
from tasks.splits import SplitError


def test_split_repeats_for_same_arguments():
    first = make_split(1232, seed=3, val_fraction=0.16, test_fraction=0.2)
    second = make_split(1232, seed=3, val_fraction=0.16, test_fraction=0.2)

    np.testing.assert_array_equal(first.train, second.train)
    np.testing.assert_array_equal(first.val, second.val)
    np.testing.assert_array_equal(first.test, second.test)
    assert first.hash == second.hash
    assert first.seed == 3


def test_split_seed_changes_hash():
    hashes = {
        make_split(1232, seed=seed, val_fraction=0.16, test_fraction=0.2).hash
        for seed in range(5)
    }

    assert len(hashes) == 5


def test_split_fractions_change_hash():
    base = make_split(1232, seed=0, val_fraction=0.16, test_fraction=0.2)
    other = make_split(1232, seed=0, val_fraction=0.2, test_fraction=0.16)

    assert base.hash != other.hash


@pytest.mark.parametrize("n_rows", [10, 1232, 3107])
@pytest.mark.parametrize("seed", [0, 1])
def test_split_parts_disjoint_and_complete(n_rows: int, seed: int):
    split = make_split(n_rows, seed=seed, val_fraction=0.16, test_fraction=0.2)
    train, val, test = set(split.train), set(split.val), set(split.test)

    assert not train & val
    assert not train & test
    assert not val & test
    assert train | val | test == set(range(n_rows))
    for part in (split.train, split.val, split.test):
        assert part.dtype == np.int64
        assert np.all(np.diff(part) > 0)


@pytest.mark.parametrize(
    ("n_rows", "val_fraction", "test_fraction", "expected"),
    [
        (1232, 0.16, 0.2, {"train": 789, "val": 197, "test": 246}),
        (100, 0.29, 0.1, {"train": 61, "val": 29, "test": 10}),
        (15, 0.1, 0.1, {"train": 13, "val": 1, "test": 1}),
        (25, 0.1, 0.1, {"train": 21, "val": 2, "test": 2}),
    ],
)
def test_split_sizes_round_down(
    n_rows: int, val_fraction: float, test_fraction: float, expected: dict
):
    split = make_split(
        n_rows, seed=0, val_fraction=val_fraction, test_fraction=test_fraction
    )

    assert split.sizes() == expected


def test_train_cap_limits_training_rows():
    full = make_split(3107, seed=0, val_fraction=0.16, test_fraction=0.2)
    capped = make_split(
        3107, seed=0, val_fraction=0.16, test_fraction=0.2, train_cap=500
    )

    assert len(capped.train) == 500
    assert set(capped.train) <= set(full.train)
    np.testing.assert_array_equal(capped.val, full.val)
    np.testing.assert_array_equal(capped.test, full.test)
    assert capped.hash != full.hash


def test_train_cap_above_rows_changes_nothing():
    full = make_split(100, seed=0, val_fraction=0.2, test_fraction=0.2)
    capped = make_split(
        100, seed=0, val_fraction=0.2, test_fraction=0.2, train_cap=10**6
    )

    assert capped.hash == full.hash


@pytest.mark.parametrize("train_cap", [0, -5])
def test_train_cap_below_one_rejected(train_cap: int):
    with pytest.raises(SplitError) as raised:
        make_split(
            100,
            seed=0,
            val_fraction=0.2,
            test_fraction=0.2,
            train_cap=train_cap,
            dataset="capped",
        )

    assert "capped" in str(raised.value)
    assert f"train_cap ({train_cap})" in str(raised.value)


def test_nine_rows_too_few_for_validation():
    with pytest.raises(SplitError) as raised:
        make_split(9, seed=0, val_fraction=0.1, test_fraction=0.2, dataset="tiny set")

    message = str(raised.value)
    assert "tiny set" in message
    assert "9 rows" in message
    assert "'val': 0" in message
    assert "'test': 1" in message
    assert "'train': 8" in message


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction"),
    [(0.0, 0.2), (0.2, 1.0), (0.5, 0.5), (-0.1, 0.2)],
)
def test_invalid_fractions_rejected(val_fraction: float, test_fraction: float):
    with pytest.raises(SplitError) as raised:
        make_split(
            100,
            seed=0,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            dataset="fractions",
        )

    assert "fractions" in str(raised.value)
