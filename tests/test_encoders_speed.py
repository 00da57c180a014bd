"""The encoder speed comparison: rows, reference ratio, and input checks."""

from __future__ import annotations

import pytest

from encoders import EncoderError, speed
from encoders.speed import format_rows, format_settings, time_encoders

KEYS = {
    "encoder",
    "median_ms",
    "p90_ms",
    "ratio_to_reference",
    "backward",
    "d_out",
    "n_parameters",
    "bins",
    "device",
    "threads",
}


def test_rows_for_requested_encoders():
    names = ["ple-quantile", "soft-bins", "onehot-bins", "autodis"]

    rows = time_encoders(names, n_warmup=1, n_repeats=3, n_train=512)

    assert [row["encoder"] for row in rows] == names
    for row in rows:
        assert set(row) == KEYS
        assert row["median_ms"] > 0
        assert row["device"] == "cpu"
    by_name = {row["encoder"]: row for row in rows}
    assert by_name["ple-quantile"]["ratio_to_reference"] == 1.0
    assert by_name["soft-bins"]["bins"] == 32
    assert by_name["autodis"]["bins"] == 32
    assert by_name["soft-bins"]["backward"] is True
    assert by_name["onehot-bins"]["backward"] is False
    assert by_name["soft-bins"]["d_out"] == by_name["ple-quantile"]["d_out"] == 128
    assert "| soft-bins |" in format_rows(rows)


def test_missing_reference_gives_no_ratio():
    rows = time_encoders(["linear"], n_warmup=0, n_repeats=2, n_train=64)

    assert rows[0]["ratio_to_reference"] is None


def test_unknown_encoder_raises():
    with pytest.raises(EncoderError, match="no-such-encoder"):
        time_encoders(["no-such-encoder"])


def test_too_few_repeats_raise():
    with pytest.raises(ValueError, match="n_repeats=1"):
        time_encoders(["linear"], n_repeats=1)


def test_settings_line_defaults():
    line = format_settings(batch_size=256, n_repeats=100, threads=4)

    assert line == (
        "Settings: batch size 256, features 8, bins 32 (meta-embeddings for "
        "autodis), embedding size 16, torch threads 4, timed steps 100 per encoder "
        "after 10 warm-up steps."
    )


def test_settings_line_lists_parameters():
    params = {"scores": "interval", "top_k": 3}

    line = format_settings(batch_size=8, n_repeats=2, threads=1, params=params)

    assert line.endswith(", encoder parameters scores=interval, top_k=3.")


@pytest.mark.parametrize(("busy", "warned"), [(20, False), (30, True)])
def test_busy_cpu_warned(monkeypatch, caplog, busy, warned):
    """100 ticks pass during the check, ``busy`` of them not idle."""
    samples = iter([(0, 1000), (100 - busy, 1100)])
    monkeypatch.setattr(speed, "_cpu_times", lambda: next(samples))

    with caplog.at_level("WARNING", logger="encoders.speed"):
        share = speed.warn_if_busy(interval_s=0)

    assert share == pytest.approx(busy / 100)
    assert ("Other processes kept" in caplog.text) is warned


def test_cpu_times_read_from_proc():
    idle, total = speed._cpu_times()

    assert 0 <= idle <= total
