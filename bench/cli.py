"""The ``bench`` command line: run, reproduce, fetch, report, ui, encoders,
suites."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks import DataSources, Suite

logger = logging.getLogger("bench")

DEFAULT_RESULTS = Path("results")
# Exit status of a run stopped by SIGINT or SIGTERM: 128 + 2, the status that
# shells report for a process ended by SIGINT.
INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bench`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        _check_blank_values(args)
        return args.handler(args)
    except BrokenPipeError:
        # The reader went away (for example `bench encoders | head`).
        sys.stderr.close()
        return 0
    except (ValueError, LookupError, ConnectionError) as error:
        # Invalid input of every kind (suite, preset, dataset, encoder) lands
        # here with a message that names it.
        logger.error("%s", error)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="Benchmark numeric-feature encoders for MLPs on OpenML "
        "regression datasets, tracked in MLflow.",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output (-vv for debug)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="tune and evaluate every pair of a suite")
    run.add_argument(
        "--suite",
        help="built-in suite name or path of a suite .toml (default: the "
        "preset's suite, else demo)",
    )
    _add_protocol(run)
    _add_selection(run, "comma-separated encoder names, or all")
    _add_budget(run)
    run.add_argument(
        "--storage",
        help="Optuna storage URL (default: sqlite in the results "
        "folder); journal:PATH for a journal file",
    )
    run.add_argument(
        "--no-report",
        action="store_true",
        help="skip building the leaderboard at the end",
    )
    _add_runner(run)
    _add_slurm(run)
    _add_common(run)
    _add_data(run)
    run.set_defaults(handler=_run, command="run")

    _add_reproduce(commands)

    fetch = commands.add_parser(
        "fetch",
        help="load a suite's datasets into the cache (or a mirror folder) for "
        "offline compute nodes",
    )
    fetch.add_argument(
        "--suite",
        default="demo",
        help="built-in suite name or path of a suite .toml (default: demo)",
    )
    fetch.add_argument(
        "--datasets", help="comma-separated OpenML ids of the suite to fetch"
    )
    fetch.add_argument(
        "--out",
        type=_path_value,
        help="also write a mirror folder (Parquet files and MANIFEST.toml) here",
    )
    _add_data(fetch)
    fetch.set_defaults(handler=_fetch, command="fetch")

    report = commands.add_parser("report", help="build the leaderboard from MLflow")
    report.add_argument(
        "--suite",
        help="suite (MLflow experiment) to report on (default: the only suite "
        "in the store, else demo)",
    )
    report.add_argument(
        "--out", type=_path_value, help="output folder (default: RESULTS/reports/SUITE)"
    )
    report.add_argument(
        "--normalized-score",
        choices=("rmse", "r2"),
        help="metric the normalized score rescales per dataset: mean test RMSE or "
        "mean test R² (the definition of Grinsztajn et al. 2022); default: the "
        "setting of the studies' preset, else rmse",
    )
    report.add_argument(
        "--no-log",
        action="store_true",
        help="write the report files only, without logging them to a report run "
        "in MLflow (for a store that is read-only to you)",
    )
    _add_common(report)
    report.set_defaults(handler=_report, command="report")

    ui = commands.add_parser("ui", help="open the MLflow UI on 127.0.0.1")
    ui.add_argument(
        "--port", type=int, default=5000, help="TCP port, 1-65535 (default 5000)"
    )
    ui.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    _add_common(ui)
    ui.set_defaults(handler=_ui, command="ui")

    encoders = commands.add_parser("encoders", help="list the available encoders")
    encoders.add_argument(
        "--time",
        action="store_true",
        help="instead of the list, time forward+backward of every encoder on one "
        "fixed batch and print its settings and a Markdown table",
    )
    _add_timing(encoders)
    encoders.set_defaults(handler=_encoders, command="encoders")

    perf = commands.add_parser(
        "perf",
        help="time the training path against a bare PyTorch loop, the encoders, "
        "the data path and vectorized seeds; write Markdown and JSON tables",
    )
    perf.add_argument(
        "--out",
        type=_path_value,
        default=DEFAULT_RESULTS / "perf",
        help="folder for perf.md and perf.json (default: results/perf)",
    )
    perf.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N"
    )
    perf.add_argument(
        "--sections",
        default="training,encoders,data,seeds",
        help="comma-separated measurements to run (default: all four)",
    )
    perf.add_argument(
        "--dataset",
        type=int,
        default=1203,
        help="OpenML id of the measured dataset (default: 1203, 177,147 rows)",
    )
    perf.add_argument(
        "--train-rows",
        type=int,
        default=20_000,
        help="training rows of the training and seeds measurements; 0 keeps all "
        "(default: 20000)",
    )
    perf.add_argument("--epochs", type=int, default=5, help="epochs per training run")
    perf.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs per training path; the fastest of each is compared",
    )
    perf.add_argument("--seeds", type=int, default=15, help="final seeds to train")
    perf.add_argument(
        "--seed-epochs", type=int, default=2, help="epochs per final seed"
    )
    perf.add_argument("--n-blocks", type=int, default=2, help="MLP blocks")
    perf.add_argument("--d-block", type=int, default=256, help="MLP block width")
    perf.add_argument("--batch-size", type=int, default=256, help="training batch")
    perf.add_argument(
        "--encoder-repeats", type=int, default=30, help="timed steps per encoder"
    )
    perf.add_argument(
        "--data-repeats", type=int, default=5, help="timed passes of the data path"
    )
    perf.add_argument(
        "--threads", type=int, help="torch CPU threads (default: torch's choice)"
    )
    perf.add_argument(
        "--bf16", action="store_true", help="add a training row with bf16 autocast"
    )
    perf.add_argument(
        "--compile", action="store_true", help="add a training row with torch.compile"
    )
    _add_data(perf)
    perf.set_defaults(handler=_perf, command="perf")

    suites = commands.add_parser("suites", help="list the built-in suites")
    suites.set_defaults(handler=_suites, command="suites")
    return parser


def _add_protocol(
    parser: argparse.ArgumentParser,
    default: str = "default",
    choices: str | None = None,
) -> None:
    """Add --protocol and its alias --preset.

    Args:
        default: The preset used when neither is given, named in the help.
        choices: Help text for the accepted names. None lists every built-in
            preset.
    """
    from bench.preset_names import builtin_presets

    if choices is None:
        choices = f"built-in protocol preset ({', '.join(builtin_presets())})"
    parser.add_argument(
        "--protocol",
        help=f"{choices} or path of a preset .toml (default: {default})",
    )
    parser.add_argument(
        "--preset",
        help="the same as --protocol; give one of the two",
    )


def _protocol(args: argparse.Namespace, default: str = "default") -> str:
    """Return the preset named by --protocol or --preset.

    Raises:
        ValueError: if either is empty, or both are given with different values.
    """
    from bench.preset_names import builtin_presets

    for option, value in (("--protocol", args.protocol), ("--preset", args.preset)):
        if value is not None and not value.strip():
            raise ValueError(
                f"{option} {value!r} is empty. Give a built-in preset "
                f"({', '.join(builtin_presets())}) or the path of a preset .toml "
                f"file, or leave {option} out to use {default}."
            )
    if args.protocol and args.preset and args.protocol != args.preset:
        raise ValueError(
            f"--protocol {args.protocol} and --preset {args.preset} name different "
            "presets; --preset is another name for --protocol, so give only one."
        )
    return args.protocol or args.preset or default


def _add_selection(parser: argparse.ArgumentParser, encoders_help: str) -> None:
    """Add the options that choose the encoders, datasets and device of a run."""
    parser.add_argument(
        "--encoders", help=f"{encoders_help} (default: the suite's list)"
    )
    parser.add_argument(
        "--datasets", help="comma-separated OpenML ids of the suite to run"
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N"
    )


def _add_budget(
    parser: argparse.ArgumentParser, defaults: dict[str, int] | None = None
) -> None:
    """Add --trials, --seeds and --max-epochs; ``defaults`` only fill the help."""
    defaults = defaults or {}
    helps = {
        "trials": "Optuna trials per study",
        "seeds": "final seeds per study",
        "max_epochs": "epoch limit per training run",
    }
    for key, text in helps.items():
        if key in defaults:
            text += f" (default: {defaults[key]})"
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, help=text)


# Defaults of `bench encoders --time`.
TIMING_REPEATS = 100
TIMING_BATCH_SIZE = 256
# Options of `bench encoders` that only --time reads, by option name. Their
# defaults are None, so that `_encoders` can tell which ones were given.
TIMING_OPTIONS = {
    "--repeats": "repeats",
    "--only": "only",
    "--batch-size": "batch_size",
    "--threads": "threads",
    "--set": "set",
}


def _add_timing(parser: argparse.ArgumentParser) -> None:
    """Add the options of `bench encoders --time` (listed in `TIMING_OPTIONS`)."""
    timing = parser.add_argument_group("timing", "options that need --time")
    timing.add_argument(
        "--repeats",
        type=int,
        help=f"timed steps per encoder (default: {TIMING_REPEATS})",
    )
    timing.add_argument(
        "--only",
        help="comma-separated encoders to time (default: all). The ratio column "
        "divides by ple-quantile when it is among them",
    )
    timing.add_argument(
        "--batch-size",
        type=int,
        help=f"rows in the timed batch (default: {TIMING_BATCH_SIZE})",
    )
    timing.add_argument(
        "--threads", type=int, help="torch CPU threads (default: torch's choice)"
    )
    timing.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="encoder parameter for every timed encoder that has it, e.g. "
        "scores=interval (repeatable, each key once)",
    )


def _add_reproduce(commands: argparse._SubParsersAction) -> None:
    from bench.reproduce_cli import DEFAULT_BUDGET

    reproduce = commands.add_parser(
        "reproduce",
        help="run a published protocol on its suite at a reduced budget and "
        "compare the test RMSE with the published one",
    )
    _add_protocol(
        reproduce,
        default="gorishniy2022",
        choices="protocol with published results (gorishniy2022)",
    )
    _add_budget(reproduce, DEFAULT_BUDGET)
    reproduce.add_argument(
        "--full",
        action="store_true",
        help="use the preset's own budget; give no --trials, --seeds or "
        "--max-epochs with it",
    )
    _add_selection(reproduce, "comma-separated encoder names")
    reproduce.add_argument(
        "--out",
        type=_path_value,
        help="Markdown file of the comparison (default: "
        "RESULTS/reports/reproduce-PROTOCOL.md)",
    )
    _add_common(reproduce)
    _add_data(reproduce)
    reproduce.set_defaults(handler=_reproduce, command="reproduce")


def _reproduce(args: argparse.Namespace) -> int:
    from bench.reproduce_cli import reproduce

    _check_folder(args.results, "--results")
    # The comparison is written after every study, so check its path first.
    if args.out is not None:
        _check_output_file(args.out, "--out")
    _check_tracking_uri(_tracking_uri(args), args)
    return reproduce(args, _protocol(args, default="gorishniy2022"))


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results",
        type=_path_value,
        default=DEFAULT_RESULTS,
        help="results folder holding mlflow.db, optuna.db, "
        "artifacts and reports (default: ./results)",
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
        "else sqlite:///RESULTS/mlflow.db)",
    )


def _add_runner(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "workers", "where studies run; several workers share each study"
    )
    group.add_argument(
        "--runner",
        choices=("inprocess", "local", "slurm"),
        default="inprocess",
        help="inprocess: one worker in this process (default); local: worker "
        "processes on this machine; slurm: a Slurm job array, one task per worker",
    )
    group.add_argument(
        "--workers",
        type=int,
        help="number of workers (local default: one per GPU, else one per CPU "
        "core; slurm default: 1)",
    )
    group.add_argument(
        "--heartbeat",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds between heartbeats of a worker's trial or seed; work "
        "without a heartbeat for 4 times as long is taken over (default: 30)",
    )


def _add_slurm(parser: argparse.ArgumentParser) -> None:
    slurm = parser.add_argument_group("slurm", "options of --runner slurm")
    slurm.add_argument("--partition", help="Slurm partition (default: the cluster's)")
    slurm.add_argument(
        "--gpus-per-task", type=int, default=0, help="GPUs per worker (default: 0)"
    )
    slurm.add_argument(
        "--cpus-per-task",
        type=int,
        default=1,
        help="CPU cores per worker, also its torch threads (default: 1)",
    )
    slurm.add_argument(
        "--mem-gb", type=float, help="memory per worker in GiB (default: the cluster's)"
    )
    slurm.add_argument(
        "--time",
        type=int,
        default=60,
        metavar="MINUTES",
        help="time limit per task; near it the task is requeued and continues "
        "(default: 60)",
    )
    slurm.add_argument(
        "--array-parallelism",
        type=int,
        help="array tasks that may run at once (default: all)",
    )
    slurm.add_argument(
        "--slurm-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="further sbatch option without the dashes, e.g. account=abc (repeatable)",
    )
    slurm.add_argument(
        "--no-wait",
        action="store_true",
        help="return after submitting; `bench report` builds the leaderboard "
        "once the tasks end",
    )


# Options of --runner slurm and their defaults.
SLURM_DEFAULTS = {
    "partition": None,
    "gpus_per_task": 0,
    "cpus_per_task": 1,
    "mem_gb": None,
    "time": 60,
    "array_parallelism": None,
    "slurm_arg": [],
    "no_wait": False,
}


def _check_no_slurm_options(args: argparse.Namespace) -> None:
    """Raise `ValueError` if a Slurm option is set for another runner.

    Other runners would ignore it, so a run meant for the cluster would start
    here without a word.
    """
    slurm_options_set = [
        "--" + name.replace("_", "-")
        for name, default in SLURM_DEFAULTS.items()
        if getattr(args, name) != default
    ]
    if slurm_options_set:
        raise ValueError(
            f"{', '.join(slurm_options_set)}: options of --runner slurm, which "
            f"--runner {args.runner} would ignore. Add --runner slurm, or leave "
            "them out."
        )


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mirror",
        type=_path_value,
        help="mirror folder of Parquet datasets with MANIFEST.toml "
        "(default: $BENCH_MIRROR)",
    )
    parser.add_argument(
        "--cache",
        type=_path_value,
        help="Parquet cache of loaded datasets (default: "
        "$BENCH_CACHE, else ~/.cache/encoder-bench)",
    )
    parser.add_argument(
        "--openml-cache", type=_path_value, help="root cache folder of openml-python"
    )
    parser.add_argument(
        "--offline", action="store_true", help="never contact the OpenML server"
    )


def configure_logging(verbosity: int, tag: str = "") -> None:
    """Set up log output for the command line or a worker process.

    Args:
        verbosity: 0 for progress, 1 for more, 2 for debug output.
        tag: Put in brackets after the level of every line, e.g. ``worker 2``.
    """
    level = logging.DEBUG if verbosity > 1 else logging.INFO
    prefix = f"[{tag}] " if tag else ""
    logging.basicConfig(
        level=logging.WARNING,
        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for name in ("bench", "tasks", "encoders", "runners", "reports"):
        logging.getLogger(name).setLevel(level)
    quiet = logging.INFO if verbosity > 1 else logging.WARNING
    for name in (
        "lightning",
        "lightning.pytorch",
        "lightning.fabric",
        "lightning.pytorch.utilities.rank_zero",
        "alembic",
        "mlflow",
    ):
        logging.getLogger(name).setLevel(quiet)

    import optuna

    optuna.logging.set_verbosity(quiet)


def _tracking_uri(args: argparse.Namespace) -> str:
    from bench.tracking import local_tracking_uri

    return (
        args.tracking_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or local_tracking_uri(args.results)
    )


def _runner(args: argparse.Namespace):  # -> runners.Runner
    from runners import InProcessRunner, LocalRunner, SlurmRunner, SlurmSettings

    if args.heartbeat <= 0:
        raise ValueError(
            f"--heartbeat {args.heartbeat} is invalid; use a positive number of "
            "seconds."
        )

    if args.workers is not None and args.workers < 1:
        raise ValueError(
            f"--workers {args.workers} is invalid; use an integer >= 1, or leave "
            "--workers out for the runner's default."
        )
    if args.runner != "slurm":
        _check_no_slurm_options(args)
    if args.runner == "inprocess":
        if args.workers not in (None, 1):
            raise ValueError(
                f"--workers {args.workers} needs --runner local or --runner slurm; "
                "the in-process runner has one worker."
            )
        return InProcessRunner()
    if args.runner == "local":
        from runners.local import visible_gpus

        workers = args.workers or len(visible_gpus()) or len(os.sched_getaffinity(0))
        return LocalRunner(workers)
    extra = {}
    for item in args.slurm_arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(
                f"--slurm-arg {item!r}: write KEY=VALUE, e.g. account=abc."
            )
        extra[key.strip().lstrip("-")] = value.strip()
    settings = SlurmSettings(
        folder=args.results.resolve() / "slurm",
        partition=args.partition,
        gpus_per_task=args.gpus_per_task,
        cpus_per_task=args.cpus_per_task,
        mem_gb=args.mem_gb,
        time_min=args.time,
        array_parallelism=args.array_parallelism,
        job_name=f"bench-{Path(args.suite).stem}",
        extra=extra,
    )
    return SlurmRunner(args.workers or 1, settings, wait=not args.no_wait)


def _run(args: argparse.Namespace) -> int:
    from bench.claims import LeaseSettings
    from bench.config import load_preset
    from bench.pipeline import RunOptions, run_suite
    from tasks import load_suite

    _check_folder(args.results, "--results")
    _check_tracking_uri(_tracking_uri(args), args)
    preset = load_preset(_protocol(args)).with_budget(
        n_trials=args.trials, n_seeds=args.seeds, max_epochs=args.max_epochs
    )
    if args.suite is None:
        args.suite = preset.suite or "demo"
        logger.info("Suite %s (the default of preset %s)", args.suite, preset.name)
    suite = load_suite(args.suite)
    encoders = _split_list(args.encoders) or list(suite.encoders) or ["none"]
    if encoders == ["all"]:
        from encoders import available_encoders

        encoders = sorted(available_encoders())
    datasets = _dataset_ids(args.datasets, suite)
    options = RunOptions(
        results=args.results,
        sources=_data_sources(args),
        encoders=encoders,
        dataset_ids=datasets,
        tracking_uri=args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"),
        storage_url=args.storage,
        device=args.device,
        report=not args.no_report,
        leases=LeaseSettings(args.heartbeat, 4 * args.heartbeat),
        verbosity=args.verbose,
    )
    runner = _runner(args)
    try:
        with _sigterm_as_interrupt():
            summary = run_suite(suite, preset, options, runner)
    except KeyboardInterrupt as interrupt:
        logger.error(
            "Run interrupted by %s. Finished trials and seeds are saved, and "
            "running the same command again resumes the run.",
            str(interrupt) or "SIGINT",
        )
        return INTERRUPTED
    if getattr(runner, "wait", True) is False:
        logger.info(
            "Submitted without waiting. `bench report` builds the leaderboard "
            "once the tasks end; running the same command again without "
            "--no-wait submits workers for any work left, waits and builds it."
        )
        return 0

    for dataset_id, reason in summary.skipped.items():
        logger.warning("Skipped dataset %d: %s", dataset_id, reason)
    for pair, error in summary.failed.items():
        logger.error("Study %s failed: %s", pair, error)
    for index, error in sorted(summary.worker_errors.items()):
        logger.error("Worker %d stopped early: %s", index, error)
    if summary.report is not None:
        logger.info("Leaderboard: %s", summary.report)
    statuses = [o.status for o in summary.outcomes.values()]
    complete = statuses.count("complete")
    failed = len(summary.failed) + statuses.count("failed")
    skipped_ids = ", ".join(str(i) for i in sorted(summary.skipped))
    logger.info(
        "%d of %d studies complete, %d skipped%s, %d failed",
        complete,
        len(statuses) + len(summary.failed),
        statuses.count("skipped"),
        f" (datasets {skipped_ids})" if skipped_ids else "",
        failed,
    )
    if summary.skipped and not complete and not failed and not summary.worker_errors:
        logger.error(
            "No study ran: every dataset was skipped. Fix the reasons logged "
            "above (also listed in the leaderboard) and run again."
        )
    # Exit status 1 signals to batch scripts that a study failed or nothing ran,
    # even though the leaderboard was still written.
    return 0 if complete and not failed and not summary.worker_errors else 1


def _fetch(args: argparse.Namespace) -> int:
    from bench.fetch import fetch_suite
    from tasks import load_suite

    if args.out is not None:
        _check_folder(args.out, "--out")
    suite = load_suite(args.suite)
    datasets = _dataset_ids(args.datasets, suite)
    sources = _data_sources(args)
    fetched = fetch_suite(suite, sources, datasets, args.out)
    failed = [r for r in fetched if r.error]
    for result in fetched:
        if result.error:
            logger.error("Dataset %d: %s", result.openml_id, result.error)
    logger.info(
        "%d of %d datasets in the cache %s%s",
        len(fetched) - len(failed),
        len(fetched),
        sources.cache_dir,
        f" and the mirror {args.out}" if args.out else "",
    )
    return 1 if failed else 0


def _report(args: argparse.Namespace) -> int:
    from bench.tracking import check_reachable
    from reports import build_report
    from reports.publish import default_suite

    _check_folder(args.results, "--results")
    uri = _tracking_uri(args)
    _check_store_exists(uri, args)
    _check_tracking_uri(uri, args)
    check_reachable(uri)
    suite = args.suite or default_suite(uri)
    out = args.out or args.results / "reports" / suite
    _check_folder(out, "--out")
    path, _ = build_report(
        uri,
        suite,
        out,
        normalized_score=args.normalized_score,
        log_to_mlflow=not args.no_log,
    )
    sys.stdout.write(path.read_text())
    return 0


def _ui(args: argparse.Namespace) -> int:
    """Run the MLflow UI until it is stopped; return the exit status.

    Raises:
        ValueError: if --port is outside 1-65535, or the address cannot be bound.
        LookupError: if the results store does not exist.
    """
    if not 1 <= args.port <= MAX_PORT:
        raise ValueError(
            f"--port {args.port} is invalid; use a TCP port from 1 to {MAX_PORT}, "
            "or leave --port out to use 5000."
        )
    uri = _tracking_uri(args)
    _check_store_exists(uri, args)
    _check_tracking_uri(uri, args)
    _check_port_free(args.host, args.port)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        "1",
    ]
    logger.info(
        "MLflow UI on http://%s:%d for %s (Ctrl-C stops it)", args.host, args.port, uri
    )
    return _serve(command)


MAX_PORT = 65535
# Seconds that `_serve` waits for a stopped server to exit before killing it.
SERVER_STOP_TIMEOUT = 10.0


def _check_port_free(host: str, port: int) -> None:
    """Raise `ValueError` unless a TCP server could bind ``host``:``port`` now.

    The socket is closed again at once, so another process may still take the
    port before the server binds it. `_serve` reports that case as the server
    exiting early.
    """
    try:
        addresses = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise ValueError(
            f"--host {host} is invalid: {error.strerror}. Give an address of this "
            "machine, such as 127.0.0.1."
        ) from None
    family, kind, protocol, _, address = addresses[0]
    with socket.socket(family, kind, protocol) as probe:
        # The server sets SO_REUSEADDR too, so a port whose old connections
        # are in TIME_WAIT counts as free, as it does for the server.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ValueError(
                    f"--port {port} is already in use on {host}. Stop the process "
                    "that listens there, or give a free --port."
                ) from None
            raise ValueError(
                f"--host {host} --port {port} cannot be bound: {error.strerror}. "
                "Give an address of this machine and a free port."
            ) from None


def _serve(command: list[str]) -> int:
    """Run a server ``command`` until Ctrl-C or SIGTERM; return the exit status.

    A server runs until it is stopped, so a server process that exits by
    itself has failed, whatever its exit status: ``mlflow ui`` (MLflow 3.x)
    exits with 0 even when its web server cannot bind the port. Then the error
    is logged and 1 returned. Ctrl-C and SIGTERM stop the server and return 0.
    """
    process = subprocess.Popen(command)
    try:
        with _sigterm_as_interrupt():
            status = process.wait()
    except KeyboardInterrupt as interrupt:
        _stop(process)
        logger.info("MLflow UI stopped by %s", str(interrupt) or "SIGINT")
        return 0
    logger.error(
        "The MLflow UI server exited by itself with status %d; its output above "
        "says why. Fix that and run `bench ui` again.",
        status,
    )
    return 1


def _stop(process: subprocess.Popen) -> None:
    """Terminate ``process`` and wait for it, killing it after a timeout."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=SERVER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        logger.warning(
            "The MLflow UI server (pid %d) did not stop within %.0f s of SIGTERM; "
            "killing it",
            process.pid,
            SERVER_STOP_TIMEOUT,
        )
        process.kill()
        process.wait()


