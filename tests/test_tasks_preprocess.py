"""Preprocessing: statistics come from training rows only."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks import Preprocessor, make_split
from tasks.mirror import MANIFEST_NAME
from tasks.preprocess import MISSING_CATEGORY

MONEYBALL_FILE = "41021_Moneyball.parquet"
MONEYBALL_CATEGORICAL = ["Team", "League"]
MONEYBALL_TARGET = "RS"


def require_mirror() -> Path:
    """Return the mirror folder named by BENCH_MIRROR, failing when it is absent."""
    value = os.environ.get("BENCH_MIRROR")
    if not value or not (Path(value) / MANIFEST_NAME).is_file():
        pytest.fail(
            "BENCH_MIRROR must point at the dataset mirror, a folder holding "
            f"{MANIFEST_NAME} and the Parquet files. It is {value!r}."
        )
    return Path(value)


@pytest.fixture
def moneyball() -> pl.DataFrame:
    return pl.read_parquet(require_mirror() / MONEYBALL_FILE)


def moneyball_preprocessor(frame: pl.DataFrame, transform: str) -> Preprocessor:
    numeric = [
        c
        for c in frame.columns
        if c != MONEYBALL_TARGET and c not in MONEYBALL_CATEGORICAL
    ]
    return Preprocessor(
        numeric, MONEYBALL_CATEGORICAL, MONEYBALL_TARGET, numeric_transform=transform
    )


def fitted_state(preprocessor: Preprocessor) -> dict:
    """Copy every statistic that a fitted Preprocessor stores."""
    quantiles = preprocessor.quantiles
    return {
        "medians": preprocessor.medians.copy(),
        "indicator": preprocessor.indicator.copy(),
        "keep": preprocessor.keep.copy(),
        "mean": preprocessor.mean.copy(),
        "std": preprocessor.std.copy(),
        "quantiles": None if quantiles is None else quantiles.quantiles_.copy(),
        "category_levels": {
            k: list(v) for k, v in preprocessor.category_levels.items()
        },
        "y_mean": preprocessor.y_mean,
        "y_std": preprocessor.y_std,
        "report": dataclasses.asdict(preprocessor.report),
    }


def assert_same_state(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(actual[key], value, err_msg=key)
        else:
            assert actual[key] == value, key


def tamper_rows(frame: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """Replace every value in ``rows`` with something far from the real data."""
    chosen = pl.int_range(pl.len()).is_in(rows.tolist())
    replacements = []
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            new = pl.lit("never-seen-team")
        else:
            new = pl.col(name).cast(pl.Float64) * -1000.0 + 12345.0
        replacements.append(
            pl.when(chosen).then(new).otherwise(pl.col(name)).cast(dtype).alias(name)
        )
    return frame.with_columns(replacements)


@pytest.mark.parametrize("transform", ["quantile-normal", "standard"])
def test_fit_ignores_evaluation_rows(moneyball: pl.DataFrame, transform: str):
    split = make_split(moneyball.height, seed=0, val_fraction=0.16, test_fraction=0.2)
    evaluation = np.concatenate([split.val, split.test])
    tampered = tamper_rows(moneyball, evaluation)
    assert not tampered[evaluation].equals(moneyball[evaluation])
    assert tampered[split.train].equals(moneyball[split.train])

    original = moneyball_preprocessor(moneyball, transform).fit(moneyball[split.train])
    state = fitted_state(original)
    other = moneyball_preprocessor(tampered, transform).fit(tampered[split.train])

    assert_same_state(fitted_state(other), state)

    original.transform(tampered[split.val])
    original.transform(tampered[split.test])
    assert_same_state(fitted_state(original), state)


def test_fit_statistics_from_train_rows(moneyball: pl.DataFrame):
    split = make_split(moneyball.height, seed=0, val_fraction=0.16, test_fraction=0.2)
    train = moneyball[split.train]

    fitted = moneyball_preprocessor(moneyball, "standard").fit(train)

    target = train[MONEYBALL_TARGET].cast(pl.Float64).to_numpy()
    assert fitted.y_mean == pytest.approx(target.mean())
    assert fitted.y_std == pytest.approx(target.std())
    oobp = fitted.numeric.index("OOBP")
    assert fitted.medians[oobp] == pytest.approx(train["OOBP"].median())
    assert fitted.report.missing_counts["OOBP"] == train["OOBP"].null_count()
    assert fitted.category_levels["Team"] == sorted(train["Team"].unique())
    everything = moneyball[MONEYBALL_TARGET].cast(pl.Float64).to_numpy()
    assert fitted.y_mean != pytest.approx(everything.mean(), rel=1e-9, abs=0)


def test_moneyball_arrays_finite_and_shaped(moneyball: pl.DataFrame):
    split = make_split(moneyball.height, seed=0, val_fraction=0.16, test_fraction=0.2)
    fitted = moneyball_preprocessor(moneyball, "quantile-normal").fit(
        moneyball[split.train]
    )

    out = fitted.transform(moneyball[split.test])

    n_levels = sum(fitted.report.categories.values())
    n_indicators = int(fitted.indicator.sum())
    assert n_indicators == 4
    assert out.x_num.shape == (len(split.test), len(fitted.numeric_kept))
    assert out.x_cat.shape == (len(split.test), n_indicators + n_levels)
    assert out.x_num.dtype == np.float32
    assert np.isfinite(out.x_num).all()
    assert np.isfinite(out.x_cat).all()
    assert np.isfinite(out.y).all()


def ramp_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Train rows with x = y = 0..99 and test rows with x = y = 1000..1099."""
    train = pl.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0)})
    test = pl.DataFrame(
        {"x": np.arange(1000.0, 1100.0), "y": np.arange(1000.0, 1100.0)}
    )
    return train, test


