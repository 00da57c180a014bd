"""The ``bench`` command line: run, fetch, report, ui, encoders, suites."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger("bench")

DEFAULT_RESULTS = Path("results")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bench`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
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
        default="demo",
        help="built-in suite name or path of a suite .toml (default: demo)",
    )
    run.add_argument(
        "--preset",
        default="default",
        help="built-in preset name or path of a preset .toml",
    )
    run.add_argument(
        "--encoders",
        help="comma-separated encoder names, or all (default: the suite's list)",
    )
    run.add_argument(
        "--datasets", help="comma-separated OpenML ids of the suite to run"
    )
    run.add_argument("--trials", type=int, help="Optuna trials per study")
    run.add_argument("--seeds", type=int, help="final seeds per study")
    run.add_argument("--max-epochs", type=int, help="epoch limit per training run")
    run.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N"
    )
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
    run.set_defaults(handler=_run)

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
        type=Path,
        help="also write a mirror folder (Parquet files and MANIFEST.toml) here",
    )
    _add_data(fetch)
    fetch.set_defaults(handler=_fetch)

    report = commands.add_parser("report", help="build the leaderboard from MLflow")
    report.add_argument(
        "--suite",
        default="demo",
        help="suite (MLflow experiment) to report on (default: demo)",
    )
    report.add_argument(
        "--out", type=Path, help="output folder (default: RESULTS/reports/SUITE)"
    )
    _add_common(report)
    report.set_defaults(handler=_report)

    ui = commands.add_parser("ui", help="open the MLflow UI on 127.0.0.1")
    ui.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    ui.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    _add_common(ui)
    ui.set_defaults(handler=_ui)

    encoders = commands.add_parser("encoders", help="list the available encoders")
    encoders.add_argument(
        "--time",
        action="store_true",
        help="instead of the list, time forward+backward of every encoder on one "
        "fixed batch and print a Markdown table",
    )
    encoders.add_argument(
        "--repeats", type=int, default=100, help="timed steps per encoder (--time)"
    )
    encoders.set_defaults(handler=_encoders)

    suites = commands.add_parser("suites", help="list the built-in suites")
    suites.set_defaults(handler=_suites)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results",
        type=Path,
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


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mirror",
        type=Path,
        help="mirror folder of Parquet datasets with MANIFEST.toml "
        "(default: $BENCH_MIRROR)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="Parquet cache of loaded datasets (default: "
        "$BENCH_CACHE, else ~/.cache/encoder-bench)",
    )
    parser.add_argument(
        "--openml-cache", type=Path, help="root cache folder of openml-python"
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
    from tasks import DataSources, load_suite

    suite = load_suite(args.suite)
    preset = load_preset(args.preset).with_budget(
        n_trials=args.trials, n_seeds=args.seeds, max_epochs=args.max_epochs
    )
    encoders = _split_list(args.encoders) or list(suite.encoders) or ["none"]
    if encoders == ["all"]:
        from encoders import available_encoders

        encoders = sorted(available_encoders())
    datasets = [int(i) for i in _split_list(args.datasets)] or None
    options = RunOptions(
        results=args.results,
        sources=DataSources.from_env(
            mirror=args.mirror,
            cache_dir=args.cache,
            openml_cache=args.openml_cache,
            offline=args.offline,
        ),
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
    summary = run_suite(suite, preset, options, runner)
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
    logger.info(
        "%d of %d studies complete, %d skipped, %d failed",
        complete,
        len(statuses) + len(summary.failed),
        statuses.count("skipped"),
        failed,
    )
    # Exit status 1 signals to batch scripts that a study failed or nothing ran,
    # even though the leaderboard was still written.
    return 0 if complete and not failed and not summary.worker_errors else 1


def _fetch(args: argparse.Namespace) -> int:
    from bench.fetch import fetch_suite
    from tasks import DataSources, load_suite

    suite = load_suite(args.suite)
    datasets = [int(i) for i in _split_list(args.datasets)] or None
    sources = DataSources.from_env(
        mirror=args.mirror,
        cache_dir=args.cache,
        openml_cache=args.openml_cache,
        offline=args.offline,
    )
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

    out = args.out or args.results / "reports" / args.suite
    uri = _tracking_uri(args)
    check_reachable(uri)
    path, _ = build_report(uri, args.suite, out)
    sys.stdout.write(path.read_text())
    return 0


def _ui(args: argparse.Namespace) -> int:
    uri = _tracking_uri(args)
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
    os.execvp(command[0], command)
    return 0  # not reached: execvp replaces the process


def _encoders(args: argparse.Namespace) -> int:
    from encoders import available_encoders

    if args.time:
        from encoders.speed import format_rows, time_encoders

        sys.stdout.write(format_rows(time_encoders(n_repeats=args.repeats)) + "\n")
        return 0

    for name, cls in sorted(available_encoders().items()):
        sys.stdout.write(f"{name}\n    {cls.description}\n")
        for param, dist in cls.search_space().items():
            sys.stdout.write(f"    {param}: {dist!r}\n")
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


if __name__ == "__main__":
    raise SystemExit(main())
