"""Bin weights of a soft-bin encoder as a function of the input value.

An encoder module that defines ``weights(x)``, mapping ``(batch, n_features)``
to ``(batch, n_features, n_bins)``, gets its weights for one feature recorded
over a grid of values, so a report can plot where each bin is active.
"""

from __future__ import annotations

from typing import Any

import torch

from bench.model import Regressor

GRID_POINTS = 200


@torch.inference_mode()
def bin_weight_profile(
    model: Regressor, x_train: torch.Tensor, names: list[str], feature_index: int = 0
) -> dict[str, Any] | None:
    """Return one feature's bin weights over its training range, or None.

    Args:
        model: A trained model; None is returned unless its encoder defines
            ``weights``.
        x_train: Preprocessed training features, shape (n_rows, n_features);
            the grid spans the feature's training minimum to maximum.
        names: Feature names, in column order.
        feature_index: The feature to profile.

    Returns:
        ``{"feature", "feature_index", "values", "weights"}`` where ``values``
        has ``GRID_POINTS`` input values (preprocessed units) and ``weights``
        one list of bin weights per value, padding bins left out.
    """
    encoder = model.encoder
    if encoder is None or not hasattr(encoder, "weights") or not x_train.shape[1]:
        return None

    column = x_train[:, feature_index]
    grid = torch.linspace(float(column.min()), float(column.max()), GRID_POINTS)
    inputs = torch.zeros(GRID_POINTS, x_train.shape[1], device=x_train.device)
    inputs[:, feature_index] = grid.to(x_train.device)
    encoder.eval()
    weights = encoder.weights(inputs)[:, feature_index, :]

    mask = getattr(encoder, "mask", None)
    if mask is not None:
        weights = weights[:, mask[feature_index]]
    return {
        "feature": names[feature_index],
        "feature_index": feature_index,
        "values": grid.tolist(),
        "weights": weights.float().cpu().tolist(),
    }
