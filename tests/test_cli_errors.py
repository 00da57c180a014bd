"""Invalid command-line input: one clear error line, exit status 2, no files."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from optuna.exceptions import ExperimentalWarning

from bench.cli import _parser, _serve, main
from bench.storage import open_storage

DEMO_IDS = "507, 688, 41021"


# One study at the smallest budget, on the CPU.
CHEAP = ["--encoders", "none", "--trials", "1", "--seeds", "1", "--max-epochs", "1"]
CHEAP += ["--device", "cpu"]


def run_args(results: Path, mirror: Path | None, *extra: str) -> list[str]:
    """Return `bench run` arguments for one cheap study of the demo suite."""
    args = ["run", "--suite", "demo", "--results", str(results)]
    if mirror is not None:
        args += ["--mirror", str(mirror)]
    return [*args, *CHEAP, *extra]


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def single_error(caplog: pytest.LogCaptureFixture) -> str:
    """Return the one error message logged; fail if there are more or it wraps."""
    errors = error_lines(caplog)
    assert len(errors) == 1, errors
    assert "\n" not in errors[0]
    assert "Traceback" not in caplog.text
    return errors[0]


def make_store(results: Path) -> None:
    """Create ``results/mlflow.db`` with an empty ``demo`` experiment."""
    results.mkdir(parents=True, exist_ok=True)
    MlflowClient(f"sqlite:///{results / 'mlflow.db'}").create_experiment("demo")


def test_run_results_file_rejected(tmp_path: Path, mirror: Path, caplog):
    results = tmp_path / "results.txt"
    results.write_text("not a folder")

    assert main(run_args(results, mirror, "--datasets", "41021")) == 2

    message = single_error(caplog)
    assert f"--results {results}" in message
    assert "is a file, not a folder" in message
    assert "Pass the path of a folder" in message
    assert results.read_text() == "not a folder"


def test_run_results_below_file_rejected(tmp_path: Path, mirror: Path, caplog):
    blocker = tmp_path / "blocker"
    blocker.write_text("")

    assert main(run_args(blocker / "results", mirror, "--datasets", "41021")) == 2

    message = single_error(caplog)
    assert str(blocker / "results") in message
    assert f"{blocker} is a file" in message


def test_report_out_file_rejected(tmp_path: Path, caplog):
    results = tmp_path / "results"
    make_store(results)
    out = tmp_path / "leaderboard.md"
    out.write_text("old")

    code = main(["report", "--results", str(results), "--out", str(out)])

    assert code == 2
    message = single_error(caplog)
    assert f"--out {out}" in message
    assert "is a file, not a folder" in message
    assert out.read_text() == "old"


def test_report_results_file_rejected(tmp_path: Path, caplog):
    results = tmp_path / "results"
    results.write_text("")

    assert main(["report", "--results", str(results)]) == 2

    message = single_error(caplog)
    assert f"--results {results}" in message
    assert "is a file, not a folder" in message


def test_report_missing_results_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    typo = tmp_path / "typo"

    assert main(["report", "--results", str(typo)]) == 2

    message = single_error(caplog)
    assert message.startswith(f"No results at --results {typo}")
    assert str(typo / "mlflow.db") in message
    assert "does not exist" in message
    assert "earlier `bench run`" in message
    assert not typo.exists()


def test_ui_missing_results_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    typo = tmp_path / "typo"

    assert main(["ui", "--results", str(typo)]) == 2

    assert single_error(caplog).startswith(f"No results at --results {typo}")
    assert not typo.exists()


def test_report_missing_tracking_file_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    store = tmp_path / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")

    assert main(["report", "--results", str(tmp_path)]) == 2

    message = single_error(caplog)
    assert str(store) in message
    assert "MLFLOW_TRACKING_URI" in message
    assert not store.exists()


@pytest.mark.parametrize("value", ["999", "41021,999"])
def test_datasets_outside_suite_rejected(
    tmp_path: Path, mirror: Path, caplog, value: str
):
    results = tmp_path / "results"

    assert main(run_args(results, mirror, "--datasets", value)) == 2

    message = single_error(caplog)
    assert message.startswith(f"--datasets {value}: 999 is not in suite demo")
    assert f"Suite demo has the ids {DEMO_IDS}." in message
    assert not results.exists()


def test_run_takes_the_preset_suite(tmp_path: Path, mirror: Path, caplog):
    results = tmp_path / "results"
    args = ["run", "--protocol", "gorishniy2022", "--datasets", "507"]

    assert main([*args, "--results", str(results), "--mirror", str(mirror)]) == 2

    message = single_error(caplog)
    assert message.startswith("--datasets 507: 507 is not in suite gorishniy2022")
    assert not results.exists()


@pytest.mark.parametrize("value", ["abc", "41021,x1", "-5"])
def test_datasets_not_integer_rejected(
    tmp_path: Path, mirror: Path, caplog, value: str
):
    results = tmp_path / "results"

    assert main(run_args(results, mirror, "--datasets", value)) == 2

    message = single_error(caplog)
    bad = value.split(",")[-1]
    assert message.startswith(f"--datasets {value}: {bad} is not an OpenML")
    assert DEMO_IDS in message
    assert not results.exists()


def test_fetch_datasets_not_integer_rejected(tmp_path: Path, mirror: Path, caplog):
    code = main(["fetch", "--mirror", str(mirror), "--datasets", "abc"])

    assert code == 2
    message = single_error(caplog)
    assert "abc is not an OpenML dataset id" in message
    assert DEMO_IDS in message


def test_run_suite_rejects_foreign_ids(tmp_path: Path, mirror: Path):
    from bench.config import load_preset
    from bench.pipeline import RunOptions, run_suite
    from tasks import DataSources, load_suite

    options = RunOptions(
        results=tmp_path / "results",
        sources=DataSources.from_env(mirror=mirror),
        encoders=["none"],
        dataset_ids=[41021, 999],
    )

    with pytest.raises(ValueError) as raised:
        run_suite(load_suite("demo"), load_preset("default"), options)

    assert str(raised.value) == (
        f"Dataset ids 999 are not in suite demo; its ids are {DEMO_IDS}."
    )
    assert not (tmp_path / "results").exists()


def test_missing_mirror_from_environment_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    absent = tmp_path / "no-such-mirror"
    monkeypatch.setenv("BENCH_MIRROR", str(absent))
    results = tmp_path / "results"

    assert main(run_args(results, None, "--datasets", "41021")) == 2

    message = single_error(caplog)
    assert f"Dataset mirror {absent}" in message
    assert "from the environment variable BENCH_MIRROR" in message
    assert "does not exist" in message
    assert "unset BENCH_MIRROR" in message
    assert not results.exists()


def test_missing_mirror_option_named(tmp_path: Path, caplog):
    absent = tmp_path / "no-such-mirror"

    assert main(run_args(tmp_path / "results", absent, "--datasets", "41021")) == 2

    message = single_error(caplog)
    assert f"Dataset mirror {absent} (from --mirror) does not exist" in message
    assert "MANIFEST.toml" in message


def write_preset(folder: Path, override: str) -> Path:
    """Copy the default preset with one ``[encoders...]`` table appended."""
    from importlib import resources

    text = (resources.files("bench") / "presets" / "default.toml").read_text()
    text = text.replace('name = "default"', 'name = "custom"')
    path = folder / "custom.toml"
    path.write_text(text + "\n" + override + "\n")
    return path


def preset_error(folder: Path, mirror: Path, caplog, override: str) -> str:
    """Run one study with `write_preset`'s file; return its one error line.

    Asserts that the run exits 2 and leaves no results folder.
    """
    preset = write_preset(folder, override)
    results = folder / "results"

    code = main(
        run_args(results, mirror, "--datasets", "41021", "--preset", str(preset))
    )

    assert code == 2
    assert not results.exists()
    return single_error(caplog)


def test_preset_unknown_encoder_parameter(tmp_path: Path, mirror: Path, caplog):
    message = preset_error(
        tmp_path,
        mirror,
        caplog,
        '[encoders.soft-bins.space]\nn_binz = { type = "int", low = 4, high = 8 }',
    )
    assert "Preset 'custom'" in message
    assert "[encoders.soft-bins.space] sets ['n_binz']" in message
    assert "'n_bins'" in message


def test_preset_unknown_encoder_name(tmp_path: Path, mirror: Path, caplog):
    message = preset_error(
        tmp_path,
        mirror,
        caplog,
        '[encoders.soft-binz.space]\nn_bins = { type = "fixed", value = 8 }',
    )
    assert "Preset 'custom'" in message
    assert "[encoders.soft-binz] names an unknown encoder" in message
    assert "soft-bins" in message


def test_storage_opens_without_experimental_warning(tmp_path: Path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")

    experimental = [w for w in caught if issubclass(w.category, ExperimentalWarning)]
    assert experimental == []


def skip_suite(folder: Path, target: str) -> Path:
    """Write a suite of Moneyball and one id that no source has."""
    path = folder / f"suite-{target}.toml"
    path.write_text(
        'name = "skipcheck"\nencoders = ["none"]\n\n'
        f'[[dataset]]\nopenml_id = 41021\nname = "Moneyball"\ntarget = "{target}"\n\n'
        '[[dataset]]\nopenml_id = 999999\nname = "absent"\n'
    )
    return path


def skip_args(results: Path, mirror: Path, suite: Path) -> list[str]:
    args = run_args(results, mirror, "--offline")
    args[args.index("demo")] = str(suite)
    return args


def test_all_datasets_skipped_listed(tmp_path: Path, mirror: Path, caplog):
    results = tmp_path / "results"
    caplog.set_level(logging.INFO, logger="bench")

    code = main(skip_args(results, mirror, skip_suite(tmp_path, "no_such_column")))

    assert code == 1
    errors = error_lines(caplog)
    assert errors[-1].startswith("No study ran: every dataset was skipped.")
    summary = [m.getMessage() for m in caplog.records if "studies complete" in m.msg]
    assert summary == [
        "0 of 2 studies complete, 2 skipped (datasets 41021, 999999), 0 failed"
    ]

    board = (results / "reports" / "skipcheck" / "leaderboard.md").read_text()
    assert "## Skipped datasets (2)" in board
    assert "| 41021 | Moneyball | " in board
    assert "no_such_column" in board
    assert "| 999999 | absent | " in board
    assert "offline mode" in board
    assert "Skipped: 2 datasets could not be used" in board
    page = (results / "reports" / "skipcheck" / "report.html").read_text()
    assert "Skipped datasets (2)" in page


@pytest.mark.slow
def test_skip_record_cleared_once_loaded(tmp_path: Path, mirror: Path):
    results = tmp_path / "results"
    assert main(skip_args(results, mirror, skip_suite(tmp_path, "bad"))) == 1
    first = (results / "reports" / "skipcheck" / "leaderboard.md").read_text()
    assert "## Skipped datasets (2)" in first

    # The same suite with Moneyball's real target: it loads, and only the
    # dataset that no source has stays listed.
    assert main(skip_args(results, mirror, skip_suite(tmp_path, "RS"))) == 0

    board = (results / "reports" / "skipcheck" / "leaderboard.md").read_text()
    assert "## Skipped datasets (1)" in board
    assert "| 999999 | absent | " in board
    assert "| 41021 | Moneyball | " not in board
    assert "| none |" in board


def test_ui_binds_loopback_by_default():
    args = _parser().parse_args(["ui"])

    assert args.host == "127.0.0.1"


def test_preset_invalid_choice_rejected(tmp_path: Path, mirror: Path, caplog):
    message = preset_error(
        tmp_path,
        mirror,
        caplog,
        "[encoders.soft-bins.space]\n"
        'scores = { type = "categorical", choices = ["edges", "bogus"] }',
    )
    preset = tmp_path / "custom.toml"
    assert message.startswith(f"{preset}: [encoders.soft-bins.space] scores")
    assert "choice 'bogus'" in message
    assert "encoder soft-bins rejects" in message
    assert "'edges', 'interval'" in message


@pytest.mark.parametrize("option", ["--protocol", "--preset"])
def test_run_empty_protocol_rejected(tmp_path: Path, mirror: Path, caplog, option: str):
    results = tmp_path / "results"

    assert main(run_args(results, mirror, "--datasets", "41021", option, "")) == 2

    message = single_error(caplog)
    assert message.startswith(f"{option} '' is empty")
    assert "throughput" in message
    assert f"leave {option} out to use default" in message
    assert not results.exists()


@pytest.mark.parametrize("name", ["does-not-exist.toml", "missing/preset"])
def test_run_missing_preset_file_named(tmp_path: Path, mirror: Path, caplog, name: str):
    path = tmp_path / name
    results = tmp_path / "results"

    code = main(
        run_args(results, mirror, "--datasets", "41021", "--protocol", str(path))
    )

    assert code == 2
    message = single_error(caplog)
    assert message.startswith(f"Preset file {path} was not found.")
    assert "Unknown preset" not in message
    assert not results.exists()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--only", "nope", "--batch-size", "0", "--set", "foo=1"], "--only, "),
        (["--only", "nope"], "--only needs --time"),
        (["--batch-size", "0"], "--batch-size needs --time"),
        (["--set", "foo=1"], "--set needs --time"),
        (["--threads", "2"], "--threads needs --time"),
        (["--repeats", "5"], "--repeats needs --time"),
    ],
)
def test_encoders_timing_options_need_time(
    capsys, caplog, options: list[str], named: str
):
    assert main(["encoders", *options]) == 2

    message = single_error(caplog)
    assert named in message
    assert "Add --time to time the encoders" in message
    assert capsys.readouterr().out == ""


def test_encoders_all_timing_options_named(caplog):
    options = ["--only", "nope", "--batch-size", "0", "--set", "foo=1"]

    assert main(["encoders", *options]) == 2

    assert single_error(caplog).startswith("--only, --batch-size, --set need --time.")


def test_encoders_repeats_below_minimum(capsys, caplog):
    assert main(["encoders", "--time", "--only", "none", "--repeats", "1"]) == 2

    message = single_error(caplog)
    assert message.startswith("--repeats 1 is invalid. Use an integer >= 2")
    assert "n_repeats" not in message
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("value", ["", ",", " , "])
def test_encoders_empty_only_rejected(capsys, caplog, value: str):
    assert main(["encoders", "--time", "--only", value, "--repeats", "2"]) == 2

    message = single_error(caplog)
    assert message.startswith(f"--only {value!r} names no encoder")
    assert capsys.readouterr().out == ""


def test_encoders_repeated_set_key_rejected(capsys, caplog):
    sets = ["--set", "scores=edges", "--set", "scores=interval"]

    assert main(["encoders", "--time", "--only", "soft-bins", *sets]) == 2

    message = single_error(caplog)
    assert message.startswith("--set scores is given twice")
    assert "scores=edges and scores=interval" in message
    assert capsys.readouterr().out == ""


def test_encoders_threads_above_cores_warned(monkeypatch: pytest.MonkeyPatch, caplog):
    import torch

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    threads = torch.get_num_threads()
    options = ["--only", "none", "--repeats", "2", "--batch-size", "4"]
    try:
        assert main(["encoders", "--time", *options, "--threads", "2"]) == 0
    finally:
        torch.set_num_threads(threads)

    warning_lines = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    ]
    assert any(
        line.startswith("--threads 2 is more than the 1 CPU cores")
        for line in warning_lines
    ), warning_lines


BLANK_RUN_CASES = [
    ("--datasets", ""),
    ("--datasets", ","),
    ("--encoders", ""),
    ("--encoders", " , "),
    ("--results", ""),
    ("--results", "  "),
    ("--suite", ""),
    ("--device", ""),
    ("--storage", ""),
    ("--tracking-uri", ""),
    ("--mirror", ""),
    ("--cache", ""),
    ("--openml-cache", ""),
    ("--partition", ""),
]


@pytest.mark.parametrize(("option", "value"), BLANK_RUN_CASES)
def test_run_blank_option_rejected(
    tmp_path: Path,
    mirror: Path,
    caplog,
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    value: str,
):
    # A blank path used to mean the current folder, so run in an empty one.
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    results = tmp_path / "results"
    args = run_args(results, mirror, "--datasets", "41021", option, value)

    assert main(args) == 2

    message = single_error(caplog)
    assert message.startswith(f"{option} {value!r} is empty. Give ")
    assert f"leave {option} out" in message
    assert not results.exists()
    assert list(workdir.iterdir()) == []


BLANK_OTHER_CASES = [
    ("report", "--out", "RESULTS/reports/SUITE"),
    ("report", "--suite", "the default suite"),
    ("report", "--results", "./results"),
    ("report", "--tracking-uri", "MLFLOW_TRACKING_URI"),
    ("reproduce", "--out", "reproduce-PROTOCOL.md"),
    ("reproduce", "--encoders", "the suite's list"),
    ("reproduce", "--datasets", "every dataset of the suite"),
    ("reproduce", "--results", "./results"),
    ("fetch", "--out", "fill only the cache"),
    ("fetch", "--datasets", "every dataset of the suite"),
    ("fetch", "--suite", "the default suite"),
    ("fetch", "--cache", "BENCH_CACHE"),
    ("ui", "--results", "./results"),
    ("ui", "--host", "127.0.0.1"),
    ("perf", "--out", "results/perf"),
    ("perf", "--sections", "all four"),
]


@pytest.mark.parametrize(("command", "option", "default"), BLANK_OTHER_CASES)
def test_blank_option_rejected_in_every_command(
    tmp_path: Path,
    mirror: Path,
    caplog,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    option: str,
    default: str,
):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    results = tmp_path / "results"
    value = "," if option in ("--encoders", "--datasets", "--sections") else ""
    args = [command]
    if command in ("reproduce", "fetch", "perf"):
        args += ["--mirror", str(mirror)]
    # The results store is missing, so `ui` and `report` stop before serving
    # or reading anything even if the blank value were accepted.
    if command in ("report", "reproduce", "ui") and option != "--results":
        args += ["--results", str(results)]
    args += [option, value]

    assert main(args) == 2

    message = single_error(caplog)
    assert message.startswith(f"{option} {value!r} is empty. Give ")
    assert f"leave {option} out" in message
    assert default in message
    assert list(workdir.iterdir()) == []
    assert not results.exists()


def test_ui_port_out_of_range_rejected(tmp_path: Path, caplog):
    results = tmp_path / "results"
    make_store(results)

    for port in ("0", "99999", "-1"):
        caplog.clear()

        assert main(["ui", "--results", str(results), "--port", port]) == 2

        message = single_error(caplog)
        assert message.startswith(f"--port {port} is invalid")
        assert "from 1 to 65535" in message


def test_ui_port_in_use_rejected(tmp_path: Path):
    results = tmp_path / "results"
    make_store(results)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # A subprocess, because a `bench ui` that starts a server would
        # replace or block this process.
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.cli", "ui", "--results", str(results)]
            + ["--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    assert process.returncode == 2, output
    assert f"--port {port} is already in use on 127.0.0.1" in output
    assert "give a free --port" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("code", ["raise SystemExit(0)", "raise SystemExit(3)"])
def test_ui_server_exit_is_failure(caplog, code: str):
    # `mlflow ui` exits with 0 even when its web server fails, so any exit
    # that `bench ui` did not cause counts as a failure.
    assert _serve([sys.executable, "-c", code]) == 1

    message = single_error(caplog)
    assert "exited by itself with status" in message


def test_ui_server_stopped_by_sigterm(caplog):
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        status = _serve([sys.executable, "-c", "import time; time.sleep(30)"])
    finally:
        timer.cancel()

    assert status == 0
    assert error_lines(caplog) == []


@pytest.mark.parametrize(
    ("option", "hint"),
    [
        ("--out", "Pass the path of a folder"),
        ("--cache", "Pass the path of a folder with --cache or BENCH_CACHE"),
    ],
)
def test_fetch_folder_option_file_rejected(
    tmp_path: Path, mirror: Path, caplog, option: str, hint: str
):
    blocker = tmp_path / "taken.txt"
    blocker.write_text("old")
    args = ["fetch", "--mirror", str(mirror), "--offline", "--datasets", "41021"]

    assert main([*args, option, str(blocker)]) == 2

    message = single_error(caplog)
    assert message.startswith(f"{option} {blocker} is invalid: {blocker} is a file")
    assert hint in message
    assert blocker.read_text() == "old"


def test_cache_variable_file_named(
    tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    cache = tmp_path / "cache.txt"
    cache.write_text("old")
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    args = ["fetch", "--mirror", str(mirror), "--offline", "--datasets", "41021"]

    assert main(args) == 2

    message = single_error(caplog)
    assert message.startswith(f"BENCH_CACHE {cache} is invalid: {cache} is a file")


def reproduce_args(results: Path, mirror: Path, out: Path) -> list[str]:
    """Return `bench reproduce` arguments for one cheap study of California."""
    args = ["reproduce", "--results", str(results), "--mirror", str(mirror)]
    return [*args, "--offline", "--out", str(out), "--datasets", "44025", *CHEAP]


def test_reproduce_out_below_file_rejected(tmp_path: Path, mirror: Path, caplog):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    out = blocker / "x.md"
    results = tmp_path / "results"

    assert main(reproduce_args(results, mirror, out)) == 2

    message = single_error(caplog)
    assert message.startswith(f"--out {out} is invalid: {blocker} is a file")
    assert "Pass a file path whose parent folders are folders" in message
    assert not results.exists()


def test_reproduce_out_folder_rejected(tmp_path: Path, mirror: Path, caplog):
    out = tmp_path / "comparison"
    out.mkdir()
    results = tmp_path / "results"

    assert main(reproduce_args(results, mirror, out)) == 2

    message = single_error(caplog)
    assert message.startswith(f"--out {out} is invalid: it is a folder, not a file")
    assert not results.exists()


@pytest.mark.parametrize(
    ("datasets", "problem"),
    [("abc", "abc is not an OpenML dataset id"), ("1", "1 is not in suite")],
)
def test_reproduce_bad_dataset_ids(
    tmp_path: Path, mirror: Path, caplog, datasets, problem
):
    args = reproduce_args(tmp_path / "results", mirror, tmp_path / "out.md")
    args[args.index("--datasets") + 1] = datasets

    assert main(args) == 2

    message = single_error(caplog)
    assert message.startswith(f"--datasets {datasets}: {problem}")
    assert "Suite gorishniy2022 has the ids 44025, 574." in message
    assert not (tmp_path / "results").exists()


def test_perf_out_file_rejected(tmp_path: Path, mirror: Path, capsys, caplog):
    out = tmp_path / "perf.txt"
    out.write_text("old")
    args = ["perf", "--mirror", str(mirror), "--offline", "--out", str(out)]

    assert main([*args, "--sections", "encoders", "--encoder-repeats", "2"]) == 2

    message = single_error(caplog)
    assert message.startswith(f"--out {out} is invalid: {out} is a file")
    assert "Pass the path of a folder" in message
    assert out.read_text() == "old"
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("section", ["data", "training"])
def test_perf_unknown_dataset_lists_ids(
    tmp_path: Path, mirror: Path, caplog, section: str
):
    out = tmp_path / "perf"
    args = ["perf", "--mirror", str(mirror), "--offline", "--out", str(out)]

    assert main([*args, "--dataset", "99999", "--sections", section]) == 2

    message = single_error(caplog)
    assert message.startswith("--dataset 99999 could not be loaded: ")
    assert f"The mirror {mirror} has the ids " in message
    assert ", 41021, " in message
    assert "`bench suites` lists the ids" in message
    assert not out.exists()


@pytest.mark.parametrize("batch_size", ["65537", "1048576"])
def test_encoders_batch_size_above_maximum(capsys, caplog, batch_size: str):
    options = ["--only", "none", "--repeats", "2", "--batch-size", batch_size]

    assert main(["encoders", "--time", *options]) == 2

    message = single_error(caplog)
    assert message.startswith(f"--batch-size {batch_size} is invalid")
    assert "use an integer from 1 to 65536" in message
    assert capsys.readouterr().out == ""


def test_time_encoders_batch_size_limit():
    from encoders.speed import time_encoders

    with pytest.raises(ValueError, match="batch_size=65537 is invalid; use 1 to 65536"):
        time_encoders(["none"], batch_size=65537, n_repeats=2, n_warmup=0)


def text_store(folder: Path) -> Path:
    """Write a text file named ``mlflow.db``, which is no SQLite database."""
    path = folder / "text" / "mlflow.db"
    path.parent.mkdir()
    path.write_text("not a database\n")
    return path


def invalid_tracking_uris(folder: Path) -> dict[str, tuple[str, str]]:
    """Return invalid tracking URIs by case, each with its expected reason."""
    return {
        "bare path": (str(folder / "store"), "it is a path, not a URI"),
        "unknown scheme": (
            "bogus://127.0.0.1/x",
            "MLflow has no tracking store for the scheme bogus://",
        ),
        "text file": (
            f"sqlite:///{text_store(folder)}",
            "is not an SQLite database",
        ),
    }


TRACKING_CASES = ["bare path", "unknown scheme", "text file"]


def assert_tracking_uri_rejected(message: str, uri: str, reason: str) -> None:
    assert message.startswith(f"--tracking-uri {uri} is invalid: ")
    assert reason in message
    assert "sqlite:///PATH" in message
    assert "file:///PATH" in message
    assert "http://HOST:PORT" in message


@pytest.mark.parametrize("case", TRACKING_CASES)
def test_run_invalid_tracking_uri_rejected(
    tmp_path: Path, mirror: Path, caplog, case: str
):
    uri, reason = invalid_tracking_uris(tmp_path)[case]
    results = tmp_path / "results"

    assert (
        main(run_args(results, mirror, "--datasets", "41021", "--tracking-uri", uri))
        == 2
    )

    assert_tracking_uri_rejected(single_error(caplog), uri, reason)
    assert not results.exists()
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("case", TRACKING_CASES)
def test_report_invalid_tracking_uri_rejected(tmp_path: Path, caplog, case: str):
    uri, reason = invalid_tracking_uris(tmp_path)[case]
    results = tmp_path / "results"
    make_store(results)

    assert main(["report", "--results", str(results), "--tracking-uri", uri]) == 2

    assert_tracking_uri_rejected(single_error(caplog), uri, reason)
    assert not (results / "reports").exists()


def test_report_text_default_store_rejected(tmp_path: Path, monkeypatch, caplog):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    results = tmp_path / "results"
    results.mkdir()
    (results / "mlflow.db").write_text("not a database\n")

    assert main(["report", "--results", str(results)]) == 2

    message = single_error(caplog)
    assert message.startswith(f"The default tracking URI of --results {results}")
    assert "is not an SQLite database" in message


def test_tracking_variable_unknown_scheme_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus://127.0.0.1/x")
    results = tmp_path / "results"
    make_store(results)

    assert main(["report", "--results", str(results)]) == 2

    message = single_error(caplog)
    assert message.startswith("MLFLOW_TRACKING_URI bogus://127.0.0.1/x is invalid")
    assert "sqlite:///PATH" in message


def test_report_file_store_needs_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    from mlflow import environment_variables

    if not hasattr(environment_variables, "MLFLOW_ALLOW_FILE_STORE"):
        pytest.skip("this MLflow version accepts file stores without a variable")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    results = tmp_path / "results"
    make_store(results)
    uri = f"file://{tmp_path / 'mlruns'}"

    assert main(["report", "--results", str(results), "--tracking-uri", uri]) == 2

    message = single_error(caplog)
    assert message.startswith(f"--tracking-uri {uri} is invalid: ")
    assert "unless MLFLOW_ALLOW_FILE_STORE=true" in message
    assert not (tmp_path / "mlruns").exists()


def write_named_suite(folder: Path, name: str) -> Path:
    """Write a suite of Moneyball whose ``name`` field is ``name``."""
    path = folder / "named.toml"
    path.write_text(
        f'name = {json.dumps(name)}\nencoders = ["none"]\n\n'
        '[[dataset]]\nopenml_id = 41021\nname = "Moneyball"\n'
    )
    return path


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "a\\b", "..", "a..b", ".hidden", "x y", "-x", "ü"]
)
def test_suite_unsafe_name_rejected(tmp_path: Path, name: str):
    from tasks import load_suite
    from tasks.suites import SuiteError

    path = write_named_suite(tmp_path, name)

    with pytest.raises(SuiteError) as raised:
        load_suite(str(path))

    message = str(raised.value)
    assert message.startswith(f"{path}: the field name = {name!r} is invalid")
    assert "becomes a folder under the results folder" in message
    assert "letters A-Z and a-z, digits, '.', '_' and '-'" in message


@pytest.mark.parametrize("name", ["demo", "my-suite_2", "v1.2"])
def test_suite_safe_name_loads(tmp_path: Path, name: str):
    from tasks import load_suite

    assert load_suite(str(write_named_suite(tmp_path, name))).name == name


def test_run_suite_escaping_name_rejected(tmp_path: Path, mirror: Path, caplog):
    suite = write_named_suite(tmp_path, "../../escaped")
    results = tmp_path / "results"
    args = run_args(results, mirror, "--datasets", "41021")
    args[args.index("demo")] = str(suite)

    assert main(args) == 2

    message = single_error(caplog)
    assert message.startswith(f"{suite}: the field name = '../../escaped' is invalid")
    assert not results.exists()
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--partition", "gpu"], "--partition: options of --runner slurm, which "),
        (
            ["--runner", "local", "--time", "30", "--no-wait"],
            "--time, --no-wait: options of --runner slurm, which --runner local ",
        ),
        (["--runner", "local", "--workers", "0"], "--workers 0 is invalid"),
        (["--runner", "local", "--workers", "-1"], "--workers -1 is invalid"),
    ],
)
def test_runner_options_checked(
    tmp_path: Path, mirror: Path, caplog, extra: list[str], expected: str
):
    results = tmp_path / "results"

    assert main(run_args(results, mirror, *extra)) == 2

    assert single_error(caplog).startswith(expected)
    assert not results.exists()
