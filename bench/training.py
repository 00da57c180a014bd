"""Training one encoder + MLP with Lightning, with data kept on the device.

Batches are shuffled index tensors into device-resident feature tensors, so no
per-sample collation happens. Early stopping watches the validation RMSE in the
target's original units and restores the best weights at the end of fitting.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.plugins.environments import LightningEnvironment
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch import Tensor, nn

from bench.batches import (
    COMPILE_BACKEND,
    NO_ACCELERATION,
    Acceleration,
    EpochPermutations,
    SequentialBatches,
    ShuffledBatches,
)
from bench.model import Regressor, count_parameters
from encoders import Encoder, set_training_progress
from tasks import Preprocessed

logger = logging.getLogger(__name__)

MONITOR = "val_rmse"
BACKBONE_KEYS = ("n_blocks", "d_block", "dropout", "lr", "weight_decay")
ENCODER_PREFIX = "encoder."

warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")


@dataclass
class Part:
    """One split part as tensors on the training device (float32)."""

    x_num: Tensor
    x_cat: Tensor
    y: Tensor

    @classmethod
    def from_arrays(cls, arrays: Preprocessed, device: torch.device) -> Part:
        return cls(
            x_num=torch.as_tensor(arrays.x_num, device=device),
            x_cat=torch.as_tensor(arrays.x_cat, device=device),
            y=torch.as_tensor(arrays.y, device=device),
        )

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class DeviceData:
    """Train, validation and test parts plus the target's standardization."""

    train: Part
    val: Part
    test: Part
    y_mean: float
    y_std: float


@dataclass
class FitResult:
    """Outcome of one training run. RMSE values are in original target units."""

    best_val_rmse: float
    best_epoch: int
    epochs_run: int
    curve: list[float] = field(default_factory=list)
    train_time_s: float = 0.0


