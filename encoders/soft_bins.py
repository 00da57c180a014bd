"""Soft bins: a differentiable table lookup over per-feature bin embeddings.

For feature j with K_j bins, bin k has a learned vector E[j, k] and a
learned interval [l_k, u_k] that starts at the training bin [e_k, e_k+1]
from `encoders.bins.lookup_bins`. A value x gets the scores

    s_k(x) = -(relu(l_k - x) + relu(x - u_k)) / (tau_j * w_j)

(minus its distance to interval k, in units of the feature's median bin width
w_j), the weights softmax(s), and the output sum_k softmax(s)_k * E[j, k].
This is attention with x as the query and the bins as keys. The distance is
exactly 0 inside the interval, so as tau goes to 0 the weights become one-hot
on the bin that contains x: the output equals the hard lookup of
``bin-embedding`` with the same bins and vectors. A value on an edge shared by
two bins gets half of each, but `lookup_bins` puts no training value on an
interior edge. Values outside the span of the bins are first clamped to it,
which does not change the weights of ordered bins (see the forward pass), so
a far-out value puts its weight on the nearest bin. The idea of a softmax
over bins with a temperature follows AutoDis (Guo et al., KDD 2021, see
``autodis``), and the distance scores are this project's variant.

Parameters:

- ``temperature_mode``: ``fixed``, ``learned`` (per feature), or ``annealed``
  from ``temperature`` to ``temperature * anneal_ratio`` over training. Annealing
  needs the trainer to call `encoders.set_training_progress` (see
  `encoders.temperature`).
- ``top_k``: if > 0, only the k highest-scoring bins of each feature get
  weight (renormalized to sum to 1). 0 keeps all bins.

NOTE: one forward + backward step costs about 1.7x that of ``ple-quantile``
at 32 bins (`encoders.speed.time_encoders` defaults: batch 256, 8 features,
d_embedding 16; 2-core AMD EPYC CPU, 2 torch threads). The softmax and the
weighted sum alone cost about as much as the whole PLE step, and the learned
edges and temperature add the rest.

Search space: ``n_bins`` integer 2-128 and ``d_embedding`` integer 8-32 (the
PLE ranges, so that both are compared at the same sizes), ``temperature``
log-uniform 0.03-3 in bin widths, ``temperature_mode`` fixed, learned or
annealed. The temperature range and the modes are this project's choice.
``top_k`` is left out of the space by default; a preset can add it.
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

from encoders import policies
from encoders.base import Encoder
from encoders.bins import bins_per_feature, lookup_bins, padded_edges
from encoders.checks import (
    require_choice,
    require_fitted,
    require_int,
    require_positive,
)
from encoders.temperature import TEMPERATURE_MODES, Temperature, keep_top_k


class SoftBinEmbeddings(nn.Module):
    """``(batch, n) -> (batch, n * d_embedding)`` by a softmax over bins.

    Features with fewer bins than the largest count are padded. Padded bins get
    a score of minus infinity, so they never receive weight.

    Args:
        bins: Per-feature strictly increasing edges, at least two each.
        d_embedding: Size of each bin vector.
        temperature: Initial temperature, in units of the median bin width.
        temperature_mode: One of ``fixed``, ``learned``, ``annealed``.
        anneal_ratio: Final over initial temperature in ``annealed`` mode.
        top_k: Number of bins that keep weight per feature; 0 keeps all.

    Attributes:
        signed_edges: The learned intervals, shape (2, n_features, 1, n_bins):
            ``[lower; -upper]``, so that ``relu(signed_edges + [-x; x])`` is
            the distance below and above each interval (see `lower`, `upper`).
        embeddings: Per-bin vectors, shape (n_features, n_bins, d_embedding),
            initialized uniformly in +-1/sqrt(d_embedding).
    """

    def __init__(
        self,
        bins: list[Tensor],
        d_embedding: int,
        temperature: float,
        temperature_mode: str = "learned",
        anneal_ratio: float = 0.01,
        top_k: int = 0,
    ) -> None:
        super().__init__()
        lower, upper, valid = padded_edges(bins)
        n_features, n_bins = lower.shape
        # Padded bins sit at the feature's last edge, inside its span, so that
        # the span used for clamping in the forward pass covers real bins only.
        last_edges = torch.stack([edges[-1] for edges in bins]).float()
        lower = torch.where(valid, lower, last_edges.unsqueeze(1))
        upper = torch.where(valid, upper, last_edges.unsqueeze(1))
        widths = torch.stack([(e[1:] - e[:-1]).median() for e in bins]).float()
        self.register_buffer("widths", widths)
        self.register_buffer("negative_inverse_widths", -1 / widths)

        # One stacked parameter, so that both distances take one addition and
        # one ReLU over (2, n, batch, n_bins) instead of two of each.
        self.signed_edges = nn.Parameter(torch.stack([lower, -upper]).unsqueeze(2))
        # Added to the scores: 0 for real bins, -inf for padding. None when no
        # feature is padded, which saves one operation per step.
        padding = None
        if not valid.all():
            padding = torch.zeros(n_features, 1, n_bins)
            padding = padding.masked_fill(~valid.unsqueeze(1), -math.inf)
        self.register_buffer("padding", padding)
        self.register_buffer("signs", torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1))
        self.temperature = Temperature(
            n_features, temperature, temperature_mode, anneal_ratio
        )
        bound = 1 / math.sqrt(d_embedding)
        self.embeddings = nn.Parameter(
            torch.empty(n_features, n_bins, d_embedding).uniform_(-bound, bound)
        )
        self.top_k = top_k
        self.d_out = n_features * d_embedding

    @property
    def lower(self) -> Tensor:
        """Left interval edges, shape (n_features, n_bins), a view."""
        return self.signed_edges[0, :, 0]

    @property
    def upper(self) -> Tensor:
        """Right interval edges, shape (n_features, n_bins), a copy."""
        return -self.signed_edges[1, :, 0]

    def set_progress(self, fraction: float) -> None:
        """Set the fraction of training done, for an annealed temperature."""
        self.temperature.set_progress(fraction)

    def _feature_major_weights(self, x: Tensor) -> Tensor:
        # The layout is (n_features, batch, n_bins), so that the lookup in
        # forward() is one batched matmul without copies.
        edges = self.signed_edges.detach()
        lowest = edges[0, :, 0].amin(dim=-1, keepdim=True)
        highest = -edges[1, :, 0].amin(dim=-1, keepdim=True)
        # Clamping x to the span of the bins shifts every distance of an outside
        # value by the same amount, which leaves the softmax unchanged for
        # ordered bins. Without it, x - edge rounds to the same float32 number
        # for every bin once |x| is large (1e12), and all bins get equal weight.
        column = torch.clamp(x.T, lowest, highest).unsqueeze(-1)
        # Inside an interval both ReLU terms are exactly 0, which makes the limit
        # tau -> 0 exactly the hard lookup.
        distance = torch.relu(self.signed_edges + column * self.signs).sum(dim=0)
        # scores = -distance / (tau * width). One product with a (n_features,)
        # factor is cheaper than a division of the (n, batch, n_bins) tensor.
        factor = self.temperature.inverse() * self.negative_inverse_widths
        scores = distance * factor[:, None, None]
        if self.padding is not None:
            scores = scores + self.padding
        return torch.softmax(keep_top_k(scores, self.top_k), dim=-1)

    def weights(self, x: Tensor) -> Tensor:
        """Return the bin weights, shape (batch, n_features, n_bins)."""
        return self._feature_major_weights(x).transpose(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        weights = self._feature_major_weights(x)
        lookup = torch.bmm(weights, self.embeddings)
        return lookup.transpose(0, 1).reshape(len(x), self.d_out)


class SoftBinsEncoder(Encoder):
    """Soft bins with distance scores to quantile-anchored learnable bins."""

    name = "soft-bins"
    description = (
        "Softmax over quantile-anchored learnable bins, weighted sum of per-bin "
        "vectors (differentiable lookup)."
    )
    policy = policies.policy(
        dtype=policies.DTYPE,
        out_of_range=policies.SOFT_OUT_OF_RANGE,
        ties=policies.LOOKUP_TIES,
        magnitude=policies.SOFT_MAGNITUDE,
        binary=policies.LOOKUP_BINARY,
    )

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        return {
            "n_bins": IntDistribution(2, 128),
            "d_embedding": IntDistribution(8, 32),
            "temperature": FloatDistribution(0.03, 3.0, log=True),
            "temperature_mode": CategoricalDistribution(
                ["fixed", "learned", "annealed"]
            ),
        }

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {
            "n_bins": 32,
            "d_embedding": 16,
            "temperature": 0.3,
            "temperature_mode": "learned",
            "anneal_ratio": 0.01,
            "top_k": 0,
        }

    def check_params(self) -> None:
        require_int(self.name, self.params, "n_bins", 2)
        require_int(self.name, self.params, "d_embedding", 1)
        require_positive(self.name, self.params, "temperature")
        require_choice(self.name, self.params, "temperature_mode", TEMPERATURE_MODES)
        require_positive(self.name, self.params, "anneal_ratio")
        require_int(self.name, self.params, "top_k", 0)

    def fit(self, x_train: Tensor, y_train: Tensor | None = None) -> None:
        fitted = lookup_bins(x_train, int(self.params["n_bins"]))
        self.state["bins"] = fitted.edges
        self.state["value_bin_features"] = fitted.value_bin_features
        self.state["tie_split_features"] = fitted.tie_split_features

    def build(self, n_features: int) -> nn.Module:
        module = SoftBinEmbeddings(
            require_fitted(self, "bins", n_features),
            d_embedding=int(self.params["d_embedding"]),
            temperature=float(self.params["temperature"]),
            temperature_mode=str(self.params["temperature_mode"]),
            anneal_ratio=float(self.params["anneal_ratio"]),
            top_k=int(self.params["top_k"]),
        )
        self._built = module
        return module

    def summary(self) -> dict[str, Any]:
        """Return the fitted bins, the policy and, once built, the temperature.

        ``temperature`` describes the most recently built module at the time of
        the call, so after training it contains the learned or annealed values.
        """
        result: dict[str, Any] = {}
        if "bins" in self.state:
            result = {
                "bins_per_feature": bins_per_feature(self.state["bins"]),
                "value_bin_features": self.state["value_bin_features"],
                "tie_split_features": self.state["tie_split_features"],
            }
        built = getattr(self, "_built", None)
        if built is not None:
            result["temperature"] = built.temperature.describe()
        result["policy"] = self.policy
        return result