def test_standard_uses_train_statistics():
    train, test = ramp_frames()

    fitted = Preprocessor(["x"], [], "y", numeric_transform="standard").fit(train)
    out = fitted.transform(test)

    assert fitted.mean[0] == pytest.approx(49.5)
    assert fitted.y_mean == pytest.approx(49.5)
    assert fitted.y_std == pytest.approx(np.arange(100.0).std())
    expected = (np.arange(1000.0, 1100.0) - 49.5) / np.arange(100.0).std()
    np.testing.assert_allclose(out.x_num[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(out.y, expected, rtol=1e-6)


@pytest.mark.parametrize("seed", range(10))
def test_quantile_caps_at_train_maximum(seed: int):
    train, test = ramp_frames()

    fitted = Preprocessor(
        ["x"], [], "y", numeric_transform="quantile-normal", seed=seed
    ).fit(train)
    train_x = fitted.transform(train).x_num[:, 0]
    test_x = fitted.transform(test).x_num[:, 0]

    assert train_x[-1] == train_x.max()
    assert np.all(test_x == train_x[-1])
    assert fitted.y_mean == pytest.approx(49.5)


def test_quantile_keeps_train_values_monotone():
    rng = np.random.default_rng(0)
    values = np.sort(rng.lognormal(size=600))
    frame = pl.DataFrame({"x": values, "y": values})

    fitted = Preprocessor(["x"], [], "y", numeric_transform="quantile-normal")
    out = fitted.fit(frame).transform(frame).x_num[:, 0]

    assert np.all(np.diff(out) >= 0)
    assert out[0] < -2
    assert out[-1] > 2


def gappy_frame() -> pl.DataFrame:
    """Eight training rows: 'gaps' has one null and one NaN, 'spiky' one +inf."""
    return pl.DataFrame(
        {
            "gaps": pl.Series([1.0, None, 3.0, math.nan, 5.0, 7.0, 2.0, 4.0]),
            "spiky": [0.0, 1.0, math.inf, 3.0, 4.0, 5.0, 6.0, 7.0],
            "flat": [3.0] * 8,
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        }
    )


def test_missing_values_imputed_from_train():
    train = gappy_frame()
    assert train["gaps"].null_count() == 1
    assert train["gaps"].is_nan().sum() == 1

    fitted = Preprocessor(
        ["gaps", "spiky", "flat"], [], "y", numeric_transform="none"
    ).fit(train)
    out = fitted.transform(train)

    assert fitted.report.missing_counts == {"gaps": 2}
    assert fitted.medians[0] == pytest.approx(3.5)
    assert out.x_num[1, 0] == pytest.approx(3.5)
    assert out.x_num[3, 0] == pytest.approx(3.5)
    # One indicator column for 'gaps' and one for 'spiky', whose +inf is missing.
    np.testing.assert_array_equal(out.x_cat[:, 0], [0, 1, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(out.x_cat[:, 1], [0, 0, 1, 0, 0, 0, 0, 0])
    assert out.x_cat.shape == (8, 2)


def test_missing_test_values_use_train_median():
    fitted = Preprocessor(["gaps"], [], "y", numeric_transform="none").fit(
        gappy_frame()
    )
    test = pl.DataFrame({"gaps": pl.Series([None, 100.0, math.nan]), "y": [0.0] * 3})

    out = fitted.transform(test)

    np.testing.assert_allclose(out.x_num[:, 0], [3.5, 100.0, 3.5])
    np.testing.assert_array_equal(out.x_cat[:, 0], [1, 0, 1])


@pytest.mark.parametrize("transform", ["quantile-normal", "standard", "none"])
def test_infinity_counted_and_replaced(transform: str):
    fitted = Preprocessor(["gaps", "spiky"], [], "y", numeric_transform=transform).fit(
        gappy_frame()
    )
    test = pl.DataFrame(
        {
            "gaps": [math.inf, -math.inf, 2.0],
            "spiky": [-math.inf, math.nan, math.inf],
            "y": [1.0, 2.0, 3.0],
        }
    )

    train_out = fitted.transform(gappy_frame())
    test_out = fitted.transform(test)

    assert fitted.report.nonfinite_counts == {"spiky": 1}
    assert np.isfinite(train_out.x_num).all()
    assert np.isfinite(test_out.x_num).all()


def test_constant_column_dropped_and_named():
    test = gappy_frame().with_columns(pl.Series("flat", np.arange(8.0)))

    fitted = Preprocessor(
        ["gaps", "spiky", "flat"], [], "y", numeric_transform="standard"
    ).fit(gappy_frame())

    assert fitted.report.dropped_constant == ["flat"]
    assert fitted.numeric_kept == ["gaps", "spiky"]
    assert fitted.transform(test).x_num.shape == (8, 2)


def test_refit_replaces_report():
    fitted = Preprocessor(["gaps", "spiky", "flat"], [], "y").fit(gappy_frame())
    clean = pl.DataFrame(
        {
            "gaps": np.arange(8.0),
            "spiky": np.arange(8.0) ** 2,
            "flat": np.arange(8.0) % 3,
            "y": np.arange(8.0),
        }
    )

    fitted.fit(clean)

    assert fitted.report.missing_counts == {}
    assert fitted.report.nonfinite_counts == {}
    assert fitted.report.dropped_constant == []
    assert fitted.transform(clean).x_cat.shape == (8, 0)


def test_unseen_category_encodes_zeros():
    train = pl.DataFrame(
        {
            "colour": ["red", "green", None, "red"],
            "size": [1.0, 2.0, 3.0, 4.0],
            "y": [1.0, 2.0, 3.0, 4.0],
        }
    )
    test = pl.DataFrame(
        {
            "colour": ["blue", "red", None, "green"],
            "size": [1.0, 2.0, 3.0, 4.0],
            "y": [0.0, 0.0, 0.0, 0.0],
        }
    )

    fitted = Preprocessor(["size"], ["colour"], "y").fit(train)
    x_cat = fitted.transform(test).x_cat

    assert fitted.category_levels["colour"] == [MISSING_CATEGORY, "green", "red"]
    assert fitted.report.categories == {"colour": 3}
    np.testing.assert_array_equal(x_cat, [[0, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]])


@pytest.mark.parametrize("transform", ["quantile-normal", "standard", "none"])
def test_inverse_target_roundtrips(moneyball: pl.DataFrame, transform: str):
    split = make_split(moneyball.height, seed=1, val_fraction=0.16, test_fraction=0.2)
    fitted = moneyball_preprocessor(moneyball, transform).fit(moneyball[split.train])
    test = moneyball[split.test]

    restored = fitted.inverse_target(fitted.transform(test).y)

    expected = test[MONEYBALL_TARGET].cast(pl.Float64).to_numpy()
    np.testing.assert_allclose(restored, expected, rtol=1e-5)


def test_invalid_numeric_transform_rejected():
    with pytest.raises(ValueError, match="numeric_transform='minmax'"):
        Preprocessor(["x"], [], "y", numeric_transform="minmax")
