"""Bin edges fitted on training rows, shared by the binning encoders."""

from __future__ import annotations

import torch
from rtdl_num_embeddings import compute_bins

from encoders.base import EncoderError


def quantile_bins(x_train: torch.Tensor, n_bins: int) -> list[torch.Tensor]:
    """Return per-feature quantile bin edges of the training rows.

    Edges are the ``n_bins + 1`` quantiles of each column with duplicates
    removed (rtdl_num_embeddings `compute_bins`), so a column with few distinct
    values gets fewer bins. ``n_bins`` is lowered to ``len(x_train) - 1`` when
    the training set is smaller than that.

    Args:
        x_train: Training features, shape (n_rows, n_features), finite.
        n_bins: Requested number of bins per feature, at least 2.

    Returns:
        One float32 CPU tensor of strictly increasing edges per feature.

    Raises:
        EncoderError: if a column is constant or holds non-finite values.
    """
    if n_bins < 2:
        raise EncoderError(f"n_bins={n_bins} is invalid; use at least 2.")
    x = x_train.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        raise EncoderError(
            "Bin fitting got non-finite training values; impute them first."
        )
    constant = [i for i in range(x.shape[1]) if (x[:, i] == x[0, i]).all()]
    if constant:
        raise EncoderError(
            f"Bin fitting got constant training columns at positions {constant}; "
            "drop them before fitting (the preprocessing step does)."
        )
    return compute_bins(x, n_bins=min(n_bins, len(x) - 1))
