"""The fixed MLP backbone and the regressor that puts an encoder in front of it."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MLP(nn.Module):
    """Blocks of Linear -> ReLU -> Dropout, then a linear output.

    ``(batch, d_in) -> (batch, d_out)``.
    """

    def __init__(
        self, d_in: int, d_out: int, n_blocks: int, d_block: int, dropout: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = d_in
        for _ in range(n_blocks):
            layers += [nn.Linear(width, d_block), nn.ReLU(), nn.Dropout(dropout)]
            width = d_block
        layers.append(nn.Linear(width, d_out))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class Regressor(nn.Module):
    """Encoder on the numeric features, concatenated with the other inputs, MLP.

    Args:
        encoder: Module mapping ``(batch, n_num)`` to ``(batch, encoder.d_out)``,
            or None when the dataset has no numeric feature.
        d_cat: Width of the unencoded inputs (one-hot categories, missing
            indicators).
    """

    def __init__(
        self,
        encoder: nn.Module | None,
        d_cat: int,
        n_blocks: int,
        d_block: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        d_in = (encoder.d_out if encoder is not None else 0) + d_cat
        if d_in == 0:
            raise ValueError("The model has no input: no numeric or other feature.")
        self.backbone = MLP(d_in, 1, n_blocks, d_block, dropout)

    def forward(self, x_num: Tensor, x_cat: Tensor) -> Tensor:
        """Return predictions of shape (batch,) in standardized target units."""
        parts = []
        if self.encoder is not None:
            parts.append(self.encoder(x_num))
        if x_cat.shape[1]:
            parts.append(x_cat)
        return self.backbone(torch.cat(parts, dim=1)).squeeze(-1)


def count_parameters(module: nn.Module) -> int:
    """Return the number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
