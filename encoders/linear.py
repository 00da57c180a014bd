"""Linear embeddings (L) and linear + ReLU embeddings (LR), from rtdl_num_embeddings.

Gorishniy, Rubachev, Babenko, NeurIPS 2022: each feature gets its own affine
map to ``d_embedding`` values, ``w_j * x_j + b_j``, optionally followed by ReLU
(`rtdl_num_embeddings.LinearEmbeddings` and `LinearReLUEmbeddings`, version
0.0.12). Nothing is fitted on the data.

Search space: ``d_embedding`` integer 8-32, the range of the other embeddings
here. The README of rtdl_num_embeddings 0.0.12 notes that for MLPs, tuning
``d_embedding`` has little effect on most tasks.
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import BaseDistribution, IntDistribution
from rtdl_num_embeddings import LinearEmbeddings, LinearReLUEmbeddings
from torch import nn

from encoders import policies
from encoders.base import Encoder
from encoders.checks import require_int
from encoders.flatten import FlatEmbeddings

POLICY = policies.policy(
    dtype=policies.DTYPE,
    out_of_range=policies.LINEAR_OUT_OF_RANGE,
    ties=policies.NO_BINS,
    magnitude=policies.LINEAR_MAGNITUDE,
    binary=policies.VALUE_BINARY,
)


class LinearEncoder(Encoder):
    """L: a per-feature linear map to ``d_embedding`` values."""

    name = "linear"
    description = "Per-feature linear embedding, w * x + b (L)."

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        return {"d_embedding": IntDistribution(8, 32)}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"d_embedding": 16}

    def check_params(self) -> None:
        require_int(self.name, self.params, "d_embedding", 1)

    def build(self, n_features: int) -> nn.Module:
        d_embedding = int(self.params["d_embedding"])
        return FlatEmbeddings(
            LinearEmbeddings(n_features, d_embedding), n_features, d_embedding
        )

    def summary(self) -> dict[str, Any]:
        return {"policy": POLICY}


class LinearReLUEncoder(LinearEncoder):
    """LR: a per-feature linear map to ``d_embedding`` values, then ReLU."""

    name = "linear-relu"
    description = "Per-feature linear embedding, then ReLU (LR)."

    def build(self, n_features: int) -> nn.Module:
        d_embedding = int(self.params["d_embedding"])
        return FlatEmbeddings(
            LinearReLUEmbeddings(n_features, d_embedding), n_features, d_embedding
        )
