"""Forward + backward time of encoders on one fixed batch, for a cost comparison.

Every encoder gets the same input batch, the same number of bins (or
meta-embeddings for ``autodis``) and the same embedding size wherever it has
those parameters, and its defaults for everything else. Bins are fitted on a
fixed standard-normal training set, so quantile bins get the requested count
and tree bins at most that. The timed step is ``module(x)`` followed by
``output.backward(gradient)`` with a fixed dense random gradient, the
encoder's share of one training step: in training the gradient comes dense
from the MLP. (The gradient of ``output.sum()`` is an expanded tensor with
zero strides, which sends matrix products down a slow path that training
never takes.) Modules
without parameters (``none``, ``onehot-bins``, the bare PLE encodings) have no
backward pass, so only their forward pass is timed.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from encoders.base import Encoder, EncoderError
from encoders.registry import available_encoders

logger = logging.getLogger(__name__)

#: Busy share of all CPUs above which `warn_if_busy` warns.
BUSY_SHARE = 0.25

#: Parameters set to the comparison's bin count, when an encoder has them.
BIN_PARAMETERS = ("n_bins", "n_meta_embeddings")
#: Minimum timed steps per encoder, because the p90 of `statistics.quantiles`
#: needs at least 2 values.
MIN_REPEATS = 2
#: Defaults of `time_encoders`, also printed by `format_settings`.
N_FEATURES = 8
N_BINS = 32
D_EMBEDDING = 16
N_WARMUP = 10
#: Maximum rows of the timed batch. Every encoder's module, input and output
#: gradient stay in memory together: timing all 16 built-in encoders at the
#: defaults above with 65,536 rows and 2 timed steps peaked at 1.8 GB resident
#: memory (torch 2.13 CPU build, AMD EPYC). Larger ``n_bins`` or
#: ``d_embedding`` values need more memory per row.
MAX_BATCH_SIZE = 65_536


def _cpu_times() -> tuple[int, int]:
    """Return the idle and total CPU time of all CPUs so far, in clock ticks.

    Raises:
        OSError: where ``/proc/stat`` does not exist (outside Linux).
    """
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    # user nice system idle iowait irq softirq steal: idle and iowait are idle.
    return values[3] + values[4], sum(values)


def warn_if_busy(interval_s: float = 0.2) -> float | None:
    """Log a warning if other processes keep the CPUs busy; return the share.

    The share is the busy fraction of all CPUs over ``interval_s`` seconds in
    which this process sleeps, so it counts other processes only. It is None
    where the system does not report CPU times. Above `BUSY_SHARE`, the
    timings measure the other processes as well as the encoders.
    """
    try:
        idle_before, total_before = _cpu_times()
        time.sleep(interval_s)
        idle_after, total_after = _cpu_times()
    except OSError:
        return None
    total = total_after - total_before
    if total <= 0:
        return None
    share = 1 - (idle_after - idle_before) / total
    if share > BUSY_SHARE:
        logger.warning(
            "Other processes kept %.0f%% of the CPUs busy just before timing, so "
            "the timings include waiting for them. Time again on a quiet machine.",
            100 * share,
        )
    return share


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TimedStep:
    """One encoder's module and the forward + backward step that is timed.

    Args:
        cls: The encoder class.
        x_train: Features that bins are fitted on, shape (n_train, n_features).
        y_train: Target for tree bins, shape (n_train,).
        batch: The timed input, on the target device.
        n_bins: Value for ``n_bins`` or ``n_meta_embeddings`` if accepted.
        d_embedding: Value for ``d_embedding`` if accepted.
        extra: More parameter values, each set where the encoder accepts it.
    """

    def __init__(
        self,
        cls: type[Encoder],
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        batch: torch.Tensor,
        *,
        n_bins: int,
        d_embedding: int,
        extra: dict[str, Any] | None = None,
    ) -> None:
        accepted = cls.parameter_names()
        params: dict[str, Any] = {
            key: n_bins for key in BIN_PARAMETERS if key in accepted
        }
        if "d_embedding" in accepted:
            params["d_embedding"] = d_embedding
        params.update({k: v for k, v in (extra or {}).items() if k in accepted})
        encoder = cls(**params)
        encoder.fit(x_train, y_train)
        self.module = encoder.build(x_train.shape[1]).to(batch.device).train()
        self.parameters = list(self.module.parameters())
        self.batch = batch
        self.backward = False
        fitted_bins = encoder.summary().get("bins_per_feature")
        if fitted_bins:
            self.bins: int | None = max(fitted_bins)
        else:
            self.bins = next((params[k] for k in BIN_PARAMETERS if k in params), None)
        generator = torch.Generator().manual_seed(len(batch))
        gradient = torch.randn(len(batch), self.module.d_out, generator=generator)
        self.gradient = gradient.to(batch.device)

    def run(self) -> None:
        """Run the module forward, then backward if its output needs gradients."""
        for parameter in self.parameters:
            parameter.grad = None
        output = self.module(self.batch)
        self.backward = output.requires_grad
        if self.backward:
            output.backward(self.gradient)


def time_encoders(
    names: Sequence[str] | None = None,
    *,
    batch_size: int = 256,
    n_features: int = N_FEATURES,
    n_bins: int = N_BINS,
    d_embedding: int = D_EMBEDDING,
    n_train: int = 4096,
    n_warmup: int = N_WARMUP,
    n_repeats: int = 100,
    device: str | torch.device = "cpu",
    reference: str = "ple-quantile",
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Time forward + backward of each encoder's module on one fixed batch.

    Args:
        names: Registry names to time; None times every available encoder.
        batch_size: Rows in the timed batch.
        n_features: Numeric features in the batch.
        n_bins: Bins per feature (``n_bins``, or ``n_meta_embeddings`` for
            ``autodis``) for every encoder that has that parameter.
        d_embedding: Embedding size for every encoder that has ``d_embedding``.
        n_train: Rows of the training set that bins are fitted on.
        n_warmup: Untimed steps before timing.
        n_repeats: Timed steps; the median is reported.
        device: Where modules and data live. On CUDA every step is synchronized.
        reference: The encoder that ``ratio_to_reference`` divides by; the ratio
            is None if it is not among ``names``.
        seed: Seeds the data and the module initialization.
        params: More parameter values (for example ``{"scores": "interval"}``),
            each given to the encoders that accept it.

    Returns:
        One row per encoder, in the order of ``names``, with the keys ``encoder``,
        ``median_ms`` and ``p90_ms`` (milliseconds per step), ``ratio_to_reference``,
        ``backward`` (whether a backward pass was timed), ``d_out``,
        ``n_parameters``, ``bins`` (the largest fitted bin count, the
        meta-embedding count, or None),
        ``device`` and ``threads`` (torch CPU threads).

    Raises:
        EncoderError: if a name is not registered, or no encoder among
            ``names`` has a parameter of ``params``.
        ValueError: if ``n_repeats`` < `MIN_REPEATS`, ``n_warmup`` < 0, or
            ``batch_size`` is outside 1 to `MAX_BATCH_SIZE`.
    """
    if n_repeats < MIN_REPEATS or n_warmup < 0:
        raise ValueError(
            f"n_repeats={n_repeats}, n_warmup={n_warmup} are invalid; a p90 needs "
            f"n_repeats >= {MIN_REPEATS}, and n_warmup must be >= 0."
        )
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(
            f"batch_size={batch_size} is invalid; use 1 to {MAX_BATCH_SIZE} rows, "
            "because the batch and every encoder's gradient stay in memory together."
        )
    known = available_encoders()
    names = list(known) if names is None else list(names)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise EncoderError(
            f"Unknown encoders {unknown}. Available: {', '.join(sorted(known))}."
        )
    accepted = set().union(*(known[name].parameter_names() for name in names))
    ignored = sorted(set(params or {}) - accepted)
    if ignored:
        raise EncoderError(
            f"No encoder among {', '.join(names)} has the parameters {ignored}; "
            "see `bench encoders` for each encoder's parameters."
        )
    device = torch.device(device)
    if device.type == "cpu":
        warn_if_busy()
    generator = torch.Generator().manual_seed(seed)
    x_train = torch.randn(n_train, n_features, generator=generator)
    y_train = torch.sin(2 * x_train[:, 0]) + x_train[:, 1:].sum(dim=1)
    batch = torch.randn(batch_size, n_features, generator=generator).to(device)

    steps = {}
    for name in names:
        torch.manual_seed(seed)
        steps[name] = TimedStep(
            known[name],
            x_train,
            y_train,
            batch,
            n_bins=n_bins,
            d_embedding=d_embedding,
            extra=params,
        )
    for step in steps.values():
        for _ in range(n_warmup):
            step.run()
    _synchronize(device)
    # Round-robin over the encoders, so that load from other processes during
    # the measurement spreads evenly over them.
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(n_repeats):
        for name, step in steps.items():
            started = time.perf_counter()
            step.run()
            _synchronize(device)
            times[name].append((time.perf_counter() - started) * 1e3)

    rows = []
    for name, step in steps.items():
        rows.append(
            {
                "encoder": name,
                "median_ms": statistics.median(times[name]),
                "p90_ms": statistics.quantiles(times[name], n=10)[-1],
                "ratio_to_reference": None,
                "backward": step.backward,
                "d_out": int(step.module.d_out),
                "n_parameters": sum(p.numel() for p in step.parameters),
                "bins": step.bins,
                "device": str(device),
                "threads": torch.get_num_threads(),
            }
        )
        logger.info("Timed %s: %.3f ms per step", name, rows[-1]["median_ms"])

    by_name = {row["encoder"]: row for row in rows}
    if reference in by_name:
        base = by_name[reference]["median_ms"]
        for row in rows:
            row["ratio_to_reference"] = row["median_ms"] / base
    return rows


