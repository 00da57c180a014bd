"""Periodic embeddings (PL, PLR, PLR lite), from rtdl_num_embeddings.

Gorishniy, Rubachev, Babenko, NeurIPS 2022: each feature ``x`` becomes
``[cos(2 pi c_i x), sin(2 pi c_i x)]`` for ``n_frequencies`` learned
frequencies ``c_i``, initialized from N(0, sigma^2) truncated at 3 sigma, then
a linear layer (L) and optionally ReLU (R). `rtdl_num_embeddings.PeriodicEmbeddings`
(version 0.0.12) implements all three:

==============  =======  ==============================================
name            variant  arguments
==============  =======  ==============================================
``periodic``    PL       ``activation=False, lite=False``
``plr``         PLR      ``activation=True, lite=False``
``plr-lite``    PLR      ``activation=True, lite=True``: one linear
                (lite)   layer shared by all features (from the TabR paper)
==============  =======  ==============================================

Search space: ``d_embedding`` integer 8-32, ``n_frequencies`` integer 16-96,
``frequency_init_scale`` (sigma) log-uniform 0.01-10. The README of
rtdl_num_embeddings 0.0.12 states that the paper's upper bound of 100 for sigma
can often be lowered to 10, and that smaller sigma is the safer side. The other
two ranges are this benchmark's. Defaults are the package's: 24, 48 and 0.01.
Nothing is fitted on the data.
"""

from __future__ import annotations

from typing import Any, ClassVar

from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from rtdl_num_embeddings import PeriodicEmbeddings
from torch import nn

from encoders import policies
from encoders.base import Encoder
from encoders.checks import require_int, require_positive
from encoders.flatten import FlatEmbeddings

POLICY = policies.policy(
    dtype=policies.DTYPE,
    out_of_range=policies.PERIODIC_OUT_OF_RANGE,
    ties=policies.NO_BINS,
    magnitude=policies.PERIODIC_MAGNITUDE,
    binary=policies.VALUE_BINARY,
)


class PeriodicEncoder(Encoder):
    """PL: periodic features of learned frequencies, then a per-feature linear layer."""

    name = "periodic"
    description = "cos/sin of learned frequencies, then per-feature linear (PL)."
    activation: ClassVar[bool] = False
    lite: ClassVar[bool] = False

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        return {
            "d_embedding": IntDistribution(8, 32),
            "n_frequencies": IntDistribution(16, 96),
            "frequency_init_scale": FloatDistribution(0.01, 10.0, log=True),
        }

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"d_embedding": 24, "n_frequencies": 48, "frequency_init_scale": 0.01}

    def check_params(self) -> None:
        require_int(self.name, self.params, "d_embedding", 1)
        require_int(self.name, self.params, "n_frequencies", 1)
        require_positive(self.name, self.params, "frequency_init_scale")

    def build(self, n_features: int) -> nn.Module:
        d_embedding = int(self.params["d_embedding"])
        embeddings = PeriodicEmbeddings(
            n_features,
            d_embedding,
            n_frequencies=int(self.params["n_frequencies"]),
            frequency_init_scale=float(self.params["frequency_init_scale"]),
            activation=self.activation,
            lite=self.lite,
        )
        return FlatEmbeddings(embeddings, n_features, d_embedding)

    def summary(self) -> dict[str, Any]:
        return {"policy": POLICY}


class PLREncoder(PeriodicEncoder):
    """PLR: periodic features, per-feature linear layer, ReLU."""

    name = "plr"
    description = "cos/sin of learned frequencies, per-feature linear + ReLU (PLR)."
    activation = True


class PLRLiteEncoder(PeriodicEncoder):
    """PLR lite: periodic features, one linear layer shared by all features, ReLU."""

    name = "plr-lite"
    description = "cos/sin of learned frequencies, shared linear + ReLU (PLR lite)."
    activation = True
    lite = True
