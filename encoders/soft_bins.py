"""Soft bins: a differentiable table lookup over per-feature bin embeddings.

For feature j with K_j bins, bin k has a learned vector E[j, k] and a
learned interval [l_k, u_k] that starts at the training bin [e_k, e_k+1]
from `encoders.bins.lookup_bins`. A value x gets the scores

    s_k(x) = -max(l_k - x, x - u_k, 0) / (tau_j * w_j)

(minus its distance to interval k, in units of the feature's median bin width
w_j; for l_k <= u_k this equals relu(l_k - x) + relu(x - u_k)), the weights
softmax(s), and the output sum_k softmax(s)_k * E[j, k].
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

The module stores each interval as a centre and a half width, and computes
the scores, the softmax and the weighted sum in one autograd function with a
hand-written backward pass (`_SoftLookup`), tested against plain autograd.

NOTE: one forward + backward step still costs about twice that of
``ple-quantile`` at 32 bins and batch 256 (`bench encoders --time`); the
softmax and the extra matrix product for the weights' gradient alone cost
about as much as the whole PLE step. See the benchmark page for the figures.

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


class _SoftLookup(torch.autograd.Function):
    """Scores, softmax and weighted sum of bin vectors, with a hand-written backward.

    Autograd would record about a dozen nodes over (n_features, batch, n_bins)
    tensors; this function records one and computes the gradients mostly in
    place. Inputs, all float tensors of one dtype:

    - ``column``: values clamped to the span of the bins, (n, batch, 1);
    - ``centres``, ``half_widths``: the intervals, (n, 1, n_bins);
    - ``factor``: ``1 / (tau * width)`` per feature, (n, 1, 1);
    - ``mask``: 0 for real bins and minus infinity for padding, (n, 1, n_bins),
      or None;
    - ``embeddings``: (n, n_bins, d_embedding);
    - ``top_k``: bins that keep weight per feature, 0 for all.

    Returns ``(lookup, weights, signs, distance)``: the lookup (n, batch,
    d_embedding), the weights (n, batch, n_bins), and two tensors of the same
    shape that the backward pass needs. ``column`` gets no gradient.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        column: Tensor,
        centres: Tensor,
        half_widths: Tensor,
        factor: Tensor,
        mask: Tensor | None,
        embeddings: Tensor,
        top_k: int,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        offset = column - centres
        signs = offset.sign()
        # max(l - x, x - u, 0) equals |x - c| - h clamped at 0 for c = (l + u) / 2
        # and h = (u - l) / 2; it is exactly 0 inside the interval.
        distance = offset.abs_().sub_(half_widths).clamp_min_(0)
        scores = torch.mul(distance, factor).neg_()
        if mask is not None:
            scores = scores.add_(mask)
        weights = torch.softmax(keep_top_k(scores, top_k), dim=-1)
        return torch.bmm(weights, embeddings), weights, signs, distance

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        factor, embeddings = inputs[3], inputs[5]
        _, weights, signs, distance = output
        ctx.save_for_backward(weights, signs, distance, factor, embeddings)
        ctx.mark_non_differentiable(weights, signs, distance)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(
        ctx: Any, grad_lookup: Tensor | None, *_: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        if grad_lookup is None:
            return (None,) * 7
        weights, signs, distance, factor, embeddings = ctx.saved_tensors
        grad_embeddings = torch.bmm(weights.transpose(1, 2), grad_lookup)
        grad_weights = torch.bmm(grad_lookup, embeddings.transpose(1, 2))

        # Softmax: dL/ds = w * (g - sum(w * g)). ATen's fused kernel took 11 us
        # at batch 256 here, against 32 us for the three public operations.
        grad_scores = torch.ops.aten._softmax_backward_data(
            grad_weights, weights, -1, weights.dtype
        )

        # scores = -factor * distance, and distance = |x - c| - h where positive.
        grad_factor = None
        if ctx.needs_input_grad[3]:
            grad_factor = (grad_scores * distance).sum((1, 2), keepdim=True).neg_()
        # The sign of the distance is 1 for bins that x lies outside, else 0.
        # Multiplying by it is much cheaper on the CPU than a boolean masked_fill_.
        grad_distance = grad_scores.mul_(factor).mul_(distance.sign())
        grad_half_widths = grad_distance.sum(1, keepdim=True)
        grad_centres = grad_distance.mul_(signs).sum(1, keepdim=True)
        # grad_distance is -dL/d(distance), which already gives the signs of
        # dL/dh = -dL/dd and dL/dc = -sign * dL/dd.
        return (
            None,
            grad_centres,
            grad_half_widths,
            grad_factor,
            None,
            grad_embeddings,
            None,
        )


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
        centres: Interval centres ``(l + u) / 2``, shape (n_features, 1,
            n_bins), learned.
        half_widths: Interval half widths ``(u - l) / 2``, same shape, learned.
            The intervals start at the training bins.
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
        self.register_buffer("inverse_widths", 1 / widths)

        self.centres = nn.Parameter(((lower + upper) / 2).unsqueeze(1))
        self.half_widths = nn.Parameter(((upper - lower) / 2).unsqueeze(1))
        # Added to the scores: 0 for real bins, -inf for padding. None when no
        # feature is padded, which saves one operation per step.
        padding = None
        if not valid.all():
            padding = torch.zeros(n_features, 1, n_bins)
            padding = padding.masked_fill(~valid.unsqueeze(1), -math.inf)
        self.register_buffer("padding", padding)
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
        """Left interval edges, shape (n_features, n_bins)."""
        return (self.centres - self.half_widths)[:, 0]

    @property
    def upper(self) -> Tensor:
        """Right interval edges, shape (n_features, n_bins)."""
        return (self.centres + self.half_widths)[:, 0]

    def set_progress(self, fraction: float) -> None:
        """Set the fraction of training done, for an annealed temperature."""
        self.temperature.set_progress(fraction)

    def _lookup(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return the lookup (n, batch, d) and the weights (n, batch, n_bins)."""
        with torch.no_grad():
            lowest = (self.centres - self.half_widths.abs()).amin(dim=-1)
            highest = (self.centres + self.half_widths.abs()).amax(dim=-1)
        # Clamping x to the span of the bins shifts every distance of an outside
        # value by the same amount, which leaves the softmax unchanged for
        # ordered bins. Without it, x - centre rounds to the same float32 number
        # for every bin once |x| is large (1e12), and all bins get equal weight.
        column = torch.clamp(x.detach().T, lowest, highest).unsqueeze(-1)
        factor = self.temperature.inverse() * self.inverse_widths
        lookup, weights, _, _ = _SoftLookup.apply(
            column,
            self.centres,
            self.half_widths,
            factor.view(-1, 1, 1),
            self.padding,
            self.embeddings,
            self.top_k,
        )
        return lookup, weights

    def weights(self, x: Tensor) -> Tensor:
        """Return the bin weights, shape (batch, n_features, n_bins)."""
        return self._lookup(x)[1].transpose(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        lookup, _ = self._lookup(x)
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
