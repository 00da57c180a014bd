"""Splits of a preset: one split method, and the resamples of a dataset.

A preset splits rows either by fractions of all rows (``method =
"fractions"``, the default) or as Grinsztajn et al. (NeurIPS 2022) do
(``method = "capped-train"``). ``resamples`` sets how many random splits a
dataset gets: resample ``r`` uses split seed ``seed + r``. Tuning always runs
on resample 0, and final seed ``s`` trains and tests on resample
``s % n_resamples`` (see `bench.study`).
"""

from __future__ import annotations

import logging

from bench.config import RESAMPLES_AUTO, Preset
from tasks.splits import (
    Split,
    make_capped_split,
    make_split,
    resamples_for_test_size,
)

logger = logging.getLogger(__name__)


def split_rows(preset: Preset, n_rows: int, seed: int, dataset: str) -> Split:
    """Split ``n_rows`` rows with the preset's method and the given seed.

    Raises:
        tasks.splits.SplitError: if a part would be too small; the message
            names ``dataset``.
    """
    if preset.split_method == "capped-train":
        assert preset.train_fraction is not None and preset.val_share is not None
        return make_capped_split(
            n_rows,
            seed=seed,
            train_fraction=preset.train_fraction,
            train_cap=preset.train_cap,
            val_share=preset.val_share,
            val_cap=preset.val_cap,
            test_cap=preset.test_cap,
            dataset=dataset,
        )
    assert preset.val_fraction is not None and preset.test_fraction is not None
    return make_split(
        n_rows,
        seed=seed,
        val_fraction=preset.val_fraction,
        test_fraction=preset.test_fraction,
        train_cap=preset.train_cap,
        dataset=dataset,
    )


def resample_count(preset: Preset, first: Split) -> int:
    """Return the number of resamples for a dataset whose first split is ``first``.

    ``resamples = "auto"`` applies `tasks.splits.resamples_for_test_size` to
    the test size of the first split.
    """
    if preset.resamples == RESAMPLES_AUTO:
        return resamples_for_test_size(len(first.test))
    return int(preset.resamples)


def resample_splits(
    preset: Preset, n_rows: int, first: Split, dataset: str
) -> list[Split]:
    """Return the resamples a run uses, ``first`` (seed ``split_seed``) first.

    Only the first ``n_seeds`` resamples are built, because final seed ``s``
    uses resample ``s % n_resamples`` and no seed reaches the others.
    """
    count = resample_count(preset, first)
    if preset.n_seeds < count:
        logger.warning(
            "%s: %d resamples but only %d final seeds, so resamples %d and later "
            "are never tested; raise --seeds to at least %d",
            dataset,
            count,
            preset.n_seeds,
            preset.n_seeds,
            count,
        )
    return [first] + [
        split_rows(preset, n_rows, preset.split_seed + r, dataset)
        for r in range(1, min(count, preset.n_seeds))
    ]
