"""Bin edges fitted on training rows, shared by the binning encoders.

Two edge policies exist because the encoders use bins in two different ways:

- `quantile_bins` and `tree_bins` return the edges of rtdl_num_embeddings
  `compute_bins` unchanged, for piecewise-linear encoding (PLE). PLE is
  continuous in the value, so a value on an edge or a feature with a single
  bin loses no information.
- `lookup_bins` returns edges for encoders that give each value one bin
  (``onehot-bins``, ``bin-embedding``, ``soft-bins``). It changes the quantile
  edges so that every training value lies strictly inside one bin and every
  feature has at least two bins (see the function for the rules).

All edges are float32 CPU tensors, strictly increasing, and lie within the
training minimum and maximum of their feature.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from rtdl_num_embeddings import compute_bins
from torch import Tensor

from encoders.base import EncoderError


@contextmanager
def ignore_single_bin_warning() -> Iterator[None]:
    """Silence rtdl_num_embeddings' warning about features with a single bin.

    `compute_bins` and `PiecewiseLinearEmbeddings` warn once per such feature.
    The encoders report those features in ``summary()`` instead.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"The \d+-th feature has just two bin edges"
        )
        yield


def _training_features(x_train: Tensor) -> Tensor:
    """Return the training features as float32 on the CPU, or raise if unusable."""
    if x_train.ndim != 2 or x_train.shape[0] < 2 or x_train.shape[1] < 1:
        raise EncoderError(
            f"Bin fitting needs a (n_rows >= 2, n_features >= 1) tensor, got shape "
            f"{tuple(x_train.shape)}."
        )
    x = x_train.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        raise EncoderError(
            "Bin fitting got non-finite training values (NaN, inf, or values beyond "
            "the float32 range); impute or rescale them first."
        )
    constant = [i for i in range(x.shape[1]) if (x[:, i] == x[0, i]).all()]
    if constant:
        raise EncoderError(
            f"Bin fitting got constant training columns at positions {constant}; "
            "drop them before fitting (the preprocessing step does)."
        )
    return x


def _check_n_bins(n_bins: int) -> None:
    if n_bins < 2:
        raise EncoderError(f"n_bins={n_bins} is invalid; use at least 2.")


def quantile_bins(x_train: Tensor, n_bins: int) -> list[Tensor]:
    """Return per-feature quantile bin edges of the training rows.

    Edges are the ``n_bins + 1`` quantiles of each column with duplicates
    removed (rtdl_num_embeddings `compute_bins`), so a column with few distinct
    values gets fewer bins, possibly a single one. ``n_bins`` is lowered to
    ``len(x_train) - 1`` when the training set is smaller than that.

    Args:
        x_train: Training features, shape (n_rows, n_features), finite.
        n_bins: Requested number of bins per feature, at least 2.

    Returns:
        One float32 CPU tensor of strictly increasing edges per feature.

    Raises:
        EncoderError: if a column is constant or contains non-finite values.
    """
    _check_n_bins(n_bins)
    x = _training_features(x_train)
    with ignore_single_bin_warning():
        return compute_bins(x, n_bins=min(n_bins, len(x) - 1))


def tree_bins(
    x_train: Tensor,
    y_train: Tensor | None,
    n_bins: int,
    tree_kwargs: dict[str, Any],
) -> list[Tensor]:
    """Return per-feature target-aware bin edges from one decision tree per feature.

    rtdl_num_embeddings `compute_bins` fits a scikit-learn
    ``DecisionTreeRegressor(max_leaf_nodes=n_bins, **tree_kwargs)`` on each
    column against the target and uses the split thresholds, plus the column's
    minimum and maximum, as edges. A column without a useful split gets a
    single bin.

    Args:
        x_train: Training features, shape (n_rows, n_features), finite.
        y_train: Training target, shape (n_rows,), finite.
        n_bins: Maximum number of bins per feature, at least 2.
        tree_kwargs: Keyword arguments of the tree, without ``max_leaf_nodes``.

    Raises:
        EncoderError: if ``y_train`` is missing or does not match ``x_train``, or
            for the reasons of `quantile_bins`.
    """
    _check_n_bins(n_bins)
    x = _training_features(x_train)
    if y_train is None:
        raise EncoderError("Tree bins need the training target; pass y_train to fit().")
    y = y_train.detach().to("cpu", torch.float32)
    if y.shape != (len(x),):
        raise EncoderError(
            f"y_train has shape {tuple(y_train.shape)}; tree bins need shape "
            f"({len(x)},), one target value per training row."
        )
    if not torch.isfinite(y).all():
        raise EncoderError(
            "y_train contains non-finite values; tree bins need a finite target."
        )
    with ignore_single_bin_warning():
        return compute_bins(
            x,
            n_bins=min(n_bins, len(x) - 1),
            tree_kwargs=tree_kwargs,
            y=y,
            regression=True,
        )


