"""Hard bins: each value goes to exactly one training bin (not differentiable in x).

Two encoders share the lookup:

- ``onehot-bins``: the one-hot vector of the bin, concatenated over features.
  This is the classical discretization. It has no parameters, so the MLP
  receives a step function of each feature.
- ``bin-embedding``: a learned vector per bin, the table lookup that
  ``soft-bins`` relaxes. As the temperature of ``soft-bins`` goes to zero, its
  output equals this lookup with the same bins and vectors.

Bins come from `encoders.bins.lookup_bins`: half-open ``[e_k, e_k+1)``, except
that the first bin also takes everything below the first edge and the last bin
everything from its left edge upwards.

Search space: ``n_bins`` integer 2-128 and, for ``bin-embedding``,
``d_embedding`` integer 8-32: the ranges of the PLE encoders, so that the
families are compared at the same sizes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from optuna.distributions import BaseDistribution, IntDistribution
from torch import Tensor, nn

from encoders import policies
from encoders.base import Encoder
from encoders.bins import bins_per_feature, lookup_bins, padded_edges
from encoders.checks import require_fitted, require_int


class BinIndex(nn.Module):
    """The bin of each value: ``(batch, n_features) -> (batch, n_features)`` (int64).

    Args:
        bins: Per-feature strictly increasing edges, at least two each.
    """

    def __init__(self, bins: list[Tensor]) -> None:
        super().__init__()
        lower, _, valid = padded_edges(bins)
        # The interior edges are the left edges of bins 1..K-1. Padding with +inf
        # keeps each row sorted, which torch.searchsorted requires.
        interior = lower[:, 1:].masked_fill(~valid[:, 1:], math.inf)
        self.register_buffer("interior_edges", interior)
        self.register_buffer("last_bin", valid.sum(dim=1) - 1)

    def forward(self, x: Tensor) -> Tensor:
        # right=True counts the edges <= x, which is the half-open bin index.
        index = torch.searchsorted(self.interior_edges, x.T.contiguous(), right=True)
        # NaN sorts after +inf padding; the clamp puts it in the last real bin.
        return torch.minimum(index, self.last_bin.unsqueeze(1)).T


class OneHotBins(nn.Module):
    """``(batch, n) -> (batch, total_bins)``: the one-hot bin of each feature.

    Features with fewer bins take fewer columns, so ``d_out`` is the total
    number of bins over all features. The output has the dtype of the module's
    floating buffers (it follows ``module.to(dtype)``).
    """

    def __init__(self, bins: list[Tensor]) -> None:
        super().__init__()
        self.index = BinIndex(bins)
        _, _, valid = padded_edges(bins)
        self.register_buffer("valid", valid)
        self.d_out = int(valid.sum())

    def forward(self, x: Tensor) -> Tensor:
        index = self.index(x)
        n_bins = self.valid.shape[1]
        onehot = nn.functional.one_hot(index, n_bins)
        return onehot[:, self.valid].to(self.index.interior_edges.dtype)


class BinEmbeddings(nn.Module):
    """``(batch, n) -> (batch, n * d_embedding)``: the learned vector of each bin.

    Attributes:
        embeddings: Per-bin vectors, shape (n_features, max_n_bins, d_embedding),
            initialized uniformly in +-1/sqrt(d_embedding). Rows of padded bins
            are never read.
    """

    def __init__(self, bins: list[Tensor], d_embedding: int) -> None:
        super().__init__()
        self.index = BinIndex(bins)
        n_features = len(bins)
        n_bins = max(bins_per_feature(bins))
        bound = 1 / math.sqrt(d_embedding)
        self.embeddings = nn.Parameter(
            torch.empty(n_features, n_bins, d_embedding).uniform_(-bound, bound)
        )
        self.register_buffer("features", torch.arange(n_features))
        self.d_out = n_features * d_embedding

    def forward(self, x: Tensor) -> Tensor:
        return self.embeddings[self.features, self.index(x)].flatten(1)


class _LookupBinsEncoder(Encoder):
    """Fits `lookup_bins` on the training rows and reports them."""

    policy = policies.policy(
        dtype=policies.DTYPE,
        out_of_range=policies.HARD_OUT_OF_RANGE,
        ties=policies.LOOKUP_TIES,
        magnitude=policies.HARD_MAGNITUDE,
        binary=policies.LOOKUP_BINARY,
    )

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        return {"n_bins": IntDistribution(2, 128)}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"n_bins": 32}

    def check_params(self) -> None:
        require_int(self.name, self.params, "n_bins", 2)

    def fit(self, x_train: Tensor, y_train: Tensor | None = None) -> None:
        fitted = lookup_bins(x_train, int(self.params["n_bins"]))
        self.state["bins"] = fitted.edges
        self.state["value_bin_features"] = fitted.value_bin_features
        self.state["tie_split_features"] = fitted.tie_split_features

    def summary(self) -> dict[str, Any]:
        if "bins" not in self.state:
            return {"policy": self.policy}
        return {
            "bins_per_feature": bins_per_feature(self.state["bins"]),
            "value_bin_features": self.state["value_bin_features"],
            "tie_split_features": self.state["tie_split_features"],
            "policy": self.policy,
        }


class OneHotBinsEncoder(_LookupBinsEncoder):
    """Hard quantile bins, one-hot per feature, concatenated."""

    name = "onehot-bins"
    description = "Hard quantile bins, one-hot per feature (classical discretization)."

    def build(self, n_features: int) -> nn.Module:
        return OneHotBins(require_fitted(self, "bins", n_features))


class BinEmbeddingEncoder(_LookupBinsEncoder):
    """Hard quantile bins, a learned vector per bin (table lookup)."""

    name = "bin-embedding"
    description = "Hard quantile bins with a learned vector per bin (table lookup)."

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        return {**super().search_space(), "d_embedding": IntDistribution(8, 32)}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {**super().defaults(), "d_embedding": 16}

    def check_params(self) -> None:
        super().check_params()
        require_int(self.name, self.params, "d_embedding", 1)

    def build(self, n_features: int) -> nn.Module:
        bins = require_fitted(self, "bins", n_features)
        return BinEmbeddings(bins, int(self.params["d_embedding"]))