def format_settings(
    *,
    batch_size: int,
    n_repeats: int,
    threads: int,
    n_features: int = N_FEATURES,
    n_bins: int = N_BINS,
    d_embedding: int = D_EMBEDDING,
    n_warmup: int = N_WARMUP,
    params: dict[str, Any] | None = None,
) -> str:
    """Return one Markdown line with the settings of a `time_encoders` call.

    The keyword arguments are those given to `time_encoders`, whose defaults
    they share. ``threads`` is the torch CPU thread count during the timing.
    """
    line = (
        f"Settings: batch size {batch_size}, features {n_features}, bins {n_bins} "
        f"(meta-embeddings for autodis), embedding size {d_embedding}, torch "
        f"threads {threads}, timed steps {n_repeats} per encoder after {n_warmup} "
        "warm-up steps"
    )
    if params:
        values = ", ".join(f"{key}={value}" for key, value in params.items())
        line += f", encoder parameters {values}"
    return line + "."


def format_rows(rows: list[dict[str, Any]]) -> str:
    """Return the rows of `time_encoders` as a Markdown table."""
    header = (
        "| encoder | median ms | p90 ms | x reference | backward | d_out | params |"
    )
    lines = [header, "|---|---:|---:|---:|---|---:|---:|"]
    for row in rows:
        ratio = row["ratio_to_reference"]
        lines.append(
            f"| {row['encoder']} | {row['median_ms']:.3f} | {row['p90_ms']:.3f} | "
            f"{'' if ratio is None else f'{ratio:.2f}'} | {row['backward']} | "
            f"{row['d_out']} | {row['n_parameters']} |"
        )
    return "\n".join(lines)
