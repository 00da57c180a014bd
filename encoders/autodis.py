"""AutoDis: soft discretization by a learned projection.

Guo et al., "An Embedding Learning Framework for Numerical Features in CTR
Prediction", KDD 2021. Feature j has H learned meta-embeddings M[j, 1..H] of
size d. A value x is mapped to

    h = LeakyReLU(w_j * x)                  (w_j in R^H)
    z = W_j h + alpha * h                   (W_j in R^{H x H}, residual alpha)
    p = softmax(z / tau_j)
    e = sum_h p_h * M[j, h]

so, unlike ``soft-bins``, the "bins" are not anchored to training quantiles:
the projection learns where each meta-embedding takes over. Nothing is fitted
on the data, so inputs should be standardized upstream (the preprocessing
step does this). The temperature and top-k options are those of ``soft-bins``
(see `encoders.temperature`): ``top_k`` keeps the k largest weights of each
feature and renormalizes them, a sparsification of this project.

Search space: ``n_meta_embeddings`` integer 2-256, ``d_embedding`` integer
8-32, ``temperature`` log-uniform 1e-6-10, ``temperature_mode`` fixed, learned
or annealed. ``alpha`` (0.1) and the LeakyReLU slope (0.01) are not tuned.
NOTE: the ranges and these two defaults are this project's choice, not values
checked against the paper. Initialization is also this project's: w_j uniform
in [-1, 1], W_j uniform in +-1/sqrt(H), meta-embeddings uniform in
+-1/sqrt(d).
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
from encoders.checks import (
    require_choice,
    require_finite,
    require_int,
    require_positive,
)
from encoders.temperature import TEMPERATURE_MODES, Temperature, keep_top_k


class AutoDisEmbeddings(nn.Module):
    """``(batch, n) -> (batch, n * d_embedding)`` by AutoDis soft discretization.

    Args:
        n_features: Number of features.
        n_meta_embeddings: Meta-embeddings per feature (H).
        d_embedding: Size of each meta-embedding.
        temperature: Initial softmax temperature.
        temperature_mode: One of ``fixed``, ``learned``, ``annealed``.
        anneal_ratio: Final over initial temperature in ``annealed`` mode.
        alpha: Weight of the residual term ``alpha * h``.
        negative_slope: Slope of the LeakyReLU for negative inputs.
        top_k: Number of meta-embeddings that keep weight per feature; 0 keeps
            all.
    """

    def __init__(
        self,
        n_features: int,
        n_meta_embeddings: int,
        d_embedding: int,
        temperature: float,
        temperature_mode: str = "learned",
        anneal_ratio: float = 0.01,
        alpha: float = 0.1,
        negative_slope: float = 0.01,
        top_k: int = 0,
    ) -> None:
        super().__init__()
        n_meta = n_meta_embeddings
        self.projection = nn.Parameter(torch.empty(n_features, n_meta).uniform_(-1, 1))
        bound = 1 / math.sqrt(n_meta)
        # Stored as (input, output), so h @ mixing[j] is W_j h with W_j = mixing[j].T.
        self.mixing = nn.Parameter(
            torch.empty(n_features, n_meta, n_meta).uniform_(-bound, bound)
        )
        bound = 1 / math.sqrt(d_embedding)
        self.meta_embeddings = nn.Parameter(
            torch.empty(n_features, n_meta, d_embedding).uniform_(-bound, bound)
        )
        self.temperature = Temperature(
            n_features, temperature, temperature_mode, anneal_ratio
        )
        self.alpha = alpha
        self.negative_slope = negative_slope
        self.top_k = top_k
        self.d_out = n_features * d_embedding

    def set_progress(self, fraction: float) -> None:
        """Set the fraction of training done, for an annealed temperature."""
        self.temperature.set_progress(fraction)

    def _feature_major_weights(self, x: Tensor) -> Tensor:
        # Feature-major layout (n_features, batch, H) lets both matrix products
        # run as one batched matmul per feature without copies.
        hidden = nn.functional.leaky_relu(
            x.T.unsqueeze(-1) * self.projection.unsqueeze(1), self.negative_slope
        )
        logits = torch.add(torch.bmm(hidden, self.mixing), hidden, alpha=self.alpha)
        scores = logits * self.temperature.inverse()[:, None, None]
        return torch.softmax(keep_top_k(scores, self.top_k), dim=-1)

    def weights(self, x: Tensor) -> Tensor:
        """Return the meta-embedding weights, shape (batch, n_features, H)."""
        return self._feature_major_weights(x).transpose(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        weights = self._feature_major_weights(x)
        lookup = torch.bmm(weights, self.meta_embeddings)
        return lookup.transpose(0, 1).reshape(len(x), self.d_out)


class AutoDisEncoder(Encoder):
    """AutoDis: softmax over meta-embeddings, scored by a learned projection."""

    name = "autodis"
    description = (
        "AutoDis: softmax of a learned projection (with residual) over "
        "meta-embeddings, weighted sum (soft discretization)."
    )
    policy = policies.policy(
        dtype=policies.DTYPE,
        out_of_range=policies.AUTODIS_OUT_OF_RANGE,
        ties=policies.NO_BINS,
        magnitude=policies.AUTODIS_MAGNITUDE,
        binary=policies.AUTODIS_BINARY,
    )

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        return {
            "n_meta_embeddings": IntDistribution(2, 256),
            "d_embedding": IntDistribution(8, 32),
            "temperature": FloatDistribution(1e-6, 10.0, log=True),
            "temperature_mode": CategoricalDistribution(
                ["fixed", "learned", "annealed"]
            ),
        }

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {
            "n_meta_embeddings": 32,
            "d_embedding": 16,
            "temperature": 0.1,
            "temperature_mode": "learned",
            "anneal_ratio": 0.01,
            "alpha": 0.1,
            "negative_slope": 0.01,
            "top_k": 0,
        }

    def check_params(self) -> None:
        require_int(self.name, self.params, "n_meta_embeddings", 2)
        require_int(self.name, self.params, "d_embedding", 1)
        require_positive(self.name, self.params, "temperature")
        require_choice(self.name, self.params, "temperature_mode", TEMPERATURE_MODES)
        require_positive(self.name, self.params, "anneal_ratio")
        require_finite(self.name, self.params, "alpha")
        require_finite(self.name, self.params, "negative_slope")
        require_int(self.name, self.params, "top_k", 0)

    def build(self, n_features: int) -> nn.Module:
        module = AutoDisEmbeddings(
            n_features,
            n_meta_embeddings=int(self.params["n_meta_embeddings"]),
            d_embedding=int(self.params["d_embedding"]),
            temperature=float(self.params["temperature"]),
            temperature_mode=str(self.params["temperature_mode"]),
            anneal_ratio=float(self.params["anneal_ratio"]),
            alpha=float(self.params["alpha"]),
            negative_slope=float(self.params["negative_slope"]),
            top_k=int(self.params["top_k"]),
        )
        self._built = module
        return module

    def summary(self) -> dict[str, Any]:
        """Return the policy and, once built, the temperature (see soft-bins)."""
        result: dict[str, Any] = {}
        built = getattr(self, "_built", None)
        if built is not None:
            result["temperature"] = built.temperature.describe()
        result["policy"] = self.policy
        return result
