"""Final seeds of one configuration trained together as one vectorized model.

The S models of the seeds are built exactly as `bench.training.train_model`
builds each one (same seeding, same encoder fit), then their parameters are
stacked along a leading seed dimension (`torch.func.stack_module_state`) and
trained with one AdamW over the stacked tensors. AdamW works element by
element, so this equals S separate optimizers. The forward pass is
``vmap(functional_call(model, ...), randomness="different")``, so every seed
gets its own dropout masks. Each seed keeps its own data order (the same
`ShuffledBatches` order the sequential path uses), its own early stopping and
its own best weights. A seed that stops is removed from the stack, so it
changes no more and costs nothing afterwards.

Models that cannot run under ``vmap`` fall back to sequential training, and
the reason is logged (see `vmap_blocker`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from lightning.fabric.utilities.seed import seed_everything
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from bench.batches import ShuffledBatches
from bench.model import Regressor
from bench.training import DeviceData, FitResult, build_model, train_model
from encoders import Encoder, set_training_progress
from encoders.temperature import Temperature

logger = logging.getLogger(__name__)

#: Values of the preset key ``[final] vectorized``.
VECTORIZED_CHOICES = ("auto", True, False)
#: Widest MLP block for which ``"auto"`` vectorizes final seeds on CPU.
CPU_MAX_AUTO_WIDTH = 128


@dataclass
class SeedRun:
    """One trained seed: the model with its best weights restored, and its fit.

    In a vectorized group, ``result.train_time_s`` is the group's wall time
    divided by the number of seeds in the group.

    Attributes:
        mode: ``"vectorized"`` or ``"sequential: <reason>"``.
    """

    seed: int
    model: Regressor
    encoder: Encoder
    result: FitResult
    mode: str = "vectorized"


def resolve_vectorized(
    choice: bool | str, device: torch.device, params: dict[str, Any] | None = None
) -> bool:
    """Map the preset value to whether final seeds train together.

    ``"auto"`` is on for CUDA devices, and on CPU for MLP blocks of at most
    `CPU_MAX_AUTO_WIDTH` units (``params["d_block"]``). ``bench perf`` on a
    2-core AMD EPYC CPU with 15 seeds and one torch thread measured the
    vectorized model at 0.48-0.58x the time of sequential seeds for 2 x 64
    blocks and 0.79-0.81x for 2 x 128. For 2 x 256 it measured 0.71-1.14x,
    and about 1.0x for 2 x 512, so wider models gain nothing on that CPU.

    Raises:
        ValueError: if ``choice`` is not one of `VECTORIZED_CHOICES`.
    """
    if choice not in VECTORIZED_CHOICES:
        raise ValueError(
            f'vectorized = {choice!r} is invalid; use "auto", true or false.'
        )
    if choice == "auto":
        if device.type == "cuda":
            # NOTE: not yet measured on a GPU; scripts/perf_gpu.sh measures it.
            return True
        width = (params or {}).get("d_block")
        return width is not None and int(width) <= CPU_MAX_AUTO_WIDTH
    return bool(choice)


class _Stack:
    """Stacked parameters and buffers of the active seeds, with their optimizer.

    Buffers equal in every seed (bin edges of a deterministic fit, the
    annealing progress) are not stacked: the template model's own tensors
    serve every seed, so `set_training_progress` on the template reaches all.
    """

    def __init__(
        self, models: Sequence[Regressor], lr: float, weight_decay: float
    ) -> None:
        self.template = models[0]
        self.lr = lr
        self.weight_decay = weight_decay
        params, _ = stack_module_state(list(models))
        self.params: dict[str, Tensor] = params
        self.buffers: dict[str, Tensor] = {}
        for name, buffer in models[0].named_buffers():
            others = [dict(m.named_buffers())[name] for m in models[1:]]
            if not all(torch.equal(buffer, other) for other in others):
                self.buffers[name] = torch.stack([buffer, *others])
        self.optimizer = torch.optim.AdamW(
            list(self.params.values()), lr=lr, weight_decay=weight_decay
        )

    def state(self, position: int) -> dict[str, Tensor]:
        """Return a copy of the weights of the seed at ``position`` of the stack."""
        state = {
            name: tensor.detach().clone()
            for name, tensor in self.template.state_dict().items()
        }
        for name, tensor in [*self.params.items(), *self.buffers.items()]:
            if name in state:
                state[name] = tensor[position].detach().clone()
        return state

    def keep(self, positions: list[int]) -> None:
        """Drop every seed whose position is not in ``positions``.

        The AdamW state (moments, and the step count, which every seed shares)
        is carried over, so the kept seeds continue exactly as before.
        """
        index = torch.tensor(positions, device=next(iter(self.params.values())).device)
        size = next(iter(self.params.values())).shape[0]
        old_state = self.optimizer.state
        params = {}
        for name, tensor in self.params.items():
            params[name] = tensor.detach()[index].clone().requires_grad_(True)
        self.buffers = {name: b[index] for name, b in self.buffers.items()}
        optimizer = torch.optim.AdamW(
            list(params.values()), lr=self.lr, weight_decay=self.weight_decay
        )
        for name, old in self.params.items():
            if old not in old_state:
                continue
            optimizer.state[params[name]] = {
                key: value[index].clone()
                if torch.is_tensor(value) and value.ndim > 0 and value.shape[0] == size
                else (value.clone() if torch.is_tensor(value) else value)
                for key, value in old_state[old].items()
            }
        self.params = params
        self.optimizer = optimizer

    def loss_function(self) -> Callable[..., Tensor]:
        """Return ``(params, buffers, x_num, x_cat, y) -> (S,)`` MSE per seed."""

        def loss(params, buffers, x_num, x_cat, y):
            prediction = functional_call(
                self.template, {**params, **buffers}, (x_num, x_cat), strict=False
            )
            return nn.functional.mse_loss(prediction, y)

        return vmap(loss, randomness="different")

    def predict_function(self) -> Callable[..., Tensor]:
        """Return ``(params, buffers, x_num, x_cat) -> (S, batch)`` predictions.

        The inputs are shared by every seed (not stacked).
        """

        def forward(params, buffers, x_num, x_cat):
            return functional_call(
                self.template, {**params, **buffers}, (x_num, x_cat), strict=False
            )

        return vmap(forward, in_dims=(0, 0, None, None), randomness="different")


def vmap_blocker(models: Sequence[Regressor], data: DeviceData) -> str | None:
    """Return why ``models`` cannot train as one vmapped stack, or None if they can.

    Checked: parameter and buffer shapes agree between seeds, annealing only
    goes through `encoders.temperature.Temperature` (whose progress buffer is
    shared), and one forward + backward pass on two training rows runs under
    ``vmap``.
    """
    shapes = [{n: p.shape for n, p in m.named_parameters()} for m in models]
    if any(s != shapes[0] for s in shapes[1:]):
        return "the seeds' parameters differ in name or shape"
    buffers = [{n: b.shape for n, b in m.named_buffers()} for m in models]
    if any(b != buffers[0] for b in buffers[1:]):
        return "the seeds' buffers differ in name or shape (a seed-dependent fit)"
    for name, module in models[0].named_modules():
        if callable(getattr(module, "set_progress", None)) and not any(
            isinstance(child, Temperature) for child in module.modules()
        ):
            return (
                f"module {name or 'model'} ({type(module).__name__}) anneals "
                "without a Temperature, whose progress buffer vmap can share"
            )
    # Progress 0 is every model's start value; setting it keeps an annealed
    # Temperature from warning that the trainer never set it.
    set_training_progress(models[0], 0.0)
    probe = _Stack(models[:2], lr=0.0, weight_decay=0.0)
    rows = torch.arange(min(2, len(data.train)), device=data.train.y.device)
    index = torch.stack([rows, rows])
    part = data.train
    was_training = probe.template.training
    try:
        probe.template.train()
        losses = probe.loss_function()(
            probe.params,
            probe.buffers,
            part.x_num[index],
            part.x_cat[index],
            part.y[index],
        )
        losses.sum().backward()
    except Exception as error:  # any operator may lack a vmap rule
        first_line = str(error).strip().splitlines()[0] if str(error) else ""
        return f"vmap failed: {type(error).__name__}: {first_line}"
    finally:
        probe.template.train(was_training)
    return None


def train_seeds(
    encoder_cls: type[Encoder],
    params: dict[str, Any],
    data: DeviceData,
    seeds: Sequence[int],
    *,
    max_epochs: int,
    patience: int,
    batch_size: int,
    eval_batch_size: int,
    vectorized: bool = True,
) -> tuple[list[SeedRun], str]:
    """Train one configuration for each seed, together where possible.

    Seed ``s`` gets the initialization, encoder fit and data order that
    ``train_model(..., seed=s)`` gives it, and the same early stopping on the
    validation RMSE. With dropout 0 the predictions agree with the sequential
    path within float32 rounding. Dropout masks differ from it, because the
    random stream is drawn differently.

    NOTE: with dropout, a seed's masks also depend on which seeds share its
    group, so a resumed study that trains fewer seeds together draws other
    (equally valid) masks for them.

    Args:
        seeds: Seeds to train, at least one.
        vectorized: False trains the seeds one after another with
            `train_model`, as does a model that `vmap_blocker` rejects.

    Returns:
        The runs in the order of ``seeds``, and how they were trained:
        ``"vectorized"`` or ``"sequential: <reason>"``.

    Raises:
        FloatingPointError: if a seed's validation RMSE is NaN or infinite.
    """
    if not seeds:
        raise ValueError("train_seeds needs at least one seed.")
    loop = {
        "max_epochs": max_epochs,
        "patience": patience,
        "batch_size": batch_size,
        "eval_batch_size": eval_batch_size,
    }
    reason = "vectorized training is off" if not vectorized else None
    if reason is None and len(seeds) < 2:
        reason = "a single seed"
    built: list[tuple[Regressor, Encoder]] = []
    if reason is None:
        for seed in seeds:
            seed_everything(seed, verbose=False)
            model, encoder = build_model(encoder_cls, params, data)
            built.append((model.to(data.train.y.device), encoder))
        reason = vmap_blocker([model for model, _ in built], data)
        if reason is not None:
            logger.info(
                "%s: %d seeds train one after another: %s",
                encoder_cls.name,
                len(seeds),
                reason,
            )
    if reason is not None:
        runs = []
        for seed in seeds:
            model, encoder, result = train_model(
                encoder_cls, params, data, seed=seed, **loop
            )
            runs.append(SeedRun(seed, model, encoder, result, f"sequential: {reason}"))
        return runs, f"sequential: {reason}"

    logger.info("%s: %d seeds train as one vmapped model", encoder_cls.name, len(seeds))
    results = _fit_stack(built, data, params, list(seeds), **loop)
    runs = [
        SeedRun(seed, model, encoder, result)
        for seed, (model, encoder), result in zip(seeds, built, results, strict=True)
    ]
    return runs, "vectorized"


@dataclass
class _SeedProgress:
    """Early-stopping state of one seed (the rules of `training.BestWeights`)."""

    best: float = math.inf
    best_epoch: int = -1
    wait: int = 0
    state: dict[str, Tensor] | None = None
    stopped: bool = False


def _fit_stack(
    built: list[tuple[Regressor, Encoder]],
    data: DeviceData,
    params: dict[str, Any],
    seeds: list[int],
    *,
    max_epochs: int,
    patience: int,
    batch_size: int,
    eval_batch_size: int,
) -> list[FitResult]:
    """Train the stacked models; load each seed's best weights into its model."""
    models = [model for model, _ in built]
    device = data.train.y.device
    stack = _Stack(models, float(params["lr"]), float(params["weight_decay"]))
    template = stack.template
    orders = [ShuffledBatches(len(data.train), batch_size, s, device) for s in seeds]
    progress = [_SeedProgress() for _ in seeds]
    curves: list[list[float]] = [[] for _ in seeds]
    active = list(range(len(seeds)))
    anneals = set_training_progress(template, 0.0) > 0
    total_steps = max(1, max_epochs * len(orders[0]))
    steps_done = 0
    loss_function = stack.loss_function()
    predict_function = stack.predict_function()
    train = data.train

    started = time.perf_counter()
    for epoch in range(max_epochs):
        template.train()
        order = torch.stack([orders[i].epoch_order() for i in active])
        for index in order.split(batch_size, dim=1):
            if anneals:
                set_training_progress(template, min(1.0, steps_done / total_steps))
            losses = loss_function(
                stack.params,
                stack.buffers,
                train.x_num[index],
                train.x_cat[index],
                train.y[index],
            )
            stack.optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            stack.optimizer.step()
            steps_done += 1

        rmse = _validation_rmse(stack, predict_function, data, eval_batch_size)
        for position, i in enumerate(active):
            value = float(rmse[position])
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"val_rmse of seed {seeds[i]} is {value} at epoch {epoch}: the "
                    "training diverged."
                )
            curves[i].append(value)
            seed_progress = progress[i]
            if value < seed_progress.best:
                seed_progress.best, seed_progress.best_epoch = value, epoch
                seed_progress.wait = 0
                seed_progress.state = stack.state(position)
            else:
                seed_progress.wait += 1
                seed_progress.stopped = seed_progress.wait >= patience
        continuing = [p for p, i in enumerate(active) if not progress[i].stopped]
        if not continuing:
            break
        if len(continuing) < len(active):
            stopped = [seeds[i] for i in active if progress[i].stopped]
            logger.debug("Seeds %s stopped after epoch %d", stopped, epoch)
            stack.keep(continuing)
            active = [active[p] for p in continuing]
    elapsed = time.perf_counter() - started

    results = []
    for i, model in enumerate(models):
        if progress[i].state is not None:
            model.load_state_dict(progress[i].state)
        results.append(
            FitResult(
                best_val_rmse=progress[i].best,
                best_epoch=progress[i].best_epoch,
                epochs_run=len(curves[i]),
                curve=curves[i],
                train_time_s=elapsed / len(models),
            )
        )
    return results


def _validation_rmse(
    stack: _Stack,
    predict_function: Callable[..., Tensor],
    data: DeviceData,
    eval_batch_size: int,
) -> Tensor:
    """Return the validation RMSE of every active seed, in target units (S,).

    Each chunk contains ``eval_batch_size`` rows over all seeds together, so
    the activations stay as large as one seed's evaluation batch.
    """
    stack.template.eval()
    part = data.val
    n_seeds = next(iter(stack.params.values())).shape[0]
    rows = max(1, eval_batch_size // n_seeds)
    with torch.inference_mode():
        squared_error = None
        for start in range(0, len(part), rows):
            end = start + rows
            prediction = predict_function(
                stack.params,
                stack.buffers,
                part.x_num[start:end],
                part.x_cat[start:end],
            )
            batch_error = ((prediction - part.y[start:end]) ** 2).sum(dim=1)
            squared_error = (
                batch_error if squared_error is None else squared_error + batch_error
            )
        assert squared_error is not None
        return (squared_error / len(part)).sqrt() * data.y_std