def _encoders(args: argparse.Namespace) -> int:
    """List the encoders, or time them with --time.

    Raises:
        ValueError: if a timing option is given without --time.
    """
    if args.time:
        return _time_encoders(args)
    given_options = [
        option
        for option, dest in TIMING_OPTIONS.items()
        if getattr(args, dest) is not None
    ]
    if given_options:
        verb = "needs" if len(given_options) == 1 else "need"
        raise ValueError(
            f"{', '.join(given_options)} {verb} --time. Add --time to time the "
            "encoders, or leave the timing options out to list the encoders."
        )

    from encoders import available_encoders

    for name, cls in sorted(available_encoders().items()):
        sys.stdout.write(f"{name}\n    {cls.description}\n")
        for param, dist in cls.search_space().items():
            sys.stdout.write(f"    {param}: {dist!r}\n")
    return 0


def _time_encoders(args: argparse.Namespace) -> int:
    """Print the settings and the forward + backward timing table of
    `encoders.speed`.

    Raises:
        ValueError: if a timing option is invalid; the message names it.
    """
    import torch

    from encoders.speed import (
        MAX_BATCH_SIZE,
        MIN_REPEATS,
        format_rows,
        format_settings,
        time_encoders,
    )

    batch_size = TIMING_BATCH_SIZE if args.batch_size is None else args.batch_size
    repeats = TIMING_REPEATS if args.repeats is None else args.repeats
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(
            f"--batch-size {batch_size} is invalid; use an integer from 1 to "
            f"{MAX_BATCH_SIZE}, because the timed batch, its gradients and every "
            "encoder's output stay in memory together."
        )
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads {args.threads} is invalid; use an integer >= 1.")
    if repeats < MIN_REPEATS:
        raise ValueError(
            f"--repeats {repeats} is invalid. Use an integer >= {MIN_REPEATS}, "
            "because the p90 column needs at least that many timed steps."
        )
    names = _split_list(args.only)
    if args.only is not None and not names:
        raise ValueError(
            f"--only {args.only!r} names no encoder. Give comma-separated names "
            "from `bench encoders`, or leave --only out to time every encoder."
        )
    params = _parameter_values(args.set or [])
    # The shared sizes set every encoder's bin count (autodis's meta-embeddings
    # included) and embedding size, and the settings line reports them.
    sizes = {key: params.pop(key) for key in ("n_bins", "d_embedding") if key in params}
    _check_threads(args.threads)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows = time_encoders(
        names or None,
        batch_size=batch_size,
        n_repeats=repeats,
        params=params or None,
        **sizes,
    )
    settings = format_settings(
        batch_size=batch_size,
        n_repeats=repeats,
        threads=torch.get_num_threads(),
        params=params,
        **sizes,
    )
    sys.stdout.write(f"{settings}\n\n{format_rows(rows)}\n")
    return 0


