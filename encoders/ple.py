"""Piecewise-linear encoding (PLE) and embeddings, from rtdl_num_embeddings.

Gorishniy, Rubachev, Babenko, "On Embeddings for Numerical Features in Tabular
Deep Learning", NeurIPS 2022. PLE encodes a value by its position in each bin
of the feature: 1 for bins left of it, 0 for bins right of it, the fraction
of the bin in between. The bins come from training quantiles (Q) or from
one decision tree per feature fitted on the target (T). A head may follow: a
per-feature linear layer (L), then ReLU (R).

One registry name per variant of the paper, so that each is its own row of a
leaderboard instead of a choice that tuning makes inside one row:

=========================  =======  ================================================
name                       variant  module (rtdl_num_embeddings 0.0.12)
=========================  =======  ================================================
``ple-quantile``           Q-LR     ``PiecewiseLinearEmbeddings(activation=True)``
``ple-quantile-linear``    Q-L      ``PiecewiseLinearEmbeddings(activation=False)``
``ple-quantile-encoding``  Q        ``PiecewiseLinearEncoding`` (no parameters)
``ple-tree``               T-LR     ``PiecewiseLinearEmbeddings(activation=True)``
``ple-tree-linear``        T-L      ``PiecewiseLinearEmbeddings(activation=False)``
``ple-tree-encoding``      T        ``PiecewiseLinearEncoding`` (no parameters)
=========================  =======  ================================================

The embeddings use ``version="A"``, the parametrization of the 2022 paper
(parameter ``version``, not tuned). ``"B"``, which rtdl_num_embeddings added
later (a linear term plus a PLE term with zero-initialized weights), is
accepted for the linear heads only. NOTE: with ``activation=True``, version
"B" in rtdl_num_embeddings 0.0.12 applies the ReLU to the zero-initialized PLE
term alone, so its weights get zero gradient and stay zero: the embedding
never leaves its linear start. The encoders therefore reject that combination.

Search space: ``n_bins`` integer 2-128 and, with a head, ``d_embedding``
integer 8-32. NOTE: these ranges are this benchmark's; the README of
rtdl_num_embeddings 0.0.12 lists no ranges, only the starting points
``d_embedding=8`` without and ``d_embedding=24`` with the ReLU. Tree bins use
scikit-learn ``min_samples_leaf=64, min_impurity_decrease=1e-4`` (the example
in that README) as parameters that are not tuned by default: a preset can add
them to the space.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from optuna.distributions import BaseDistribution, IntDistribution
from rtdl_num_embeddings import PiecewiseLinearEmbeddings, PiecewiseLinearEncoding
from torch import Tensor, nn

from encoders import policies
from encoders.base import Encoder, EncoderError
from encoders.bins import (
    bins_per_feature,
    ignore_single_bin_warning,
    quantile_bins,
    single_bin_features,
    tree_bins,
)
from encoders.checks import (
    require_choice,
    require_fitted,
    require_int,
    require_positive,
)

logger = logging.getLogger(__name__)


class FlatPLE(nn.Module):
    """``(batch, n) -> (batch, n * d_embedding)`` through PLE embeddings.

    Args:
        bins: Per-feature edges from `compute_bins`.
        d_embedding: Output size per feature.
        activation: Whether ReLU follows the linear layer (LR rather than L).
        version: ``"A"`` (the 2022 paper) or ``"B"`` (rtdl_num_embeddings' newer
            parametrization, which never trains the PLE term when
            ``activation=True``).
    """

    def __init__(
        self,
        bins: list[Tensor],
        d_embedding: int,
        activation: bool = True,
        version: str = "A",
    ) -> None:
        super().__init__()
        with ignore_single_bin_warning():
            self.embeddings = PiecewiseLinearEmbeddings(
                bins, d_embedding, activation=activation, version=version
            )
        self.d_out = len(bins) * d_embedding

    def forward(self, x: Tensor) -> Tensor:
        return self.embeddings(x).flatten(1)


class PLEncoding(nn.Module):
    """``(batch, n) -> (batch, total_bins)``: the bare encoding, no parameters."""

    def __init__(self, bins: list[Tensor]) -> None:
        super().__init__()
        self.encoding = PiecewiseLinearEncoding(bins)
        self.d_out = sum(bins_per_feature(bins))

    def forward(self, x: Tensor) -> Tensor:
        return self.encoding(x)


class _PLEEncoder(Encoder):
    """PLE with bins of kind `bins_kind` and head `head` (see the module table)."""

    bins_kind: ClassVar[str]
    head: ClassVar[str]

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        space: dict[str, BaseDistribution] = {"n_bins": IntDistribution(2, 128)}
        if cls.head != "none":
            space["d_embedding"] = IntDistribution(8, 32)
        return space

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        values: dict[str, Any] = {"n_bins": 48}
        if cls.head != "none":
            values["d_embedding"] = 16 if cls.head == "linear-relu" else 8
            values["version"] = "A"
        if cls.bins_kind == "tree":
            values["min_samples_leaf"] = 64
            values["min_impurity_decrease"] = 1e-4
        return values

    def check_params(self) -> None:
        require_int(self.name, self.params, "n_bins", 2)
        if self.head != "none":
            require_int(self.name, self.params, "d_embedding", 1)
            version = require_choice(self.name, self.params, "version", ["A", "B"])
            if version == "B" and self.head == "linear-relu":
                raise EncoderError(
                    f"Encoder {self.name!r}: version='B' is invalid with a ReLU "
                    "head, because the zero-initialized PLE weights get zero "
                    "gradient behind the ReLU and never train; use version='A', or "
                    "the linear head (the '-linear' encoder) with version='B'."
                )
        if self.bins_kind == "tree":
            require_int(self.name, self.params, "min_samples_leaf", 1)
            require_positive(
                self.name, self.params, "min_impurity_decrease", allow_zero=True
            )

    def fit(self, x_train: Tensor, y_train: Tensor | None = None) -> None:
        n_bins = int(self.params["n_bins"])
        if self.bins_kind == "quantile":
            self.state["bins"] = quantile_bins(x_train, n_bins)
        else:
            tree_kwargs = {
                "min_samples_leaf": int(self.params["min_samples_leaf"]),
                "min_impurity_decrease": float(self.params["min_impurity_decrease"]),
                "random_state": 0,
            }
            self.state["bins"] = tree_bins(x_train, y_train, n_bins, tree_kwargs)
        single = single_bin_features(self.state["bins"])
        if single:
            logger.info(
                "%s: features %s have a single bin, in which PLE is min-max scaling",
                self.name,
                single,
            )

    def build(self, n_features: int) -> nn.Module:
        bins = require_fitted(self, "bins", n_features)
        if self.head == "none":
            return PLEncoding(bins)
        return FlatPLE(
            bins,
            int(self.params["d_embedding"]),
            activation=self.head == "linear-relu",
            version=str(self.params["version"]),
        )

    def summary(self) -> dict[str, Any]:
        policy = policies.policy(
            dtype=policies.DTYPE,
            out_of_range=policies.PLE_OUT_OF_RANGE,
            ties=(
                policies.PLE_QUANTILE_TIES
                if self.bins_kind == "quantile"
                else policies.PLE_TREE_TIES
            ),
            magnitude=policies.PLE_MAGNITUDE,
            binary=(
                policies.PLE_QUANTILE_BINARY
                if self.bins_kind == "quantile"
                else policies.PLE_TREE_BINARY
            ),
        )
        if "bins" not in self.state:
            return {"policy": policy}
        return {
            "bins_per_feature": bins_per_feature(self.state["bins"]),
            "single_bin_features": single_bin_features(self.state["bins"]),
            "policy": policy,
        }


class QuantilePLEEncoder(_PLEEncoder):
    """Q-LR: piecewise-linear encoding on quantile bins, then linear + ReLU."""

    name = "ple-quantile"
    description = "Piecewise-linear encoding on quantile bins, linear + ReLU (Q-LR)."
    bins_kind = "quantile"
    head = "linear-relu"


class QuantilePLELinearEncoder(_PLEEncoder):
    """Q-L: piecewise-linear encoding on quantile bins, then linear."""

    name = "ple-quantile-linear"
    description = "Piecewise-linear encoding on quantile bins, then linear (Q-L)."
    bins_kind = "quantile"
    head = "linear"


class QuantilePLEEncodingEncoder(_PLEEncoder):
    """Q: piecewise-linear encoding on quantile bins, no head."""

    name = "ple-quantile-encoding"
    description = "Piecewise-linear encoding on quantile bins, no parameters (Q)."
    bins_kind = "quantile"
    head = "none"


class TreePLEEncoder(_PLEEncoder):
    """T-LR: piecewise-linear encoding on target-aware tree bins, linear + ReLU."""

    name = "ple-tree"
    description = "Piecewise-linear encoding on tree bins, linear + ReLU (T-LR)."
    bins_kind = "tree"
    head = "linear-relu"


class TreePLELinearEncoder(_PLEEncoder):
    """T-L: piecewise-linear encoding on target-aware tree bins, then linear."""

    name = "ple-tree-linear"
    description = "Piecewise-linear encoding on tree bins, then linear (T-L)."
    bins_kind = "tree"
    head = "linear"


class TreePLEEncodingEncoder(_PLEEncoder):
    """T: piecewise-linear encoding on target-aware tree bins, no head."""

    name = "ple-tree-encoding"
    description = "Piecewise-linear encoding on tree bins, no parameters (T)."
    bins_kind = "tree"
    head = "none"
