"""Flattening of per-feature embeddings into one vector per row for the MLP."""

from __future__ import annotations

from torch import Tensor, nn


class FlatEmbeddings(nn.Module):
    """``(batch, n) -> (batch, n * d_embedding)`` around a per-feature embedding.

    Args:
        embeddings: Module mapping ``(batch, n)`` to ``(batch, n, d_embedding)``.
        n_features: Number of features ``n``.
        d_embedding: Output size per feature.
    """

    def __init__(
        self, embeddings: nn.Module, n_features: int, d_embedding: int
    ) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.d_out = n_features * d_embedding

    def forward(self, x: Tensor) -> Tensor:
        return self.embeddings(x).flatten(1)