@dataclass
class LookupBins:
    """Edges from `lookup_bins` and the features that needed a special rule.

    Attributes:
        edges: One float32 tensor of strictly increasing edges per feature.
        value_bin_features: Features with at most ``n_bins`` distinct training
            values, which got one bin per value.
        tie_split_features: Features whose quantile edges collapsed to a single
            bin (a value with most of the rows at the minimum or maximum), which got
            that value split off into its own bin.
    """

    edges: list[Tensor]
    value_bin_features: list[int] = field(default_factory=list)
    tie_split_features: list[int] = field(default_factory=list)


def _midpoints(lower: Tensor, upper: Tensor) -> Tensor:
    """Return float32 midpoints, computed in float64 to avoid overflow."""
    return ((lower.double() + upper.double()) / 2).float()


def _split_most_frequent(column: Tensor, values: Tensor) -> Tensor:
    """Return edges that put the column's most frequent value in a bin of its own."""
    position = int(torch.searchsorted(values, column.mode().values))
    cuts = []
    if position > 0:
        cuts.append(_midpoints(values[position - 1], values[position]))
    if position < len(values) - 1:
        cuts.append(_midpoints(values[position], values[position + 1]))
    return torch.stack([values[0], *cuts, values[-1]]).unique()


def lookup_bins(x_train: Tensor, n_bins: int) -> LookupBins:
    """Return per-feature bin edges for encoders that assign each value one bin.

    The rules, per feature, on the distinct training values ``v``:

    1. At most ``n_bins`` distinct values (a binary or small integer column):
       one bin per value, with edges at the midpoints between neighbours and at
       the minimum and maximum.
    2. Otherwise, the quantile edges of `quantile_bins`, with each interior
       edge moved to the midpoint between the two distinct training values
       around it. A training value then never lies on an interior edge, and each
       value stays in the bin it had under half-open bins ``[e_k, e_k+1)``.
       Edges that land on the same midpoint merge, which removes only bins that
       contained no training value.
    3. If rule 2 leaves a single bin (for example 97% zeros with 32 bins), the
       most frequent value gets a bin of its own.

    Args:
        x_train: Training features, shape (n_rows, n_features), finite.
        n_bins: Maximum number of bins per feature, at least 2.

    Returns:
        The edges (at least three per feature, so at least two bins) and the
        features that rules 1 and 3 applied to.

    Raises:
        EncoderError: if a column is constant or contains non-finite values.
    """
    # NOTE: two neighbouring float32 values have no float32 midpoint, so at
    # magnitudes where the data uses every representable value, an edge can
    # still fall on a training value.
    _check_n_bins(n_bins)
    x = _training_features(x_train)
    result = LookupBins(edges=[])
    for j in range(x.shape[1]):
        column = x[:, j]
        values = column.unique()
        if len(values) <= n_bins:
            result.value_bin_features.append(j)
            middle = _midpoints(values[:-1], values[1:])
            edges = torch.cat([values[:1], middle, values[-1:]]).unique()
        else:
            with ignore_single_bin_warning():
                quantiles = compute_bins(column[:, None], n_bins=n_bins)[0]
            interior = quantiles[1:-1]
            above = torch.searchsorted(values, interior)
            snapped = _midpoints(values[above - 1], values[above])
            edges = torch.cat([values[:1], snapped, values[-1:]]).unique()
        if len(edges) < 3:
            result.tie_split_features.append(j)
            edges = _split_most_frequent(column, values)
        result.edges.append(edges)
    return result


def padded_edges(bins: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Stack per-feature edges of different lengths into padded tensors.

    Returns:
        ``(lower, upper, valid)``, each of shape (n_features, max_n_bins):
        the left and right edge of every bin, and whether the bin exists.
        Padded bins get ``lower = upper = 0`` and ``valid = False``.
    """
    n_bins = [len(edges) - 1 for edges in bins]
    shape = (len(bins), max(n_bins))
    lower = torch.zeros(shape)
    upper = torch.zeros(shape)
    valid = torch.zeros(shape, dtype=torch.bool)
    for j, (edges, k) in enumerate(zip(bins, n_bins, strict=True)):
        edges = edges.to("cpu", torch.float32)
        lower[j, :k] = edges[:-1]
        upper[j, :k] = edges[1:]
        valid[j, :k] = True
    return lower, upper, valid


def bins_per_feature(bins: list[Tensor]) -> list[int]:
    """Return the number of bins of each feature."""
    return [len(edges) - 1 for edges in bins]


def single_bin_features(bins: list[Tensor]) -> list[int]:
    """Return the positions of features that have a single bin."""
    return [j for j, edges in enumerate(bins) if len(edges) == 2]
