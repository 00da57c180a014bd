"""The baseline: numeric features reach the MLP as they are (no encoding)."""

from __future__ import annotations

from torch import Tensor, nn

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