class RegressionTask(pl.LightningModule):
    """MSE training of a `Regressor` over index batches of device tensors.

    Lightning gets one batch per epoch, the epoch's permutation of the training
    rows, and `training_step` runs the epoch's optimizer steps over its
    slices (manual optimization with the plain torch optimizer). Lightning's
    per-batch hooks then run once per epoch instead of once per step. Index
    batches from `bench.batches` replace a ``DataLoader``. Together these took
    the CPU time per epoch from 1.36x to about 1.02x that of a bare PyTorch
    loop (2-core CPU, 79 steps per epoch, see docs/benchmarks.md).
    Validation, callbacks and early stopping stay per epoch.
    """

    def __init__(
        self,
        model: Regressor,
        data: DeviceData,
        lr: float,
        weight_decay: float,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.model = model
        self.data = data
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.automatic_optimization = False
        # A compiled forward is a plain function, not a submodule, so the
        # state_dict keys stay those of the model.
        self._compiled_forward: Callable[[Tensor, Tensor], Tensor] | None = None

    def compile_forward(self) -> None:
        """Compile the model's forward for training steps (`COMPILE_BACKEND`)."""
        self._compiled_forward = torch.compile(
            self.model.forward, backend=COMPILE_BACKEND
        )

    def train_dataloader(self) -> EpochPermutations:  # override
        batches = ShuffledBatches(
            len(self.data.train), self.batch_size, self.seed, self.data.train.y.device
        )
        return EpochPermutations(batches)

    def val_dataloader(self) -> SequentialBatches:  # override
        return SequentialBatches(
            len(self.data.val), self.eval_batch_size, self.data.val.y.device
        )

    def on_fit_start(self) -> None:  # override
        self._anneals = set_training_progress(self.model, 0.0) > 0
        self._steps_done = 0
        steps_per_epoch = math.ceil(len(self.data.train) / self.batch_size)
        self._total_steps = max(1, self.trainer.max_epochs * steps_per_epoch)

    def training_step(self, order: Tensor, batch_idx: int) -> None:  # override
        part = self.data.train
        optimizer = self.optimizers(use_pl_optimizer=False)
        forward = self._compiled_forward or self.model
        for index in order.split(self.batch_size):
            if self._anneals:
                progress = min(1.0, self._steps_done / self._total_steps)
                set_training_progress(self.model, progress)
            prediction = forward(part.x_num[index], part.x_cat[index])
            loss = nn.functional.mse_loss(prediction.float(), part.y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            self._steps_done += 1

    def on_validation_epoch_start(self) -> None:  # override
        self._squared_error = torch.zeros((), device=self.device)

    def validation_step(self, index: Tensor, batch_idx: int) -> None:  # override
        part = self.data.val
        prediction = self.model(part.x_num[index], part.x_cat[index])
        self._squared_error += ((prediction.float() - part.y[index]) ** 2).sum()

    def on_validation_epoch_end(self) -> None:  # override
        mse = self._squared_error / len(self.data.val)
        self.log(MONITOR, mse.sqrt() * self.data.y_std)

    def configure_optimizers(self) -> torch.optim.Optimizer:  # override
        return torch.optim.AdamW(
            self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )


class BestWeights(pl.Callback):
    """Early stopping on a logged metric that keeps and restores the best weights.

    Raises:
        KeyError: at the first validation if ``monitor`` was not logged, listing
            the names that were.
        FloatingPointError: if the metric is NaN or infinite (a diverged run).
    """

    def __init__(self, monitor: str, patience: int) -> None:
        self.monitor = monitor
        self.patience = patience
        self.best = math.inf
        self.best_epoch = -1
        self.curve: list[float] = []
        self._wait = 0
        self._state: dict[str, Tensor] | None = None

    def on_validation_end(
        self, trainer: pl.Trainer, module: pl.LightningModule
    ) -> None:
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            raise KeyError(
                f"Early stopping monitors {self.monitor!r}, which was not logged; "
                f"logged metrics: {sorted(metrics)}."
            )
        value = float(metrics[self.monitor])
        if not math.isfinite(value):
            raise FloatingPointError(
                f"{self.monitor} is {value} at epoch {trainer.current_epoch}: the "
                "training diverged."
            )
        self.curve.append(value)

        if value < self.best:
            self.best, self.best_epoch, self._wait = value, trainer.current_epoch, 0
            self._state = {
                k: v.detach().clone() for k, v in module.state_dict().items()
            }
        else:
            self._wait += 1
            if self._wait >= self.patience:
                trainer.should_stop = True

    def on_fit_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self._state is not None:
            module.load_state_dict(self._state)


def split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split flat trial parameters into backbone and encoder parameters."""
    backbone = {k: v for k, v in params.items() if k in BACKBONE_KEYS}
    encoder = {
        k.removeprefix(ENCODER_PREFIX): v
        for k, v in params.items()
        if k.startswith(ENCODER_PREFIX)
    }
    return backbone, encoder


def build_model(
    encoder_cls: type[Encoder], params: dict[str, Any], data: DeviceData
) -> tuple[Regressor, Encoder]:
    """Fit the encoder on the training rows and build the full model."""
    backbone, encoder_params = split_params(params)
    n_num = data.train.x_num.shape[1]
    encoder = encoder_cls(**encoder_params)
    module = None
    if n_num:
        encoder.fit(data.train.x_num, data.train.y)
        module = encoder.build(n_num)
    model = Regressor(
        module,
        d_cat=data.train.x_cat.shape[1],
        n_blocks=int(backbone["n_blocks"]),
        d_block=int(backbone["d_block"]),
        dropout=float(backbone["dropout"]),
    )
    return model, encoder


def fit(
    model: Regressor,
    data: DeviceData,
    params: dict[str, Any],
    *,
    max_epochs: int,
    patience: int,
    batch_size: int,
    eval_batch_size: int,
    seed: int,
    callbacks: Sequence[pl.Callback] = (),
    acceleration: Acceleration = NO_ACCELERATION,
) -> FitResult:
    """Train ``model`` in place with AdamW and early stopping; restore the best.

    Args:
        params: Must hold ``lr`` and ``weight_decay``.
        seed: Seeds the data order and dropout (initialization is seeded by the
            caller before the model is built).
        callbacks: Extra Lightning callbacks, run after early stopping.
        acceleration: bf16 autocast and ``torch.compile``, both off by default.

    Raises:
        ValueError: if the data's device cannot run ``acceleration``.
    """
    task = RegressionTask(
        model,
        data,
        lr=float(params["lr"]),
        weight_decay=float(params["weight_decay"]),
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        seed=seed,
    )
    stopper = BestWeights(MONITOR, patience)
    device = data.train.y.device
    acceleration.check(device)
    if acceleration.compile:
        task.compile_forward()
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=[device.index or 0] if device.type == "cuda" else 1,
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        precision=acceleration.precision(),
        inference_mode=True,
        callbacks=[stopper, *callbacks],
        # A plain environment even inside a Slurm job: the Slurm runner does
        # its own requeueing, and Lightning's would act on the same signals.
        plugins=[LightningEnvironment()],
    )

    started = time.perf_counter()
    try:
        trainer.fit(task)
    except SystemExit as error:
        raise _as_interrupt(error) from None
    return FitResult(
        best_val_rmse=stopper.best,
        best_epoch=stopper.best_epoch,
        epochs_run=len(stopper.curve),
        curve=stopper.curve,
        train_time_s=time.perf_counter() - started,
    )


def _as_interrupt(error: SystemExit) -> BaseException:
    """Return the interrupt behind Lightning's ``SystemExit``, else ``error``.

    Lightning 2.6 ends ``fit`` with ``sys.exit(1)`` after a ``KeyboardInterrupt``
    and raises ``SIGTERMException`` (a ``SystemExit``) after SIGTERM. Callers
    need a ``KeyboardInterrupt`` instead, so that Optuna marks the trial FAIL
    and the command line reports the interruption.
    """
    if isinstance(error.__context__, KeyboardInterrupt):
        return error.__context__
    if isinstance(error, SIGTERMException):
        return KeyboardInterrupt("SIGTERM")
    return error


def train_model(
    encoder_cls: type[Encoder],
    params: dict[str, Any],
    data: DeviceData,
    *,
    seed: int,
    max_epochs: int,
    patience: int,
    batch_size: int,
    eval_batch_size: int,
    callbacks: Sequence[pl.Callback] = (),
    acceleration: Acceleration = NO_ACCELERATION,
) -> tuple[Regressor, Encoder, FitResult]:
    """Seed everything, build encoder + MLP, and train it (see `fit`)."""
    seed_everything(seed, verbose=False)
    model, encoder = build_model(encoder_cls, params, data)
    model = model.to(data.train.y.device)
    result = fit(
        model,
        data,
        params,
        max_epochs=max_epochs,
        patience=patience,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        seed=seed,
        callbacks=callbacks,
        acceleration=acceleration,
    )
    return model, encoder, result


@torch.inference_mode()
def predict(model: Regressor, part: Part, batch_size: int) -> np.ndarray:
    """Return standardized predictions for every row of ``part`` (float32)."""
    model.eval()
    outputs = [
        model(part.x_num[i : i + batch_size], part.x_cat[i : i + batch_size])
        for i in range(0, len(part), batch_size)
    ]
    return torch.cat(outputs).float().cpu().numpy()


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Return RMSE, MAE and R² of predictions, in the units of ``y_true``."""
    y_true = np.asarray(y_true, dtype=np.float64)
    error = np.asarray(y_pred, dtype=np.float64) - y_true
    total = float(((y_true - y_true.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float((error**2).sum()) / total if total > 0 else float("nan"),
    }


__all__ = [
    "BestWeights",
    "DeviceData",
    "FitResult",
    "Part",
    "count_parameters",
    "predict",
    "regression_metrics",
    "train_model",
]