def _check_threads(threads: int | None) -> None:
    """Log a warning if ``threads`` exceeds the CPU cores this process may use.

    More torch threads than cores still run, but they share cores, so the
    timings come out slower and noisier than the machine allows.
    """
    if threads is None:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    cores = cores or os.cpu_count() or 0
    if cores and threads > cores:
        logger.warning(
            "--threads %d is more than the %d CPU cores this process may use, so "
            "the threads share cores and the timings come out slower and noisier",
            threads,
            cores,
        )


def _parameter_values(items: list[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` items; values that read as numbers become numbers.

    Raises:
        ValueError: if an item is not ``KEY=VALUE``, or a key appears twice.
    """
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r} is invalid; write KEY=VALUE.")
        if key.strip() in values:
            raise ValueError(
                f"--set {key.strip()} is given twice ({key.strip()}="
                f"{values[key.strip()]} and {item.strip()}). Give each key once."
            )
        value: Any = text.strip()
        for convert in (int, float):
            try:
                value = convert(value)
                break
            except ValueError:
                continue
        values[key.strip()] = value
    return values


def _perf(args: argparse.Namespace) -> int:
    from bench.perf import PerfSettings, format_report, run_perf, write_report

    _check_folder(args.out, "--out")
    settings = PerfSettings(
        dataset=args.dataset,
        device=args.device,
        train_rows=args.train_rows or None,
        n_blocks=args.n_blocks,
        d_block=args.d_block,
        batch_size=args.batch_size,
        epochs=args.epochs,
        repeats=args.repeats,
        seeds=args.seeds,
        seed_epochs=args.seed_epochs,
        encoder_repeats=args.encoder_repeats,
        data_repeats=args.data_repeats,
        threads=args.threads,
        bf16=args.bf16,
        compile=args.compile,
        sections=tuple(_split_list(args.sections)),
    )
    report = run_perf(settings, _data_sources(args))
    markdown, data = write_report(report, args.out)
    sys.stdout.write(format_report(report) + "\n")
    logger.info("Wrote %s and %s", markdown, data)
    return 0


def _suites(args: argparse.Namespace) -> int:
    from tasks.suites import builtin_suites, load_suite

    for name in builtin_suites():
        suite = load_suite(name)
        ids = ", ".join(str(e.openml_id) for e in suite.datasets)
        sys.stdout.write(f"{name}: {len(suite.datasets)} datasets ({ids})\n")
    return 0


def _split_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _path_value(text: str) -> Path | str:
    """Convert a path option's value to a `Path`, but return a blank value as
    the string itself.

    ``Path("")`` is the current folder, so converting a blank value would hide
    it from `_check_blank_values`, which rejects the strings left here.
    """
    if not text.strip():
        return text
    return Path(text)


# Hints for blank option values (the value to give instead), by option
# destination. A blank value would otherwise select a default silently (every
# dataset, every encoder, the current folder). --protocol, --preset and --only
# have checks of their own.
BLANK_VALUE_HINTS: dict[str, str] = {
    "suite": "Give a built-in suite (see `bench suites`) or the path of a suite "
    ".toml file, or leave --suite out to use the default suite.",
    "encoders": "Give comma-separated encoder names (see `bench encoders`), or "
    "leave --encoders out to use the suite's list.",
    "datasets": "Give comma-separated OpenML ids of the suite, or leave "
    "--datasets out to use every dataset of the suite.",
    "device": "Give auto, cpu, cuda or cuda:N, or leave --device out to use auto.",
    "storage": "Give an Optuna storage URL or journal:PATH, or leave --storage "
    "out to use sqlite in the results folder.",
    "results": "Give the path of a results folder, or leave --results out to "
    "use ./results.",
    "tracking_uri": "Give an MLflow tracking URI, or leave --tracking-uri out to "
    "use $MLFLOW_TRACKING_URI, else sqlite:///RESULTS/mlflow.db.",
    "mirror": "Give the path of a mirror folder, or leave --mirror out to use "
    "$BENCH_MIRROR.",
    "cache": "Give the path of a cache folder, or leave --cache out to use "
    "$BENCH_CACHE, else ~/.cache/encoder-bench.",
    "openml_cache": "Give the path of a folder, or leave --openml-cache out to "
    "use the default cache of openml-python.",
    "partition": "Give a Slurm partition, or leave --partition out to use the "
    "cluster's default.",
    "host": "Give an address to bind, or leave --host out to use 127.0.0.1.",
    "sections": "Give comma-separated measurements (training, encoders, data, "
    "seeds), or leave --sections out to run all four.",
}
# --out means something else in each command, so its hint is by command.
BLANK_OUT_HINTS: dict[str, str] = {
    "fetch": "Give the path of a mirror folder to write, or leave --out out to "
    "fill only the cache.",
    "report": "Give the path of a folder, or leave --out out to use "
    "RESULTS/reports/SUITE.",
    "reproduce": "Give the path of a Markdown file, or leave --out out to use "
    "RESULTS/reports/reproduce-PROTOCOL.md.",
    "perf": "Give the path of a folder, or leave --out out to use results/perf.",
}
# Options that take comma-separated items; a value with no item, such as ",",
# counts as blank.
LIST_OPTIONS = ("encoders", "datasets", "sections")


def _check_blank_values(args: argparse.Namespace) -> None:
    """Raise `ValueError` if an option of `BLANK_VALUE_HINTS` or --out is blank.

    Path options arrive as strings only when blank (see `_path_value`), and
    list options count as blank when they contain no item.
    """
    hints = dict(BLANK_VALUE_HINTS)
    command = getattr(args, "command", None)
    if command in BLANK_OUT_HINTS:
        hints["out"] = BLANK_OUT_HINTS[command]
    for dest, hint in hints.items():
        value = getattr(args, dest, None)
        if not isinstance(value, str):
            continue
        if dest in LIST_OPTIONS:
            blank = not _split_list(value)
        else:
            blank = not value.strip()
        if blank:
            option = "--" + dest.replace("_", "-")
            raise ValueError(f"{option} {value!r} is empty. {hint}")


def _dataset_ids(text: str | None, suite: Suite) -> list[int] | None:
    """Parse ``--datasets`` into OpenML ids of ``suite``; None when it is empty.

    Raises:
        ValueError: if a value is not an integer or not an id of the suite; the
            message lists the suite's ids.
    """
    values = _split_list(text)
    if not values:
        return None
    known = [entry.openml_id for entry in suite.datasets]
    listing = f"Suite {suite.name} has the ids {', '.join(map(str, known))}."
    invalid = [v for v in values if not v.isdecimal()]
    if invalid:
        raise ValueError(
            f"--datasets {text}: {', '.join(invalid)} is not an OpenML dataset id "
            f"(a whole number). {listing}"
        )
    unknown = [v for v in values if int(v) not in known]
    if unknown:
        raise ValueError(
            f"--datasets {text}: {', '.join(unknown)} is not in suite "
            f"{suite.name}. {listing}"
        )
    return [int(v) for v in values]


def _check_folder(
    path: Path,
    option: str,
    fix: str = "Pass the path of a folder (it is created if missing).",
) -> None:
    """Raise `ValueError` if ``path`` or a parent of it is an existing file.

    Creating the folder (or writing into it) would then fail with an OS error.
    The message names ``option`` and the path, and ends with ``fix``.
    """
    blocker = _nearest_file(path)
    if blocker is not None:
        raise ValueError(
            f"{option} {path} is invalid: {blocker} is a file, not a folder. {fix}"
        )


def _nearest_file(path: Path) -> Path | None:
    """Return ``path`` or its nearest existing parent if that is not a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def _check_output_file(path: Path, option: str) -> None:
    """Raise `ValueError` if no file can be written at ``path``.

    That is the case when ``path`` is a folder or a parent of it is a file.
    Missing parent folders are fine, because the writer creates them.
    """
    if path.is_dir():
        raise ValueError(
            f"{option} {path} is invalid: it is a folder, not a file. Pass the path "
            "of a file (its folder is created if missing)."
        )
    blocker = _nearest_file(path.parent)
    if blocker is not None:
        raise ValueError(
            f"{option} {path} is invalid: {blocker} is a file, not a folder. Pass a "
            "file path whose parent folders are folders or do not exist yet."
        )


def _data_sources(args: argparse.Namespace) -> DataSources:
    """Return the dataset sources of --mirror, --cache, --openml-cache, --offline.

    Raises:
        ValueError: if the mirror is not a folder, or the cache folder or
            --openml-cache is a file or lies below one.
    """
    from tasks import DataSources
    from tasks.loader import CACHE_ENV

    sources = DataSources.from_env(
        mirror=args.mirror,
        cache_dir=args.cache,
        openml_cache=args.openml_cache,
        offline=args.offline,
    )
    if args.cache is not None:
        origin = "--cache"
    elif os.environ.get(CACHE_ENV):
        origin = CACHE_ENV
    else:
        origin = "The default dataset cache"
    fix = (
        f"Pass the path of a folder with --cache or {CACHE_ENV} (it is created "
        "if missing)."
    )
    _check_folder(sources.cache_dir, origin, fix)
    if args.openml_cache is not None:
        _check_folder(args.openml_cache, "--openml-cache")
    return sources


def _check_tracking_uri(uri: str, args: argparse.Namespace) -> None:
    """Raise `ValueError` if the tracking URI of a command is not accepted.

    The message names where ``uri`` came from: --tracking-uri,
    MLFLOW_TRACKING_URI or the default store in --results.
    """
    from bench.tracking import check_tracking_uri

    if args.tracking_uri:
        origin = "--tracking-uri"
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        origin = "MLFLOW_TRACKING_URI"
    else:
        origin = f"The default tracking URI of --results {args.results}"
    check_tracking_uri(uri, origin)


def _check_store_exists(uri: str, args: argparse.Namespace) -> None:
    """Raise `LookupError` if ``uri`` names a SQLite file that does not exist.

    MLflow would create an empty store there, and the report would then fail
    on a missing experiment instead of naming the wrong path.
    """
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    # A folder or a text file at the path is reported by `_check_tracking_uri`.
    if path.exists():
        return
    if args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):
        raise LookupError(
            f"No results at tracking URI {uri}: the file {path} does not exist. "
            "Check --tracking-uri or MLFLOW_TRACKING_URI."
        )
    raise LookupError(
        f"No results at --results {args.results}: {path} does not exist. Pass "
        "the results folder of an earlier `bench run` (default: ./results)."
    )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Raise `KeyboardInterrupt` on SIGTERM inside the block, as on Ctrl-C.

    The cleanup of an interrupt then runs for both signals: the running
    Optuna trial is marked FAIL and its MLflow run KILLED. Outside the main
    thread, where Python cannot set signal handlers, SIGTERM is left as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


if __name__ == "__main__":
    raise SystemExit(main())
