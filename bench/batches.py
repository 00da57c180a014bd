"""Index batches over device-resident tensors, and the optional fast paths.

Training draws batches as slices of one random permutation of the row indices
per epoch, so no per-sample collation runs. `ShuffledBatches` is the single
definition of that order: the Lightning path (`bench.training`) and the
vectorized seeds (`bench.vectorized`) both use it, so seed ``s`` gets the same
batches in both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

#: Backend of ``torch.compile`` when `Acceleration.compile` is on.
COMPILE_BACKEND = "inductor"


class ShuffledBatches:
    """Row-index batches of one random permutation per epoch (the last may be short).

    Each ``iter()`` starts a new epoch: it draws ``torch.randperm(n_rows)`` from
    a CPU generator seeded once with ``seed`` and yields its consecutive slices
    of ``batch_size`` indices as int64 tensors on ``device``.
    """

    def __init__(
        self,
        n_rows: int,
        batch_size: int,
        seed: int,
        device: torch.device | str = "cpu",
    ) -> None:
        if n_rows < 1 or batch_size < 1:
            raise ValueError(
                f"n_rows={n_rows}, batch_size={batch_size} are invalid; both must "
                "be >= 1."
            )
        self.n_rows = n_rows
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-self.n_rows // self.batch_size)

    def epoch_order(self) -> Tensor:
        """Draw the next epoch's permutation of the row indices (on ``device``)."""
        order = torch.randperm(self.n_rows, generator=self.generator)
        return order.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[Tensor]:
        return iter(self.epoch_order().split(self.batch_size))


class EpochPermutations:
    """A one-item-per-epoch iterable: the permutation of `ShuffledBatches`.

    Lightning treats each item as one batch, so the training step receives a
    whole epoch's order and runs every optimizer step of the epoch itself.
    """

    def __init__(self, batches: ShuffledBatches) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[Tensor]:
        yield self.batches.epoch_order()


class SequentialBatches:
    """Row-index batches ``[0, b), [b, 2b), ...`` for evaluation, as tensors."""

    def __init__(
        self, n_rows: int, batch_size: int, device: torch.device | str = "cpu"
    ) -> None:
        if n_rows < 1 or batch_size < 1:
            raise ValueError(
                f"n_rows={n_rows}, batch_size={batch_size} are invalid; both must "
                "be >= 1."
            )
        self.n_rows = n_rows
        self.batch_size = batch_size
        self.device = torch.device(device)

    def __len__(self) -> int:
        return -(-self.n_rows // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        indices = torch.arange(self.n_rows, device=self.device)
        return iter(indices.split(self.batch_size))


@dataclass(frozen=True)
class Acceleration:
    """Optional speed-ups of the training step, off unless requested.

    Attributes:
        bf16: Run forward and backward under bfloat16 autocast (weights and
            optimizer state stay float32). Lightning's ``bf16-mixed`` precision.
        compile: Compile the model's forward with ``torch.compile``.
    """

    bf16: bool = False
    compile: bool = False

    def check(self, device: torch.device) -> None:
        """Raise ValueError if ``device`` cannot run the requested speed-ups."""
        if self.bf16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(
                f"bf16 was requested, but {torch.cuda.get_device_name(device)} does "
                "not support bfloat16; turn bf16 off."
            )
        if self.bf16 and device.type not in ("cpu", "cuda"):
            raise ValueError(
                f"bf16 was requested on device {device}; it is supported on cpu "
                "and cuda only."
            )

    def precision(self) -> str:
        """Return the Lightning ``precision`` setting."""
        return "bf16-mixed" if self.bf16 else "32-true"


#: No speed-up: float32 and eager execution.
NO_ACCELERATION = Acceleration()
