"""Softmax temperature (fixed, learned or annealed) and top-k sparsification.

Shared by the soft lookup encoders (``soft-bins``, ``autodis``). Annealing
needs the trainer's help: before each training step it calls
`set_training_progress` on the model with the fraction of training done, and
every `Temperature` inside moves along its schedule. The progress is a buffer,
so it is saved in ``state_dict()``, and restoring the best epoch's weights also
restores the temperature those weights were trained with.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor, nn

from encoders.base import EncoderError

logger = logging.getLogger(__name__)

TEMPERATURE_MODES = ("fixed", "learned", "annealed")


class Temperature(nn.Module):
    """Per-feature softmax temperature, shape (n_features,), always > 0.

    Modes:

    - ``fixed``: ``initial`` throughout (a buffer).
    - ``learned``: a parameter ``log(tau)`` that starts at ``log(initial)``.
    - ``annealed``: ``initial * anneal_ratio ** progress``, a geometric schedule
      from ``initial`` at progress 0 to ``initial * anneal_ratio`` at progress 1.
      Until `set_progress` is called, progress is 0 and a warning is logged once
      at the first training-mode call.

    Args:
        n_features: Number of features, one temperature each.
        initial: Start temperature, > 0.
        mode: One of `TEMPERATURE_MODES`.
        anneal_ratio: Final over initial temperature in ``annealed`` mode, > 0.
    """

    def __init__(
        self, n_features: int, initial: float, mode: str, anneal_ratio: float = 0.01
    ) -> None:
        super().__init__()
        if mode not in TEMPERATURE_MODES:
            raise EncoderError(
                f"temperature_mode={mode!r} is invalid; use one of "
                f"{list(TEMPERATURE_MODES)}."
            )
        if not (math.isfinite(initial) and initial > 0):
            raise EncoderError(
                f"temperature={initial!r} is invalid; use a finite number > 0."
            )
        if not (math.isfinite(anneal_ratio) and anneal_ratio > 0):
            raise EncoderError(
                f"anneal_ratio={anneal_ratio!r} is invalid; use a finite number > 0."
            )
        self.mode = mode
        self.log_anneal_ratio = math.log(anneal_ratio)
        log_initial = torch.full((n_features,), math.log(initial))
        if mode == "learned":
            self.log_temperature = nn.Parameter(log_initial)
        else:
            self.register_buffer("log_temperature", log_initial)
        self.register_buffer("progress", torch.zeros(()))
        self._progress_set = False
        self._warned = False

    def set_progress(self, fraction: float) -> None:
        """Set the fraction of training done, in [0, 1]; used in ``annealed`` mode.

        Raises:
            EncoderError: if ``fraction`` is outside [0, 1] or not finite.
        """
        if not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0):
            raise EncoderError(
                f"Training progress {fraction!r} is invalid; pass a fraction in [0, 1]."
            )
        self.progress.fill_(fraction)
        self._progress_set = True

    def _current_log(self) -> Tensor:
        log_temperature = self.log_temperature
        if self.mode == "annealed":
            if self.training and not self._progress_set and not self._warned:
                self._warned = True
                logger.warning(
                    "Annealed temperature used in training, but set_progress was "
                    "never called: the temperature stays at its initial value. The "
                    "trainer must call encoders.set_training_progress(model, "
                    "fraction) before each step."
                )
            log_temperature = log_temperature + self.progress * self.log_anneal_ratio
        return log_temperature

    def forward(self) -> Tensor:
        """Return the current temperature of every feature, shape (n_features,)."""
        return self._current_log().exp()

    def log(self) -> Tensor:
        """Return log(temperature) of every feature, shape (n_features,).

        In ``learned`` mode this is the parameter itself, with no operation.
        """
        return self._current_log()

    def inverse(self) -> Tensor:
        """Return 1 / temperature, shape (n_features,), in two operations."""
        return torch.exp(-self._current_log())

    def describe(self) -> dict[str, object]:
        """Return the mode and the current per-feature temperatures, for a run log."""
        with torch.no_grad():
            values = self().double().cpu().tolist()
        return {
            "mode": self.mode,
            "progress": float(self.progress),
            "per_feature": values,
        }


def set_training_progress(model: nn.Module, fraction: float) -> int:
    """Call ``set_progress(fraction)`` on every submodule of ``model`` that has it.

    This is the hook a trainer calls before each training step for annealed
    temperatures, with ``fraction`` = steps done / total steps. A module's
    ``set_progress`` must be idempotent, because both an encoder module and its
    `Temperature` child receive the call.

    Returns:
        The number of modules updated (0 when nothing in the model anneals).
    """
    updated = 0
    for module in model.modules():
        set_progress = getattr(module, "set_progress", None)
        if callable(set_progress):
            set_progress(fraction)
            updated += 1
    return updated


#: How far below its row's maximum a score may lie; see `raise_low_scores`.
SCORE_FLOOR = 80.0


def raise_low_scores(scores: Tensor, mask: Tensor | None = None) -> Tensor:
    """Raise scores more than 80 below their row's maximum to that level, in place.

    The raise changes weights smaller than exp(-80) = 1.8e-35 times the
    largest, which float32 and float64 sums cannot resolve next to it. Without
    it, exp of scores 87 to 103 below the maximum gives subnormal floats, and
    softmax and its backward pass run 2 to 4 times slower on x86 CPUs
    (measured on 8 x 4096 x 32 scores).

    Args:
        scores: Shape (..., n_bins), modified in place and returned.
        mask: None, or 0 for real bins and minus infinity for padding,
            broadcastable to ``scores``, so that padded bins keep a score of
            minus infinity.
    """
    floor = scores.amax(dim=-1, keepdim=True).sub_(SCORE_FLOOR)
    if mask is not None:
        floor = floor + mask
    return scores.clamp_min_(floor)


def keep_top_k(scores: Tensor, k: int) -> Tensor:
    """Set all but the ``k`` largest scores on the last axis to minus infinity.

    A softmax of the result is the softmax restricted to the top k entries, so
    their weights sum to 1. Entries tied with the k-th largest are all kept.
    ``k = 0`` or ``k`` at least the axis length returns ``scores`` unchanged.
    """
    if k <= 0 or k >= scores.shape[-1]:
        return scores
    threshold = scores.topk(k, dim=-1).values[..., -1:]
    return scores.masked_fill(scores < threshold, float("-inf"))
