"""Piecewise-linear encoding (PLE) with quantile bins, from rtdl_num_embeddings.

Gorishniy, Rubachev, Babenko, "On Embeddings for Numerical Features in Tabular
Deep Learning", NeurIPS 2022. ``ple-quantile`` is their Q-LR variant: PLE on
quantile bins, then a per-feature linear layer and ReLU
(`rtdl_num_embeddings.PiecewiseLinearEmbeddings` with ``activation=True`` and
``version="B"``).

Search space (the package's recommended ranges): ``n_bins`` integer 2-128,
``d_embedding`` integer 8-32.
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import BaseDistribution, IntDistribution
from rtdl_num_embeddings import PiecewiseLinearEmbeddings
from torch import Tensor, nn

from encoders.base import Encoder
from encoders.bins import quantile_bins


class FlatPLE(nn.Module):
    """``(batch, n) -> (batch, n * d_embedding)`` through PLE embeddings."""

    def __init__(self, bins: list[Tensor], d_embedding: int) -> None:
        super().__init__()
        self.embeddings = PiecewiseLinearEmbeddings(
            bins, d_embedding, activation=True, version="B"
        )
        self.d_out = len(bins) * d_embedding

    def forward(self, x: Tensor) -> Tensor:
        return self.embeddings(x).flatten(1)


class QuantilePLEEncoder(Encoder):
    """Q-LR: piecewise-linear encoding on quantile bins, then linear + ReLU."""

    name = "ple-quantile"
    description = "Piecewise-linear encoding on quantile bins, linear + ReLU (Q-LR)."

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        return {
            "n_bins": IntDistribution(2, 128),
            "d_embedding": IntDistribution(8, 32),
        }

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"n_bins": 48, "d_embedding": 16}

    def fit(self, x_train: Tensor, y_train: Tensor | None = None) -> None:
        self.state["bins"] = quantile_bins(x_train, int(self.params["n_bins"]))

    def build(self, n_features: int) -> nn.Module:
        return FlatPLE(self.state["bins"], int(self.params["d_embedding"]))

    def summary(self) -> dict[str, Any]:
        return {"bins_per_feature": [len(b) - 1 for b in self.state["bins"]]}
