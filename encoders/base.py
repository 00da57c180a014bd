"""The encoder plug-in protocol."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from optuna.distributions import BaseDistribution
from torch import nn


class EncoderError(ValueError):
    """Invalid encoder parameters or training data; the message names them."""


class Encoder(ABC):
    """A numeric-feature encoder: fitted state plus a module factory.

    A subclass sets `name` and `description`, declares `search_space`, and
    implements `build`. The life cycle is ``fit`` on the training rows once,
    then ``build`` for each model that is trained with those rows.

    The module that `build` returns maps ``(batch, n_features)`` float tensors
    to ``(batch, d_out)``, where ``d_out`` is stored on the module as the
    attribute ``d_out``.
    """

    name: ClassVar[str]
    description: ClassVar[str]

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - self.parameter_names()
        if unknown:
            raise EncoderError(
                f"Encoder {self.name!r} got unknown parameters {sorted(unknown)}; "
                f"it accepts {sorted(self.parameter_names())}."
            )
        self.params = {**self.defaults(), **params}
        self.state: dict[str, Any] = {}
        self.check_params()

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        """Return the Optuna distribution of every tuned parameter."""
        return {}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Return values for parameters that are not tuned or not given."""
        return {}

    @classmethod
    def parameter_names(cls) -> set[str]:
        """Return every parameter the encoder accepts: tuned or with a default."""
        return set(cls.search_space()) | set(cls.defaults())

    def fit(  # noqa: B027 (stateless encoders keep this no-op)
        self, x_train: torch.Tensor, y_train: torch.Tensor | None = None
    ) -> None:
        """Fit data-dependent state (bin edges, quantiles) on training rows only.

        Args:
            x_train: Numeric training features, shape (n_rows, n_features).
            y_train: Training target, shape (n_rows,), for target-aware encoders.
        """

    def check_params(self) -> None:  # noqa: B027 (optional hook)
        """Raise EncoderError if a value in ``self.params`` is invalid.

        Called at the end of ``__init__``. The message names the parameter, the
        value and a valid range, so a failed trial shows how to fix its space.
        """

    @abstractmethod
    def build(self, n_features: int) -> nn.Module:
        """Return a fresh module for ``n_features`` numeric features."""

    def summary(self) -> dict[str, Any]:
        """Return what the run should record about the fitted state."""
        return {}
