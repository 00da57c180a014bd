"""Fast training paths compute what the simple ones do; `bench perf` output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_training import make_data

import bench.training
from bench.batches import (
    Acceleration,
    EpochPermutations,
    SequentialBatches,
    ShuffledBatches,
)
from bench.cli import _parameter_values, main
from bench.perf import PerfSettings, bare_loop, linear_shapes, training_flops
from bench.training import predict, train_model
from encoders import available_encoders
from encoders.plain import PlainEncoder
from encoders.speed import time_encoders

PARAMS = {"n_blocks": 2, "d_block": 16, "dropout": 0.0, "lr": 1e-3, "weight_decay": 0.0}
LOOP = {"max_epochs": 2, "patience": 2, "batch_size": 64, "eval_batch_size": 1000}


def test_shuffled_batches_cover_rows_once():
    batches = ShuffledBatches(10, 4, seed=3)

    first = list(batches)
    second = list(batches)

    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(torch.cat(first).tolist()) == list(range(10))
    assert sorted(torch.cat(second).tolist()) == list(range(10))
    assert not torch.equal(torch.cat(first), torch.cat(second))
    again = ShuffledBatches(10, 4, seed=3)
    assert torch.equal(torch.cat(list(again)), torch.cat(first))
    assert len(batches) == 3


def test_epoch_permutations_yield_one_order():
    orders = list(EpochPermutations(ShuffledBatches(7, 2, seed=0)))

    assert len(orders) == 1
    assert sorted(orders[0].tolist()) == list(range(7))


def test_sequential_batches_in_order():
    batches = list(SequentialBatches(5, 2))

    assert [b.tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert len(SequentialBatches(5, 2)) == 3


def test_batches_reject_empty_sizes():
    with pytest.raises(ValueError, match="batch_size=0 are invalid"):
        ShuffledBatches(5, 0, seed=0)
    with pytest.raises(ValueError, match="n_rows=0"):
        SequentialBatches(0, 4)


def test_project_path_equals_bare_loop():
    data = make_data()

    model, _, result = train_model(PlainEncoder, PARAMS, data, seed=5, **LOOP)
    bare = bare_loop(
        data,
        PARAMS,
        seed=5,
        epochs=LOOP["max_epochs"],
        batch_size=LOOP["batch_size"],
        eval_batch_size=LOOP["eval_batch_size"],
    )

    # The project path restores its best epoch; the bare loop keeps the last.
    assert result.best_epoch == LOOP["max_epochs"] - 1
    np.testing.assert_allclose(
        predict(model, data.test, 1000), predict(bare, data.test, 1000), atol=1e-6
    )


def test_compiled_forward_matches_eager(monkeypatch: pytest.MonkeyPatch):
    # The "eager" backend runs the torch.compile machinery without a C++
    # compiler, so the code path is tested in seconds on any CPU.
    monkeypatch.setattr(bench.training, "COMPILE_BACKEND", "eager")
    data = make_data()

    eager, _, _ = train_model(PlainEncoder, PARAMS, data, seed=1, **LOOP)
    compiled, _, _ = train_model(
        PlainEncoder,
        PARAMS,
        data,
        seed=1,
        acceleration=Acceleration(compile=True),
        **LOOP,
    )

    np.testing.assert_allclose(
        predict(compiled, data.test, 1000), predict(eager, data.test, 1000), atol=1e-6
    )


def test_bf16_autocast_trains_on_cpu():
    data = make_data()
    params = {**PARAMS, "lr": 1e-2}

    full, _, full_result = train_model(PlainEncoder, params, data, seed=2, **LOOP)
    half, _, half_result = train_model(
        PlainEncoder, params, data, seed=2, acceleration=Acceleration(bf16=True), **LOOP
    )

    prediction = predict(half, data.test, 1000)
    assert np.isfinite(prediction).all()
    # bfloat16 keeps 8 significant bits, so only a coarse agreement holds.
    assert abs(half_result.best_val_rmse - full_result.best_val_rmse) < 0.05 * (
        full_result.best_val_rmse
    )
    np.testing.assert_allclose(prediction, predict(full, data.test, 1000), atol=0.1)


def test_acceleration_device_checks():
    assert Acceleration().precision() == "32-true"
    assert Acceleration(bf16=True).precision() == "bf16-mixed"
    Acceleration(bf16=True).check(torch.device("cpu"))
    with pytest.raises(ValueError, match="bf16 was requested on device meta"):
        Acceleration(bf16=True).check(torch.device("meta"))


def test_perf_settings_reject_invalid_values():
    with pytest.raises(ValueError, match="epochs=0 is invalid"):
        PerfSettings(epochs=0).check()
    with pytest.raises(ValueError, match="sections \\['speed'\\] are invalid"):
        PerfSettings(sections=("speed",)).check()
    with pytest.raises(ValueError, match="encoder_repeats=1 is invalid"):
        PerfSettings(encoder_repeats=1).check()


@pytest.mark.slow
def test_perf_command_writes_tables(tmp_path: Path, mirror: Path):
    out = tmp_path / "perf"
    status = main(
        [
            "perf",
            "--out",
            str(out),
            "--dataset",
            "507",
            "--train-rows",
            "300",
            "--epochs",
            "1",
            "--repeats",
            "1",
            "--seeds",
            "2",
            "--seed-epochs",
            "1",
            "--encoder-repeats",
            "2",
            "--data-repeats",
            "1",
            "--device",
            "cpu",
            "--mirror",
            str(mirror),
        ]
    )

    assert status == 0
    report = json.loads((out / "perf.json").read_text())
    for key in ("cpu", "cores", "torch", "device", "torch_threads"):
        assert report["machine"][key] is not None, key
    assert report["machine"]["device"] == "cpu"
    assert len(report["goals"]) == 3
    paths = [row["path"] for row in report["training"]["rows"]]
    assert paths == ["bare PyTorch loop", "project path (train_model)"]
    assert report["training"]["train_rows"] == 300
    encoders = [row["encoder"] for row in report["encoders"]]
    assert encoders == list(available_encoders())
    assert report["data"]["rows"] > 3000
    modes = [row["mode"] for row in report["seeds"]["rows"]]
    assert modes == ["sequential: vectorized training is off", "vectorized"]
    floor = report["seeds"]["floor"]
    assert floor["gflop"] > 0
    assert floor["sequential_s"] > 0
    assert floor["vectorized_s"] > 0
    markdown = (out / "perf.md").read_text()
    assert "Arithmetic floor: the linear layers need" in markdown
    assert markdown.count("Machine: ") == 5
    assert "| goal | target | measured | met |" in markdown


def test_encoders_time_chosen_names(capsys):
    threads = torch.get_num_threads()
    arguments = ["--only", "none,ple-quantile,soft-bins", "--batch-size", "32"]
    try:
        status = main(["encoders", "--time", *arguments, "--repeats", "3"])
    finally:
        torch.set_num_threads(threads)

    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index("") + 1 :]
    assert [line.split(" | ")[0].strip("| ") for line in table[2:]] == [
        "none",
        "ple-quantile",
        "soft-bins",
    ]
    assert table[3].split(" | ")[3] == "1.00"


def test_encoders_time_prints_settings(capsys):
    threads = torch.get_num_threads()
    arguments = ["--only", "soft-bins", "--batch-size", "8", "--repeats", "2"]
    try:
        status = main(
            ["encoders", "--time", *arguments, "--threads", "1", "--set", "top_k=3"]
        )
    finally:
        torch.set_num_threads(threads)

    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    settings = lines[0]
    assert settings.startswith("Settings: batch size 8, features 8, bins 32 ")
    assert "embedding size 16" in settings
    assert "torch threads 1" in settings
    assert "timed steps 2 per encoder" in settings
    assert settings.endswith("encoder parameters top_k=3.")
    assert lines[1] == ""
    assert lines[2].startswith("| encoder |")


def test_encoders_time_set_sizes_reported(capsys):
    arguments = ["--only", "ple-quantile,autodis", "--batch-size", "8"]
    arguments += ["--repeats", "2", "--set", "n_bins=4", "--set", "d_embedding=8"]

    assert main(["encoders", "--time", *arguments]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Settings: batch size 8, features 8, bins 4 ")
    assert "embedding size 8," in lines[0]
    assert "encoder parameters" not in lines[0]
    # The parameter counts are those of the same sizes given to the function,
    # which sets autodis's meta-embeddings to n_bins as well.
    cells = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines[4:]}
    expected = time_encoders(
        ["ple-quantile", "autodis"], batch_size=8, n_repeats=2, n_bins=4, d_embedding=8
    )
    for row in expected:
        assert cells[row["encoder"]][5] == str(row["d_out"])
        assert cells[row["encoder"]][6].strip(" |") == str(row["n_parameters"])


def test_encoders_time_sets_threads(capsys):
    threads = torch.get_num_threads()
    try:
        status = main(["encoders", "--time", "--only", "none", "--threads", "1"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)

    assert status == 0


@pytest.mark.parametrize("option", ["--batch-size", "--threads"])
def test_encoders_time_rejects_zero(option, caplog):
    status = main(["encoders", "--time", "--only", "none", option, "0"])

    assert status != 0
    assert f"{option} 0 is invalid" in caplog.text


def test_training_flops_counts_linear_layers():
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)
    )
    shapes = linear_shapes(model)

    # Forward 2 * (3 * 4 + 4 * 1) = 32 per row; training 3 * 32 - 2 * 12 = 72.
    assert shapes == [(3, 4), (4, 1)]
    assert training_flops(shapes, train_rows=10, val_rows=5, epochs=2) == 2 * (
        10 * 72 + 5 * 32
    )


def test_encoders_time_sets_parameters(capsys):
    arguments = ["--only", "soft-bins", "--batch-size", "8", "--repeats", "2"]

    assert main(["encoders", "--time", *arguments, "--set", "scores=interval"]) == 0
    assert "| soft-bins |" in capsys.readouterr().out
    assert main(["encoders", "--time", *arguments, "--set", "scores=nope"]) != 0
    assert main(["encoders", "--time", *arguments, "--set", "colour=red"]) != 0
    assert main(["encoders", "--time", *arguments, "--set", "n_bins"]) != 0


def test_parameter_values_parse_numbers():
    values = _parameter_values(["top_k=3", "temperature=0.5", "scores=edges"])
    assert values == {"top_k": 3, "temperature": 0.5, "scores": "edges"}
