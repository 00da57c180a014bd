"""The baseline: numeric features reach the MLP as they are (no encoding)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from encoders import policies
from encoders.base import Encoder


class Identity(nn.Module):
    """``(batch, n_features) -> (batch, n_features)``, unchanged."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.d_out = n_features

    def forward(self, x: Tensor) -> Tensor:
        return x


class PlainEncoder(Encoder):
    """The plain MLP of Gorishniy et al. 2022: preprocessed values, no encoding."""

    name = "none"
    description = "No encoding: standardized or quantile-normal values (plain MLP)."

    def build(self, n_features: int) -> nn.Module:
        return Identity(n_features)

    def summary(self) -> dict[str, Any]:
        return {
            "policy": policies.policy(
                dtype="No parameters or buffers: the output is the input, any dtype.",
                out_of_range="Passed through unchanged.",
                ties=policies.NO_BINS,
                magnitude=policies.LINEAR_MAGNITUDE,
                binary=policies.VALUE_BINARY,
            )
        }
