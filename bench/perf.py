"""``bench perf``: how close a trial comes to a bare PyTorch loop, in one run.

Four measurements, each written as a Markdown table and as JSON together with
the machine it ran on:

1. training: seconds per epoch of the project's path (`bench.training.
   train_model`, Lightning) against a bare PyTorch loop with the same model,
   the same device tensors, the same index batches and the same number of
   optimizer steps, plus one validation pass per epoch under
   ``torch.inference_mode`` as the project path does;
2. encoders: forward + backward time of every encoder on one fixed batch
   (`encoders.speed.time_encoders`);
3. data: a cached Parquet dataset to preprocessed tensors on the device, the
   path of `bench.pipeline` (cache read with checksum, split, preprocessing,
   tensors);
4. seeds: S final seeds trained one after another against S seeds trained
   together as one vectorized model (`bench.vectorized`), next to the
   arithmetic floor: the time the model's matrix products alone take at the
   rate this machine reaches for them (see `matmul_floor`).

Every timing is reported as wall-clock and as CPU time of this process
(``time.process_time``, all threads). On a machine shared with other
processes, the CPU time is the steadier of the two; on CUDA, only the wall
time is meaningful. The training paths run alternately (bare, project, bare,
...), so that load from other processes spreads over both. Their ratios use
the fastest run of each path, because other processes only ever add time.
The data path reports the median.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.seed import seed_everything
from torch import nn

from bench.batches import Acceleration, ShuffledBatches
from bench.config import load_preset
from bench.training import DeviceData, build_model, train_model
from bench.vectorized import train_seeds
from encoders import get_encoder
from encoders.speed import format_rows, time_encoders
from tasks import DatasetError, DataSources, load_dataset
from tasks.mirror import Mirror
from tasks.suites import SuiteEntry

logger = logging.getLogger(__name__)

SECTIONS = ("training", "encoders", "data", "seeds")
#: The largest dataset of the demo mirror: BNG(pwLinear), 177,147 rows.
DEFAULT_DATASET = 1203
#: Goals of the measurement, reported next to the figures and never asserted.
GOALS = {
    "training": ("project path / bare loop per epoch", "<= 1.10"),
    "seeds": ("vectorized / sequential seeds", "<= 0.50"),
    "data": ("cached dataset to tensors", "< 1 s"),
}


@dataclass(frozen=True)
class PerfSettings:
    """Sizes of the measurements. Times are in seconds, sizes in rows.

    Attributes:
        train_rows: Cap on training rows for the training and seeds sections
            (the preset's ``train_cap``); None keeps every row. The data
            section always uses the whole dataset.
        epochs: Epochs per training run in the training section; early
            stopping cannot end a run sooner (patience = epochs).
        repeats: Runs of each path in the training section (the fastest is
            compared, the median reported too).
        seeds: Final seeds in the seeds section.
        seed_epochs: Epochs per seed in the seeds section.
        encoder_repeats: Timed steps per encoder.
        data_repeats: Timed passes of the data path.
        threads: torch CPU threads; None keeps torch's default.
        bf16: Add a training row with bf16 autocast.
        compile: Add a training row with ``torch.compile``.
    """

    dataset: int = DEFAULT_DATASET
    device: str = "auto"
    train_rows: int | None = 20_000
    n_blocks: int = 2
    d_block: int = 256
    dropout: float = 0.1
    batch_size: int = 256
    eval_batch_size: int = 8192
    epochs: int = 5
    repeats: int = 3
    seeds: int = 15
    seed_epochs: int = 2
    encoder_repeats: int = 30
    data_repeats: int = 5
    threads: int | None = None
    bf16: bool = False
    compile: bool = False
    sections: tuple[str, ...] = SECTIONS

    def check(self) -> None:
        """Raise ValueError naming the first invalid setting."""
        positive = (
            "n_blocks",
            "d_block",
            "batch_size",
            "eval_batch_size",
            "epochs",
            "repeats",
            "seeds",
            "seed_epochs",
            "data_repeats",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} is invalid; use >= 1.")
        if self.encoder_repeats < 2:
            raise ValueError(
                f"encoder_repeats={self.encoder_repeats} is invalid; use >= 2."
            )
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads={self.threads} is invalid; use >= 1.")
        unknown = sorted(set(self.sections) - set(SECTIONS))
        if unknown or not self.sections:
            raise ValueError(
                f"sections {list(self.sections)} are invalid; choose from "
                f"{', '.join(SECTIONS)}."
            )

    def params(self) -> dict[str, Any]:
        """Return the fixed trial parameters of the measured model."""
        return {
            "n_blocks": self.n_blocks,
            "d_block": self.d_block,
            "dropout": self.dropout,
            "lr": 1e-3,
            "weight_decay": 1e-5,
        }


@dataclass
class Timing:
    """Wall-clock and process CPU seconds of one measured call."""

    wall_s: float
    cpu_s: float


@dataclass
class PerfReport:
    """Results of one `run_perf`, by section, as JSON-ready data."""

    machine: dict[str, Any]
    settings: dict[str, Any]
    sections: dict[str, Any] = field(default_factory=dict)


def machine_info(device: torch.device) -> dict[str, Any]:
    """Return the CPU model, core counts, torch version, device and load average."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else cpu,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    return info


def machine_line(machine: dict[str, Any]) -> str:
    """Return one Markdown line describing the machine of a table."""
    line = (
        f"Machine: {machine['device_name']} ({machine['device']}), CPU "
        f"{machine['cpu']}, {machine['usable_cores']} usable cores, torch "
        f"{machine['torch']}, torch threads: {machine['torch_threads']}."
    )
    if machine.get("load_average_1min") is not None:
        line += f" Load average {machine['load_average_1min']:.2f} at the start."
    return line


def timed(function: Callable[[], Any], device: torch.device) -> tuple[Any, Timing]:
    """Call ``function`` and return its result with its wall and CPU time."""
    _synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    _synchronize(device)
    return result, Timing(time.perf_counter() - wall, time.process_time() - cpu)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prepare_data(
    settings: PerfSettings,
    sources: DataSources,
    device: torch.device,
    train_rows: int | None,
) -> DeviceData:
    """Return the dataset as device tensors through the run's own data path."""
    from bench.pipeline import _prepare

    preset = dataclasses.replace(load_preset("default"), train_cap=train_rows)
    entry = SuiteEntry(settings.dataset, f"OpenML {settings.dataset}")
    return _prepare(entry, preset, sources, device)["data"]


def bare_loop(
    data: DeviceData,
    params: dict[str, Any],
    *,
    seed: int,
    epochs: int,
    batch_size: int,
    eval_batch_size: int,
) -> nn.Module:
    """Train the project's model with a plain PyTorch loop; return the model.

    The same seeding, model, AdamW settings and `ShuffledBatches` order as
    `train_model`, and one validation pass per epoch under
    ``torch.inference_mode``. There is no early stopping and no copy of the
    best weights.
    """
    seed_everything(seed, verbose=False)
    model, _ = build_model(get_encoder("none"), params, data)
    model = model.to(data.train.y.device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"]
    )
    train, val = data.train, data.val
    batches = ShuffledBatches(len(train), batch_size, seed, train.y.device)
    for _ in range(epochs):
        model.train()
        for index in batches:
            loss = nn.functional.mse_loss(
                model(train.x_num[index], train.x_cat[index]), train.y[index]
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            squared_error = torch.zeros((), device=train.y.device)
            for start in range(0, len(val), eval_batch_size):
                end = start + eval_batch_size
                prediction = model(val.x_num[start:end], val.x_cat[start:end])
                squared_error += ((prediction - val.y[start:end]) ** 2).sum()
            float(squared_error)
    return model


def measure_training(
    data: DeviceData, settings: PerfSettings, device: torch.device
) -> dict[str, Any]:
    """Time the project path and the bare loop per epoch, alternately.

    Returns:
        ``rows`` (one per path: the fastest run's wall and CPU seconds per
        epoch, the median wall seconds per epoch, and the ratios of the
        fastest runs to the bare loop's) and ``ratio_wall`` / ``ratio_cpu`` of
        the project path.
    """
    params = settings.params()
    loop = {
        "max_epochs": settings.epochs,
        "patience": settings.epochs,
        "batch_size": settings.batch_size,
        "eval_batch_size": settings.eval_batch_size,
    }
    encoder = get_encoder("none")
    paths: dict[str, Callable[[], Any]] = {
        "bare PyTorch loop": lambda: bare_loop(
            data,
            params,
            seed=0,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            eval_batch_size=settings.eval_batch_size,
        ),
        "project path (train_model)": lambda: train_model(
            encoder, params, data, seed=0, **loop
        ),
    }
    if settings.bf16:
        paths["project path, bf16 autocast"] = lambda: train_model(
            encoder, params, data, seed=0, acceleration=Acceleration(bf16=True), **loop
        )
    if settings.compile:
        paths["project path, torch.compile"] = lambda: train_model(
            encoder,
            params,
            data,
            seed=0,
            acceleration=Acceleration(compile=True),
            **loop,
        )
    # One untimed run of each path, so one-off costs (compilation, allocator
    # growth, lazy imports) stay out of the figures.
    for function in paths.values():
        timed(function, device)
    times: dict[str, list[Timing]] = {name: [] for name in paths}
    for _ in range(settings.repeats):
        for name, function in paths.items():
            _, timing = timed(function, device)
            times[name].append(timing)
            logger.info(
                "%s: %.3f s wall for %d epochs", name, timing.wall_s, loop["max_epochs"]
            )

    bare = "bare PyTorch loop"
    rows = []
    for name, timings in times.items():
        epochs = settings.epochs
        rows.append(
            {
                "path": name,
                "wall_s_per_epoch": min(t.wall_s for t in timings) / epochs,
                "cpu_s_per_epoch": min(t.cpu_s for t in timings) / epochs,
                "median_wall_s_per_epoch": statistics.median(t.wall_s for t in timings)
                / epochs,
            }
        )
    base = rows[0]
    for row in rows:
        row["ratio_wall"] = row["wall_s_per_epoch"] / base["wall_s_per_epoch"]
        row["ratio_cpu"] = row["cpu_s_per_epoch"] / base["cpu_s_per_epoch"]
    project = next(r for r in rows if r["path"].startswith("project path (train"))
    assert base["path"] == bare
    return {
        "rows": rows,
        "ratio_wall": project["ratio_wall"],
        "ratio_cpu": project["ratio_cpu"],
        "train_rows": len(data.train),
        "val_rows": len(data.val),
        "steps_per_epoch": -(-len(data.train) // settings.batch_size),
    }


def measure_data(
    settings: PerfSettings, sources: DataSources, device: torch.device
) -> dict[str, Any]:
    """Time the cached dataset to device tensors, whole and the cache read alone.

    The first call fills the cache from the mirror (or OpenML) and is not timed.
    """
    prepare_data(settings, sources, device, None)
    totals: list[Timing] = []
    reads: list[Timing] = []
    rows = 0
    for _ in range(settings.data_repeats):
        dataset, read = timed(lambda: load_dataset(settings.dataset, sources), device)
        rows = dataset.frame.height
        data, total = timed(
            lambda: prepare_data(settings, sources, device, None), device
        )
        reads.append(read)
        totals.append(total)
    total_wall = statistics.median(t.wall_s for t in totals)
    read_wall = statistics.median(t.wall_s for t in reads)
    return {
        "rows": rows,
        "features": int(data.train.x_num.shape[1] + data.train.x_cat.shape[1]),
        "total_wall_s": total_wall,
        "total_cpu_s": statistics.median(t.cpu_s for t in totals),
        "cache_read_wall_s": read_wall,
        "rest_wall_s": total_wall - read_wall,
    }


def measure_seeds(
    data: DeviceData, settings: PerfSettings, device: torch.device
) -> dict[str, Any]:
    """Time S seeds trained one after another and together (one run each)."""
    seeds = list(range(settings.seeds))
    loop = {
        "max_epochs": settings.seed_epochs,
        "patience": settings.seed_epochs,
        "batch_size": settings.batch_size,
        "eval_batch_size": settings.eval_batch_size,
    }
    encoder = get_encoder("none")
    rows = []
    for vectorized in (False, True):
        (runs, mode), timing = timed(
            lambda v=vectorized: train_seeds(
                encoder, settings.params(), data, seeds, vectorized=v, **loop
            ),
            device,
        )
        rows.append(
            {
                "mode": mode,
                "wall_s": timing.wall_s,
                "cpu_s": timing.cpu_s,
            }
        )
        logger.info("%d seeds, %s: %.2f s wall", len(seeds), mode, timing.wall_s)
    sequential, together = rows
    floor = matmul_floor(runs[0].model, data, settings, device)
    return {
        "rows": rows,
        "seeds": len(seeds),
        "epochs": settings.seed_epochs,
        "ratio_wall": together["wall_s"] / sequential["wall_s"],
        "ratio_cpu": together["cpu_s"] / sequential["cpu_s"],
        "floor": floor,
        "floor_ratio": floor["vectorized_s"] / sequential["wall_s"],
    }


def linear_shapes(model: nn.Module) -> list[tuple[int, int]]:
    """Return (in_features, out_features) of every ``nn.Linear`` in ``model``."""
    return [
        (layer.in_features, layer.out_features)
        for layer in model.modules()
        if isinstance(layer, nn.Linear)
    ]


def training_flops(
    shapes: list[tuple[int, int]], train_rows: int, val_rows: int, epochs: int
) -> float:
    """Return the multiply-add FLOPs of the linear layers of one training run.

    A training row costs 2 * in * out FLOPs per layer forward and twice that
    backward (input and weight gradients). The first layer's input gradient is
    left out because no parameter needs it. A validation row costs the forward
    pass. Activations, dropout, the loss and the optimizer are left out too,
    so this is a lower bound on the work.
    """
    forward = sum(2 * n_in * n_out for n_in, n_out in shapes)
    first_in, first_out = shapes[0]
    train = 3 * forward - 2 * first_in * first_out
    return float(epochs * (train_rows * train + val_rows * forward))


def matmul_rate(
    shapes: list[tuple[int, int]],
    rows: int,
    stack: int,
    device: torch.device,
    repeats: int = 20,
) -> float:
    """Return the FLOP/s of this machine on the model's products, batched or not.

    Each layer's forward product, (stack, rows, in) @ (stack, in, out), is
    timed ``repeats`` times with ``torch.bmm``, or ``torch.mm`` for stack 1.
    The rate is the total FLOPs over the summed median times.
    """
    generator = torch.Generator().manual_seed(0)
    total_flops, total_s = 0.0, 0.0
    for n_in, n_out in shapes:
        left = torch.randn(stack, rows, n_in, generator=generator).to(device)
        right = torch.randn(stack, n_in, n_out, generator=generator).to(device)
        if stack == 1:
            left, right = left[0], right[0]
        product = torch.mm if stack == 1 else torch.bmm
        times = []
        for _ in range(repeats + 2):
            _, timing = timed(lambda a=left, b=right, f=product: f(a, b), device)
            times.append(timing.wall_s)
        total_s += statistics.median(times[2:])
        total_flops += 2.0 * stack * rows * n_in * n_out
    return total_flops / total_s


def matmul_floor(
    model: nn.Module, data: DeviceData, settings: PerfSettings, device: torch.device
) -> dict[str, float]:
    """Return the seconds the S seeds' matrix products alone need, two ways.

    ``sequential_s`` uses the rate of one seed's products and ``vectorized_s``
    the rate of the S seeds' products as one batched product, both at the
    training batch size (see `training_flops` and `matmul_rate`). No training
    of that model can take less time on this machine than its floor, so
    ``vectorized_s`` over the measured sequential time is the lowest ratio
    that vectorizing can reach.
    """
    shapes = linear_shapes(model)
    flops = settings.seeds * training_flops(
        shapes, len(data.train), len(data.val), settings.seed_epochs
    )
    single = matmul_rate(shapes, settings.batch_size, 1, device)
    stacked = matmul_rate(shapes, settings.batch_size, settings.seeds, device)
    return {
        "gflop": flops / 1e9,
        "sequential_gflops_per_s": single / 1e9,
        "vectorized_gflops_per_s": stacked / 1e9,
        "sequential_s": flops / single,
        "vectorized_s": flops / stacked,
    }


def run_perf(settings: PerfSettings, sources: DataSources) -> PerfReport:
    """Run the selected measurements in this process and return the report."""
    from bench.pipeline import resolve_device

    settings.check()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    report = PerfReport(
        machine=machine_info(device), settings=dataclasses.asdict(settings)
    )
    needs_training_data = {"training", "seeds"} & set(settings.sections)
    if needs_training_data or "data" in settings.sections:
        check_dataset(settings.dataset, sources)
    data = None
    if needs_training_data:
        data = prepare_data(settings, sources, device, settings.train_rows)
    if "training" in settings.sections:
        assert data is not None
        report.sections["training"] = measure_training(data, settings, device)
    if "encoders" in settings.sections:
        report.sections["encoders"] = time_encoders(
            n_repeats=settings.encoder_repeats, device=device
        )
    if "data" in settings.sections:
        report.sections["data"] = measure_data(settings, sources, device)
    if "seeds" in settings.sections:
        assert data is not None
        report.sections["seeds"] = measure_seeds(data, settings, device)
    report.machine["load_average_1min_end"] = (
        os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    )
    return report


def check_dataset(openml_id: int, sources: DataSources) -> None:
    """Load the measured dataset once, which also fills the cache.

    Raises:
        ValueError: if no source has the dataset or it is unusable. The message
            names --dataset and lists the ids in the mirror.
    """
    try:
        load_dataset(openml_id, sources)
    except DatasetError as error:
        raise ValueError(
            f"--dataset {openml_id} could not be loaded: {error} "
            f"{_mirror_ids(sources)}`bench suites` lists the ids of every "
            "built-in suite."
        ) from None


def _mirror_ids(sources: DataSources) -> str:
    """Return a sentence that lists the dataset ids in the mirror, if any."""
    if sources.mirror is None:
        return ""
    try:
        ids = sorted(Mirror(sources.mirror).entries)
    except DatasetError:
        return ""
    return f"The mirror {sources.mirror} has the ids {', '.join(map(str, ids))}. "


def goal_rows(report: PerfReport) -> list[dict[str, Any]]:
    """Return each measured goal with its target and measured value."""
    rows = []
    sections = report.sections
    if "training" in sections:
        rows.append(
            {
                "goal": GOALS["training"][0],
                "target": GOALS["training"][1],
                "measured": f"{sections['training']['ratio_wall']:.2f} wall, "
                f"{sections['training']['ratio_cpu']:.2f} CPU",
                "met": sections["training"]["ratio_wall"] <= 1.10,
            }
        )
    if "seeds" in sections:
        seeds = sections["seeds"]
        rows.append(
            {
                "goal": f"{GOALS['seeds'][0]} ({seeds['seeds']} seeds)",
                "target": GOALS["seeds"][1],
                "measured": f"{seeds['ratio_wall']:.2f} wall, "
                f"{seeds['ratio_cpu']:.2f} CPU (arithmetic floor "
                f"{seeds['floor_ratio']:.2f})",
                "met": seeds["ratio_wall"] <= 0.5,
            }
        )
    if "data" in sections:
        data = sections["data"]
        rows.append(
            {
                "goal": f"{GOALS['data'][0]} ({data['rows']:,} rows)",
                "target": GOALS["data"][1],
                "measured": f"{data['total_wall_s']:.3f} s wall",
                "met": data["total_wall_s"] < 1.0,
            }
        )
    return rows


def format_report(report: PerfReport) -> str:
    """Return the report as Markdown: goals, then one table per section."""
    machine = machine_line(report.machine)
    end_load = report.machine.get("load_average_1min_end")
    lines = [machine]
    if end_load is not None:
        lines[0] += f" Load average at the end: {end_load:.2f}."
    lines.append("")
    goals = goal_rows(report)
    if goals:
        lines += ["| goal | target | measured | met |", "|---|---|---|---|"]
        for row in goals:
            met = "yes" if row["met"] else "no"
            lines.append(
                f"| {row['goal']} | {row['target']} | {row['measured']} | {met} |"
            )
        lines.append("")

    formatters = {
        "training": _training_lines,
        "encoders": _encoder_lines,
        "data": _data_lines,
        "seeds": _seeds_lines,
    }
    for name, formatter in formatters.items():
        if name in report.sections:
            lines += formatter(report.sections[name], report.settings, machine)
    return "\n".join(lines)


def _training_lines(
    training: dict[str, Any], settings: dict[str, Any], machine: str
) -> list[str]:
    lines = [
        "### Training path against a bare loop",
        "",
        machine,
        "",
        f"OpenML {settings['dataset']}, {training['train_rows']:,} training rows "
        f"({training['steps_per_epoch']} steps of {settings['batch_size']}), "
        f"{training['val_rows']:,} validation rows, MLP {settings['n_blocks']} x "
        f"{settings['d_block']}, dropout {settings['dropout']}, "
        f"{settings['epochs']} epochs per run, fastest of {settings['repeats']} "
        "runs (median wall time in the last column).",
        "",
        "| path | wall s per epoch | CPU s per epoch | x bare (wall) | "
        "x bare (CPU) | median wall s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in training["rows"]:
        lines.append(
            f"| {row['path']} | {row['wall_s_per_epoch']:.4f} | "
            f"{row['cpu_s_per_epoch']:.4f} | {row['ratio_wall']:.3f} | "
            f"{row['ratio_cpu']:.3f} | {row['median_wall_s_per_epoch']:.4f} |"
        )
    lines.append("")
    return lines


def _encoder_lines(
    rows: list[dict[str, Any]], settings: dict[str, Any], machine: str
) -> list[str]:
    lines = [
        "### Encoder forward + backward",
        "",
        machine,
        "",
        format_rows(rows),
        "",
    ]
    return lines


def _data_lines(
    data: dict[str, Any], settings: dict[str, Any], machine: str
) -> list[str]:
    lines = [
        "### Cached dataset to tensors",
        "",
        machine,
        "",
        f"OpenML {settings['dataset']}, {data['rows']:,} rows, "
        f"{data['features']} model inputs, median of {settings['data_repeats']}.",
        "",
        "| step | wall s |",
        "|---|---:|",
        f"| cache read (Parquet, SHA-256 check) | {data['cache_read_wall_s']:.3f} |",
        f"| split, preprocessing, tensors | {data['rest_wall_s']:.3f} |",
        f"| total | {data['total_wall_s']:.3f} |",
        "",
    ]
    return lines


def _seeds_lines(
    seeds: dict[str, Any], settings: dict[str, Any], machine: str
) -> list[str]:
    lines = [
        "### Final seeds, sequential against vectorized",
        "",
        machine,
        "",
        f"{seeds['seeds']} seeds, {seeds['epochs']} epochs each, the model and "
        "rows of the training table.",
        "",
        "| mode | wall s | CPU s |",
        "|---|---:|---:|",
    ]
    for row in seeds["rows"]:
        lines.append(f"| {row['mode']} | {row['wall_s']:.2f} | {row['cpu_s']:.2f} |")
    lines += [
        f"| ratio | {seeds['ratio_wall']:.2f} | {seeds['ratio_cpu']:.2f} |",
        "",
    ]
    floor = seeds.get("floor")
    if floor:
        lines += [
            f"Arithmetic floor: the linear layers need {floor['gflop']:.1f} GFLOP "
            "for these seeds. At the rate this machine reaches on one seed's "
            f"products ({floor['sequential_gflops_per_s']:.1f} GFLOP/s) that is "
            f"{floor['sequential_s']:.2f} s, and on all seeds' products as one "
            f"batched product ({floor['vectorized_gflops_per_s']:.1f} GFLOP/s) "
            f"{floor['vectorized_s']:.2f} s: {seeds['floor_ratio']:.2f} of the "
            "sequential wall time, the lowest ratio vectorizing can reach here.",
            "",
        ]
    return lines


def write_report(report: PerfReport, out: Path) -> tuple[Path, Path]:
    """Write ``perf.md`` and ``perf.json`` into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    markdown = out / "perf.md"
    data = out / "perf.json"
    markdown.write_text(format_report(report) + "\n")
    data.write_text(
        json.dumps(
            {
                "machine": report.machine,
                "settings": report.settings,
                "goals": goal_rows(report),
                **report.sections,
            },
            indent=2,
        )
        + "\n"
    )
    return markdown, data
