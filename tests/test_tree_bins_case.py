"""Tree bins for regression on many correlated features, from training rows only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders import EncoderError
from encoders.bins import tree_bins


def table() -> tuple[torch.Tensor, torch.Tensor]:
    """500 rows, 25 features: x1 = i mod 25, x_j = x1 + (j - 1); y = sin(x1) + ..."""
    i = np.arange(500)
    x1 = (i % 25).astype(np.float32)
    x = np.stack([x1 + j for j in range(25)], axis=1)
    y = np.sin(x1) + 0.01 * (i % 7)
    return torch.tensor(x), torch.tensor(y, dtype=torch.float32)


def test_tree_edges_per_feature():
    x, y = table()
    train = slice(0, 400)
    x[400:] += 1000.0  # rows outside the training part must not move any edge

    bins = tree_bins(x[train], y[train], n_bins=8, tree_kwargs={"min_samples_leaf": 64})

    assert len(bins) == 25
    for j, edges in enumerate(bins):
        column = x[train, j]
        assert torch.all(edges[1:] > edges[:-1]), j
        assert edges[0] == column.min(), j
        assert edges[-1] == column.max(), j
        assert 2 <= len(edges) <= 9, (j, len(edges))


def test_two_dimensional_target_rejected():
    x, y = table()
    with pytest.raises(EncoderError, match=r"shape \(500, 1\)"):
        tree_bins(x, y[:, None], n_bins=8, tree_kwargs={"min_samples_leaf": 64})
