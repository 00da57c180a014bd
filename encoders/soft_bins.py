"""Soft bins: a differentiable table lookup over per-feature bin embeddings.

For feature j with K_j bins, each bin k holds a learned vector E[j, k] and an
interval [c_k - h_k, c_k + h_k] whose centre c_k and half-width h_k are
learnable and start at the training quantile bins. A value x gets the scores

    s_k(x) = -max(|x - c_k| - h_k, 0) / (tau_j * w_j)

(minus its distance to bin k, in units of the feature's median bin width
w_j), the weights softmax(s), and the output sum_k softmax(s)_k * E[j, k].
This is attention with x as the query and the bins as keys. As tau goes to
0 the weights become one-hot on the bin that contains x, which is the hard
bin-embedding lookup. The idea of a softmax over bins with a temperature
follows AutoDis (Guo et al., KDD 2021); the distance scores are this
project's variant.

Search space: ``n_bins`` integer 2-128, ``d_embedding`` integer 8-32,
``temperature`` log-uniform 0.03-3 (in bin widths), ``learn_temperature``
True or False.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from torch import Tensor, nn

from encoders.base import Encoder, EncoderError
from encoders.bins import quantile_bins


class SoftBinEmbeddings(nn.Module):
    """``(batch, n) -> (batch, n * d_embedding)`` by a softmax over bins.

    Features with fewer bins than the largest count are padded; padded bins get
    a score of minus infinity, so they never receive weight.
    """

    def __init__(
        self,
        bins: list[Tensor],
        d_embedding: int,
        temperature: float,
        learn_temperature: bool,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise EncoderError(f"temperature={temperature} is invalid; use > 0.")
        n_features = len(bins)
        n_bins = max(len(edges) - 1 for edges in bins)

        lower = torch.zeros(n_features, n_bins)
        upper = torch.ones(n_features, n_bins)
        mask = torch.zeros(n_features, n_bins, dtype=torch.bool)
        widths = torch.ones(n_features)
        for j, edges in enumerate(bins):
            edges = edges.to(torch.float32)
            k = len(edges) - 1
            lower[j, :k] = edges[:-1]
            upper[j, :k] = edges[1:]
            mask[j, :k] = True
            widths[j] = (edges[1:] - edges[:-1]).median()

        self.centres = nn.Parameter((lower + upper) / 2)
        self.log_half_widths = nn.Parameter(((upper - lower) / 2).clamp_min(1e-6).log())
        self.register_buffer("mask", mask)
        self.register_buffer("widths", widths)
        log_tau = torch.full((n_features,), math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_temperature", log_tau)

        bound = 1 / math.sqrt(d_embedding)
        self.embeddings = nn.Parameter(
            torch.empty(n_features, n_bins, d_embedding).uniform_(-bound, bound)
        )
        self.d_out = n_features * d_embedding

    def weights(self, x: Tensor) -> Tensor:
        """Return the bin weights, shape (batch, n_features, n_bins)."""
        distance = (x.unsqueeze(-1) - self.centres).abs() - self.log_half_widths.exp()
        scale = self.log_temperature.exp() * self.widths
        scores = -distance.clamp_min(0) / scale.unsqueeze(-1)
        scores = scores.masked_fill(~self.mask, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        weights = self.weights(x)
        return torch.einsum("bnk,nkd->bnd", weights, self.embeddings).flatten(1)


class SoftBinsEncoder(Encoder):
    """Soft bins with distance scores to quantile-anchored learnable bins."""

    name = "soft-bins"
    description = (
        "Softmax over quantile-anchored learnable bins, weighted sum of per-bin "
        "vectors (differentiable lookup)."
    )

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        return {
            "n_bins": IntDistribution(2, 128),
            "d_embedding": IntDistribution(8, 32),
            "temperature": FloatDistribution(0.03, 3.0, log=True),
            "learn_temperature": CategoricalDistribution([True, False]),
        }

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {
            "n_bins": 32,
            "d_embedding": 16,
            "temperature": 0.3,
            "learn_temperature": True,
        }

    def fit(self, x_train: Tensor, y_train: Tensor | None = None) -> None:
        self.state["bins"] = quantile_bins(x_train, int(self.params["n_bins"]))

    def build(self, n_features: int) -> nn.Module:
        return SoftBinEmbeddings(
            self.state["bins"],
            d_embedding=int(self.params["d_embedding"]),
            temperature=float(self.params["temperature"]),
            learn_temperature=bool(self.params["learn_temperature"]),
        )

    def summary(self) -> dict[str, Any]:
        return {"bins_per_feature": [len(b) - 1 for b in self.state["bins"]]}
