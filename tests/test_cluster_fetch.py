"""`bench fetch` on a login node, then offline compute nodes read the cache."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from bench.cli import main
from tasks import DataSources, load_dataset
from tasks.mirror import Mirror


def test_fetch_fills_cache_and_mirror(tmp_path: Path, mirror: Path):
    cache = tmp_path / "cache"
    out = tmp_path / "mirror"

    code = main(
        [
            "fetch",
            "--suite",
            "demo",
            "--datasets",
            "41021,688",
            "--mirror",
            str(mirror),
            "--cache",
            str(cache),
            "--out",
            str(out),
        ]
    )

    assert code == 0
    assert (cache / "41021.parquet").is_file()
    assert (cache / "688.parquet").is_file()
    written = Mirror(out)
    assert sorted(written.entries) == [688, 41021]
    copy = written.load(688)
    original = Mirror(mirror).load(688)
    assert copy.target == original.target
    assert copy.categorical == original.categorical
    assert copy.frame.equals(original.frame)


def test_fetch_keeps_earlier_mirror_entries(tmp_path: Path, mirror: Path):
    out = tmp_path / "mirror"
    for dataset in ("41021", "507"):
        assert (
            main(
                [
                    "fetch",
                    "--datasets",
                    dataset,
                    "--mirror",
                    str(mirror),
                    "--cache",
                    str(tmp_path / "cache"),
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    assert sorted(Mirror(out).entries) == [507, 41021]


def test_offline_node_reads_fetched_cache(tmp_path: Path, mirror: Path, monkeypatch):
    cache = tmp_path / "cache"
    assert (
        main(
            [
                "fetch",
                "--datasets",
                "507",
                "--mirror",
                str(mirror),
                "--cache",
                str(cache),
            ]
        )
        == 0
    )
    monkeypatch.delenv("BENCH_MIRROR", raising=False)

    dataset = load_dataset(507, DataSources(cache_dir=cache, offline=True))

    assert dataset.source == "cache"
    expected = pl.read_parquet(next(mirror.glob("507_*.parquet")))
    assert dataset.frame.height == expected.height


def test_offline_run_without_data_fails_fast(tmp_path: Path, monkeypatch, caplog):
    monkeypatch.delenv("BENCH_MIRROR", raising=False)
    started = time.monotonic()

    code = main(
        [
            "run",
            "--results",
            str(tmp_path / "results"),
            "--cache",
            str(tmp_path / "empty-cache"),
            "--datasets",
            "507",
            "--encoders",
            "none",
            "--offline",
            "--device",
            "cpu",
            "--no-report",
        ]
    )

    assert code != 0
    assert time.monotonic() - started < 60
    assert "OpenML dataset 507" in caplog.text
    assert "offline" in caplog.text


def test_fetch_rejects_unknown_dataset(tmp_path: Path, mirror: Path, caplog):
    code = main(["fetch", "--datasets", "1", "--mirror", str(mirror)])
    assert code == 2
    assert "--datasets 1" in caplog.text
