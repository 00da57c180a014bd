"""Soft bins: a differentiable table lookup over per-feature bin embeddings.

For feature j with K_j bins, bin k has a learned vector E[j, k]. A value x
gets one score per bin, the weights softmax(s) and the output
sum_k softmax(s)_k * E[j, k]: attention with x as the query and the bins as
keys. The idea of a softmax over bins with a temperature follows AutoDis (Guo
et al., KDD 2021, see ``autodis``); the two score functions below are this
project's. Both start from the training bins of `encoders.bins.lookup_bins`,
and both divide by a per-feature temperature tau_j.

``scores = "edges"`` (the default): x is first mapped to its position p(x) in
the training bins (bin m spans [m, m + 1], linearly inside, as in PLE).
Learned edges u_1 < ... < u_{K-1} in these units start at 1, ..., K - 1, and

    s_k(x) - s_m(x) = -(sum of |p(x) - u_i| over the edges u_i between x and
                       bin k) / tau_j

for x in bin m. For the bin next to x this is minus the distance to the edge
they share; farther bins lose the distance to every edge in between. The
scores are linear in p(x), s_k(x) = (k * p(x) - (u_1 + ... + u_k)) / tau_j up
to a shift that the softmax ignores, so one step costs one fused multiply-add
per (row, feature, bin) before the softmax. The temperature is in bins: a bin
of the training grid counts as one unit however wide it is.

``scores = "interval"``: each bin is a learned interval [l_k, u_k] that starts
at the training bin, and s_k(x) = -max(l_k - x, x - u_k, 0) / (tau_j * w_j),
minus the distance to the interval in units of the feature's median bin
width w_j, exactly 0 inside the interval. Intervals may overlap or leave gaps
as they learn. This costs about eight elementwise operations per (row,
feature, bin).

In both, the bin that contains x has the highest score, so as tau goes to 0
the weights become one-hot on that bin and the output equals the hard lookup
of ``bin-embedding`` with the same bins and vectors. A value on an interior
edge gets half of each neighbour, but `lookup_bins` puts no training value
there. Values outside the span of the bins are first clamped to it, so a
far-out value puts most weight on the nearest bin.

Parameters:

- ``temperature_mode``: ``fixed``, ``learned`` (per feature), or ``annealed``
  from ``temperature`` to ``temperature * anneal_ratio`` over training. Annealing
  needs the trainer to call `encoders.set_training_progress` (see
  `encoders.temperature`).
- ``top_k``: if > 0, only the k highest-scoring bins of each feature get
  weight (renormalized to sum to 1). 0 keeps all bins.

Each score function runs as one autograd function with a hand-written
backward pass (`_EdgeLookup`, `_SoftLookup`), tested against plain autograd.

NOTE: at 32 bins and batch 256 on a 2-core CPU, one forward + backward step
with edge scores costs 1.34 to 1.42 times that of ``ple-quantile`` timed as a
pair, 1.43 to 1.58 times in the table of all encoders, and 1.53 times with one
thread (`bench encoders --time`, docs/benchmarks.md). It runs an exp per bin
and four batched matrix products, and PLE runs two products.

Search space: ``n_bins`` integer 2-128 and ``d_embedding`` integer 8-32 (the
PLE ranges, so that both are compared at the same sizes), ``temperature``
log-uniform 0.03-3 in bin widths, ``temperature_mode`` fixed, learned or
annealed, ``scores`` edges or interval. The temperature range, the modes and
the score functions are this project's choice. ``top_k`` is left out of the
space by default; a preset can add it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, ClassVar

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
from encoders.temperature import (
    TEMPERATURE_MODES,
    Temperature,
    keep_top_k,
    raise_low_scores,
)


def _sum_gradients(
    grad_lookup: Tensor, weights: Tensor, embeddings: Tensor
) -> tuple[Tensor, Tensor]:
    """Return the gradients of the bin vectors and of the scores.

    The lookup is ``softmax(scores) @ embeddings``; ``grad_lookup`` is its
    gradient, (n, batch, d), and ``weights`` the softmax, (n, batch, n_bins).
    """
    grad_embeddings = torch.bmm(weights.transpose(-1, -2), grad_lookup)
    grad_weights = torch.bmm(grad_lookup, embeddings.transpose(-1, -2))

    # Softmax: dL/ds = w * (g - sum(w * g)). ATen's fused kernel took 11 us
    # at batch 256 here, against 32 us for the three public operations.
    grad_scores = torch.ops.aten._softmax_backward_data(
        grad_weights, weights, -1, weights.dtype
    )
    return grad_embeddings, grad_scores


# torch's own test for an active torch.func transform (vmap, grad, ...). It is
# private, so a torch without it makes every call take the general path.
_transforms_active: Callable[[], bool] | None = getattr(
    torch._C, "_are_functorch_transforms_active", None
)


class _LookupFunction(torch.autograd.Function):
    """An autograd function in the ``setup_context`` style, with a faster twin.

    The ``setup_context`` style lets torch.func transforms run the function,
    as the vectorized seeds do under ``vmap``. Its ``apply`` costs more,
    though: it binds the arguments to the signature of ``forward`` on every
    call, and runs ``setup_context`` as a separate Python call. In an A/B
    timing of soft-bin training steps on the CPU, that was 0.11 to 0.15 ms of
    0.98 to 1.15 ms at batch 256. Each subclass therefore gets a twin in the
    older style, whose ``forward`` takes ``ctx`` and runs the subclass's
    ``forward`` and ``setup_context``, and `apply` calls the twin unless a
    transform is active.
    Both share ``backward``, so they compute the same values.
    """

    plain: ClassVar[type[torch.autograd.Function]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

        def forward(ctx: Any, *inputs: Any) -> Any:
            output = cls.forward(*inputs)
            cls.setup_context(ctx, inputs, output)
            return output

        body = {
            "forward": staticmethod(forward),
            "backward": staticmethod(cls.backward),
        }
        cls.plain = type(f"{cls.__name__}Plain", (torch.autograd.Function,), body)
        # The general path calls inspect.signature(cls.forward) on every call,
        # and that returns a stored __signature__ as it is (PEP 362).
        cls.forward.__signature__ = inspect.signature(cls.forward)

    @classmethod
    def apply(cls, *inputs: Any) -> Any:
        """Run the twin, or the general function while a torch.func transform runs."""
        if _transforms_active is None or _transforms_active():
            return super().apply(*inputs)
        return cls.plain.apply(*inputs)


class _SoftLookup(_LookupFunction):
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
        scores = raise_low_scores(scores, mask)
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
        grad_embeddings, grad_scores = _sum_gradients(grad_lookup, weights, embeddings)

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


class _EdgeLookup(_LookupFunction):
    """Edge scores, softmax and weighted sum of bin vectors, hand-written backward.

    The scores are ``factor * (slopes * column + offsets)`` with ``factor = 1 /
    tau``. ``offsets``, computed as ``edges @ summing``, is the negated running
    sum of the edges, shifted to 0 at the middle bin. The softmax ignores that
    shift, and it keeps the scores small. The temperature enters and the
    lookup leaves in the layouts that the module uses, so that autograd
    records no extra nodes for them.
    Inputs, all float tensors of one dtype:

    - ``column``: positions of the values in the fitted bins (see
      `EdgeSoftBinEmbeddings.positions`), (n, batch, 1);
    - ``log_temperature``: ``log(tau)`` per feature, (n,);
    - ``edges``: the interior edges in the units of ``column``, (n, n_bins - 1);
    - ``slopes``: ``k - (n_bins - 1) / 2`` for bin k, (n_bins,);
    - ``summing``: the matrix that turns edges into offsets, (n_bins - 1,
      n_bins), from `offset_matrix`;
    - ``mask``: 0 for real bins and minus infinity for padding, (n, 1, n_bins),
      or None;
    - ``embeddings``: (n, n_bins, d_embedding);
    - ``top_k``: bins that keep weight per feature, 0 for all.

    Returns ``(lookup, weights, offsets, factor)``: the lookup (batch, n *
    d_embedding), feature by feature, the weights (n, batch, n_bins), the
    offsets (n, 1, n_bins) and ``1 / tau`` (n, 1, 1). The last two are returned
    for the backward pass. ``column``, ``slopes``, ``summing`` and ``mask`` get
    no gradient.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        column: Tensor,
        log_temperature: Tensor,
        edges: Tensor,
        slopes: Tensor,
        summing: Tensor,
        mask: Tensor | None,
        embeddings: Tensor,
        top_k: int,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        factor = log_temperature.neg().exp_().view(-1, 1, 1)
        offsets = torch.matmul(edges, summing).unsqueeze(-2)
        intercepts = offsets * factor
        if mask is not None:
            intercepts = intercepts + mask
        scores = torch.addcmul(intercepts, column, slopes * factor)
        scores = raise_low_scores(scores, mask)
        weights = torch.softmax(keep_top_k(scores, top_k), dim=-1)
        lookup = torch.bmm(weights, embeddings).transpose(0, 1)
        return lookup.reshape(column.shape[1], -1), weights, offsets, factor

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        column, _, _, slopes, summing, _, embeddings, _ = inputs
        _, weights, offsets, factor = output
        ctx.save_for_backward(
            column, factor, slopes, summing, embeddings, weights, offsets
        )
        ctx.mark_non_differentiable(weights, offsets, factor)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(
        ctx: Any, grad_lookup: Tensor | None, *_: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        if grad_lookup is None:
            return (None,) * 8
        saved = ctx.saved_tensors
        column, factor, slopes, summing, embeddings, weights, offsets = saved
        n_features, batch, _ = column.shape
        grad_lookup = grad_lookup.reshape(batch, n_features, -1).transpose(0, 1)
        grad_embeddings, grad_scores = _sum_gradients(grad_lookup, weights, embeddings)

        # Gradient of the per-bin intercepts (n, 1, n_bins), and below of the
        # slopes. Every row of grad_scores sums to 0 (the softmax ignores
        # shifts), so the centring of the offsets passes gradients unchanged.
        grad_intercepts = grad_scores.sum(-2, keepdim=True)

        grad_log_temperature = None
        if ctx.needs_input_grad[1]:
            grad_slopes = torch.bmm(column.transpose(-1, -2), grad_scores)
            # d(factor) / d(log tau) = -factor.
            grad_factor = torch.addcmul(grad_slopes * slopes, grad_intercepts, offsets)
            grad_log_temperature = (grad_factor * factor).sum((1, 2)).neg_()
        grad_edges = None
        if ctx.needs_input_grad[2]:
            grad_edges = torch.matmul(grad_intercepts.squeeze(-2), summing.T)
            grad_edges = grad_edges.mul_(factor.view(-1, 1))
        return (
            None,
            grad_log_temperature,
            grad_edges,
            None,
            None,
            None,
            grad_embeddings,
            None,
        )


def offset_matrix(n_bins: int) -> Tensor:
    """Return M, (n_bins - 1, n_bins), such that ``edges @ M`` gives the offsets.

    Offset k is minus the sum of the first k edges, plus the sum of the first
    ``n_bins // 2``: ``M[i, k] = [i < n_bins // 2] - [i < k]``. The second term
    shifts every offset by the same amount, which the softmax ignores; it
    centres the offsets on the middle bin. All entries are -1, 0 or 1, exact in
    every float type.
    """
    row = torch.arange(n_bins - 1).unsqueeze(1)
    before = (row < torch.arange(n_bins)).float()
    return (row < n_bins // 2).float() - before


class _SoftBins(nn.Module):
    """Shared part of the soft-bin modules: bin vectors, temperature, padding.

    Subclasses set up their scores in `_init_scores` and implement `_lookup`,
    which returns the lookup (batch, n * d), feature by feature, and the
    weights (n, batch, n_bins).
    Features with fewer bins than the largest count are padded. Padded bins get
    a score of minus infinity, so they never receive weight.

    Args:
        bins: Per-feature strictly increasing edges, at least two each.
        d_embedding: Size of each bin vector.
        temperature: Initial temperature, in the units of the subclass's scores.
        temperature_mode: One of ``fixed``, ``learned``, ``annealed``.
        anneal_ratio: Final over initial temperature in ``annealed`` mode.
        top_k: Number of bins that keep weight per feature; 0 keeps all.

    Attributes:
        embeddings: Per-bin vectors, shape (n_features, n_bins, d_embedding),
            initialized uniformly in +-1/sqrt(d_embedding).
        padding: 0 for real bins and minus infinity for padded ones, shape
            (n_features, 1, n_bins); None when no feature is padded, which
            saves one operation per step.
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
        _, _, valid = padded_edges(bins)
        n_features, n_bins = valid.shape
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
        self._init_scores(bins)

    def _init_scores(self, bins: list[Tensor]) -> None:
        raise NotImplementedError

    def set_progress(self, fraction: float) -> None:
        """Set the fraction of training done, for an annealed temperature."""
        self.temperature.set_progress(fraction)

    def _lookup(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def weights(self, x: Tensor) -> Tensor:
        """Return the bin weights, shape (batch, n_features, n_bins)."""
        return self._lookup(x)[1].transpose(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        lookup, _ = self._lookup(x)
        return lookup


class EdgeSoftBinEmbeddings(_SoftBins):
    """``(batch, n) -> (batch, n * d_embedding)`` by a softmax over edge scores.

    A value is first mapped to its position in the fitted bins: bin m spans
    [m, m + 1], linearly inside (the piecewise-linear map of PLE). Edges,
    distances and the temperature are in these units, so every bin of the
    fitted grid counts as one unit however wide it is in the input. The scores
    then stay below n_bins ** 2 / temperature in magnitude, so float32 keeps
    them accurate for heavy-tailed features too. The temperature is in bins.

    Attributes:
        edges: Interior edges, learned, shape (n_features, n_bins - 1), in bins
            from the centre of the feature's span. They start at the fitted
            edges; `learned_edges` returns them in the input's units. Padded
            bins' edges sit at the last edge.
    """

    def _init_scores(self, bins: list[Tensor]) -> None:
        lower, upper, valid = padded_edges(bins)
        n_bins = lower.shape[1]
        first = torch.stack([edges[0] for edges in bins]).float()
        last = torch.stack([edges[-1] for edges in bins]).float()
        # The fitted grid: left edges and 1 / width of every bin, (n, 1, n_bins).
        # Padded bins have 1 / width 0, so that they add nothing to a position.
        grid_lower = torch.where(valid, lower, last[:, None])
        inverse = torch.where(valid, 1 / (upper - lower), torch.zeros_like(lower))
        counts = valid.sum(dim=1).float()
        self.register_buffer("centres", counts.unsqueeze(1) / 2)
        self.register_buffer("grid_lower", grid_lower.unsqueeze(1))
        self.register_buffer("grid_inverse_widths", inverse.unsqueeze(1))
        self.register_buffer("lowest", first.view(-1, 1, 1))
        self.register_buffer("highest", last.view(-1, 1, 1))

        position = torch.arange(1, n_bins).float().expand(len(bins), -1)
        position = torch.minimum(position, counts[:, None])
        self.edges = nn.Parameter(position - self.centres)
        self.register_buffer("slopes", torch.arange(n_bins) - (n_bins - 1) / 2)
        self.register_buffer("summing", offset_matrix(n_bins))

    def positions(self, x: Tensor) -> Tensor:
        """Return each value's position in the fitted bins, minus the centre.

        The position is the sum of PLE's encoding: each bin adds the fraction
        of its width that lies left of the value, clamped to [0, 1]. On the CPU
        these four operations on (n_features, batch, n_bins) cost less than
        `torch.searchsorted` and three gathers on (n_features, batch), most so
        with one thread and large batches.

        Args:
            x: Values, shape (batch, n_features), in the input's units.

        Returns:
            Shape (n_features, batch): ``m + (x - e_m) / (e_{m+1} - e_m) - K / 2``
            for x clamped to the span and lying in bin m of K.
        """
        # Clamped first, because a padded bin multiplies its distance by 0, and
        # an infinite distance would give NaN.
        values = torch.clamp(x.detach().T.unsqueeze(-1), self.lowest, self.highest)
        fractions = torch.sub(values, self.grid_lower).mul_(self.grid_inverse_widths)
        position = fractions.clamp_(0, 1).sum(-1)
        return position.sub_(self.centres)

    def learned_edges(self) -> Tensor:
        """Return the interior edges in the input's units, (n_features, n_bins - 1).

        The fitted grid maps the learned positions back: an edge at position
        m + f (0 <= f < 1) lies a fraction f into fitted bin m.
        """
        with torch.no_grad():
            counts = (2 * self.centres).long()
            position = self.edges + self.centres
            index = torch.minimum(position.floor().long().clamp_min(0), counts - 1)
            fraction = position - index
            lower = self.grid_lower[:, 0].gather(1, index)
            inverse = self.grid_inverse_widths[:, 0].gather(1, index)
            return lower + fraction / inverse

    def _lookup(self, x: Tensor) -> tuple[Tensor, Tensor]:
        column = self.positions(x).unsqueeze(-1)
        lookup, weights, *_ = _EdgeLookup.apply(
            column,
            self.temperature.log(),
            self.edges,
            self.slopes,
            self.summing,
            self.padding,
            self.embeddings,
            self.top_k,
        )
        return lookup, weights


class SoftBinEmbeddings(_SoftBins):
    """``(batch, n) -> (batch, n * d_embedding)`` by a softmax over interval scores.

    The temperature is in units of the feature's median bin width.

    Attributes:
        centres: Interval centres ``(l + u) / 2``, shape (n_features, 1,
            n_bins), learned.
        half_widths: Interval half widths ``(u - l) / 2``, same shape, learned.
            The intervals start at the training bins.
    """

    def _init_scores(self, bins: list[Tensor]) -> None:
        lower, upper, valid = padded_edges(bins)
        widths = torch.stack([(e[1:] - e[:-1]).median() for e in bins]).float()
        self.register_buffer("inverse_widths", 1 / widths)
        # Padded bins sit at the feature's last edge, inside its span, so that
        # the span used for clamping in the forward pass covers real bins only.
        last_edges = torch.stack([edges[-1] for edges in bins]).float()
        lower = torch.where(valid, lower, last_edges.unsqueeze(1))
        upper = torch.where(valid, upper, last_edges.unsqueeze(1))
        self.centres = nn.Parameter(((lower + upper) / 2).unsqueeze(1))
        self.half_widths = nn.Parameter(((upper - lower) / 2).unsqueeze(1))

    @property
    def lower(self) -> Tensor:
        """Left interval edges, shape (n_features, n_bins)."""
        return (self.centres - self.half_widths)[:, 0]

    @property
    def upper(self) -> Tensor:
        """Right interval edges, shape (n_features, n_bins)."""
        return (self.centres + self.half_widths)[:, 0]

    def _lookup(self, x: Tensor) -> tuple[Tensor, Tensor]:
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
        return lookup.transpose(0, 1).reshape(len(x), self.d_out), weights


class SoftBinsEncoder(Encoder):
    """Soft bins with distance scores to quantile-anchored learnable bins."""

    name = "soft-bins"
    description = (
        "Softmax over quantile-anchored learnable bins, weighted sum of per-bin "
        "vectors (differentiable lookup)."
    )
    #: Module class of each score function.
    modules: ClassVar[dict[str, type[_SoftBins]]] = {
        "edges": EdgeSoftBinEmbeddings,
        "interval": SoftBinEmbeddings,
    }
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
            "scores": CategoricalDistribution(["edges", "interval"]),
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
            "scores": "edges",
        }

    def check_params(self) -> None:
        require_int(self.name, self.params, "n_bins", 2)
        require_int(self.name, self.params, "d_embedding", 1)
        require_positive(self.name, self.params, "temperature")
        require_choice(self.name, self.params, "temperature_mode", TEMPERATURE_MODES)
        require_positive(self.name, self.params, "anneal_ratio")
        require_int(self.name, self.params, "top_k", 0)
        require_choice(self.name, self.params, "scores", tuple(self.modules))

    def fit(self, x_train: Tensor, y_train: Tensor | None = None) -> None:
        fitted = lookup_bins(x_train, int(self.params["n_bins"]))
        self.state["bins"] = fitted.edges
        self.state["value_bin_features"] = fitted.value_bin_features
        self.state["tie_split_features"] = fitted.tie_split_features

    def build(self, n_features: int) -> nn.Module:
        module = self.modules[str(self.params["scores"])](
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
