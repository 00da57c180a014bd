"""Odd inputs with exact expected values: each gets a clear policy or error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from openml_fixtures import OfflineOpenML

from bench.model import Regressor
from encoders.soft_bins import SoftBinsEncoder
from tasks import Dataset, DatasetError, Preprocessor, load_dataset


def write_arff_description(folder: Path, openml_id: int, target: str, fmt: str):
    """Write description.xml for an ARFF-only dataset (no Parquet URL)."""
    target_line = (
        f"<oml:default_target_attribute>{target}</oml:default_target_attribute>"
        if target
        else ""
    )
    (folder / "description.xml").write_text(
        f"""<oml:data_set_description xmlns:oml="http://openml.org/openml">
  <oml:id>{openml_id}</oml:id>
  <oml:name>case_{openml_id}</oml:name>
  <oml:version>1</oml:version>
  <oml:format>{fmt}</oml:format>
  <oml:upload_date>2018-01-01T00:00:00</oml:upload_date>
  <oml:url>http://127.0.0.1:9/data/{openml_id}.arff</oml:url>
  {target_line}
  <oml:status>active</oml:status>
</oml:data_set_description>
""",
        encoding="utf8",
    )


def sparse_arff() -> str:
    """100 rows by 50 features; row i has value i + 1 at column i mod 50, y = i."""
    header = ["@RELATION sparse_case"]
    header += [f"@ATTRIBUTE f{j} NUMERIC" for j in range(50)]
    header += ["@ATTRIBUTE y NUMERIC", "@DATA"]
    rows = []
    for i in range(100):
        cells = [f"{i % 50} {i + 1}"]
        if i:
            cells.append(f"50 {i}")
        rows.append("{" + ", ".join(cells) + "}")
    return "\n".join(header + rows) + "\n"


def dense_arff() -> str:
    header = [
        "@RELATION dense_case",
        "@ATTRIBUTE a NUMERIC",
        "@ATTRIBUTE b NUMERIC",
        "@ATTRIBUTE c NUMERIC",
        "@DATA",
    ]
    return "\n".join(header + [f"{i},{2 * i},{i % 3}" for i in range(20)]) + "\n"


def test_sparse_arff_is_densified(offline_openml: OfflineOpenML, tmp_path: Path):
    folder = offline_openml.dataset_folder(90001)
    folder.mkdir(parents=True)
    (folder / "dataset.arff").write_text(sparse_arff())
    write_arff_description(folder, 90001, "y", "Sparse_ARFF")

    dataset = load_dataset(90001, offline_openml.sources(tmp_path / "cache"))

    features = dataset.frame.select(dataset.features)
    assert features.shape == (100, 50)
    assert features.to_numpy().sum() == 5050
    assert dataset.frame["y"].sum() == 4950
    assert dataset.frame["y"].dtype.is_numeric()


@pytest.mark.parametrize("target", ["", "a,b"])
def test_unclear_default_target_rejected(
    offline_openml: OfflineOpenML, tmp_path: Path, target: str
):
    folder = offline_openml.dataset_folder(90002)
    folder.mkdir(parents=True)
    (folder / "dataset.arff").write_text(dense_arff())
    write_arff_description(folder, 90002, target, "ARFF")

    with pytest.raises(DatasetError) as raised:
        load_dataset(90002, offline_openml.sources(tmp_path / "cache"))

    message = str(raised.value)
    assert "90002" in message
    assert "Set `target`" in message
    assert "suite file" in message


def test_constant_columns_named_and_dropped():
    i = np.arange(200)
    frame = pl.DataFrame(
        {
            "x1": np.linspace(0, 1, 200),
            "x2": (i % 7).astype(float),
            "x3": np.full(200, 7.0),
            "x4": (i >= 160).astype(float),
            "y": 3 * np.linspace(0, 1, 200) + i % 7,
        }
    )
    train = frame[:160]

    pre = Preprocessor(["x1", "x2", "x3", "x4"], [], "y").fit(train)

    assert pre.report.dropped_constant == ["x3", "x4"]
    assert pre.numeric_kept == ["x1", "x2"]
    assert pre.transform(frame).x_num.shape == (200, 2)


def test_null_nan_and_inf_reported():
    i = np.arange(100)
    x5 = [None if r < 10 else (float("nan") if r < 20 else float(r)) for r in i]
    x6 = [float("inf") if r == 50 else float(r % 9) for r in i]
    frame = pl.DataFrame(
        {"x5": x5, "x6": x6, "y": i * 1.0},
        schema={"x5": pl.Float64, "x6": pl.Float64, "y": pl.Float64},
    )
    assert frame["x5"].null_count() == 10
    assert frame["x5"].is_nan().sum() == 10

    pre = Preprocessor(["x5", "x6"], [], "y").fit(frame)
    arrays = pre.transform(frame)

    assert pre.report.missing_counts == {"x5": 20}
    assert pre.report.nonfinite_counts == {"x6": 1}
    assert np.isfinite(arrays.x_num).all()

    encoder = SoftBinsEncoder(n_bins=8)
    encoder.fit(torch.from_numpy(arrays.x_num))
    edges = torch.cat(encoder.state["bins"])
    assert torch.isfinite(edges).all()


def test_float64_cast_once_to_float32():
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {"a": rng.normal(size=64), "b": rng.normal(size=64), "y": rng.normal(size=64)}
    )
    assert frame.schema["a"] == pl.Float64

    arrays = Preprocessor(["a", "b"], [], "y").fit(frame).transform(frame)
    assert arrays.x_num.dtype == np.float32
    assert arrays.y.dtype == np.float32

    encoder = SoftBinsEncoder(n_bins=8)
    encoder.fit(torch.from_numpy(arrays.x_num))
    model = Regressor(encoder.build(2), d_cat=0, n_blocks=1, d_block=8, dropout=0.0)
    model = model.to("cpu")
    assert all(b.device.type == "cpu" for b in model.buffers())
    prediction = model(torch.from_numpy(arrays.x_num), torch.zeros(64, 0))
    assert prediction.dtype == torch.float32


def test_real_target_stays_float():
    frame = pl.DataFrame({"x": np.arange(100) * 1.0, "y": np.arange(100) / 4})
    dataset = Dataset(90003, "quarters", "y", frame, (), "mirror")
    dataset.validate()

    assert dataset.frame["y"].dtype == pl.Float64
    assert dataset.frame["y"].sum() == 1237.5
    assert dataset.frame["y"].n_unique() == 100


@pytest.mark.parametrize("dtype", [pl.String, pl.Categorical])
def test_string_target_rejected(dtype):
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "a"]}).with_columns(
        pl.col("y").cast(dtype)
    )
    dataset = Dataset(90004, "labels", "y", frame, (), "mirror")

    with pytest.raises(DatasetError) as raised:
        dataset.validate()

    message = str(raised.value)
    assert "OpenML dataset 90004" in message
    assert str(frame.schema["y"]) in message
    assert "not numeric" in message
