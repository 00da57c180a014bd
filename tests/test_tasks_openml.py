"""Loading through openml-python from its on-disk cache, with no server at all.

Each test points openml-python at 127.0.0.1 on a port that is bound but not
listening, so every connection is refused at once, and builds the openml-python
0.15 cache for that server in a temporary folder.
"""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from openml_fixtures import OfflineOpenML
from polars.testing import assert_frame_equal

from tasks import DatasetError, load_dataset
from tasks.mirror import MANIFEST_NAME

MONEYBALL = 41021
MONEYBALL_FILE = "41021_Moneyball.parquet"
MONEYBALL_CATEGORICAL = ("Team", "League")


def require_mirror() -> Path:
    """Return the mirror folder named by BENCH_MIRROR, failing when it is absent."""
    value = os.environ.get("BENCH_MIRROR")
    if not value or not (Path(value) / MANIFEST_NAME).is_file():
        pytest.fail(
            "BENCH_MIRROR must point at the dataset mirror, a folder holding "
            f"{MANIFEST_NAME} and the Parquet files. It is {value!r}."
        )
    return Path(value)


def write_description(folder: Path, openml_id: int, name: str, target: str, base: str):
    """Write description.xml with the fields openml-python 0.15.1 reads."""
    (folder / "description.xml").write_text(
        f"""<oml:data_set_description xmlns:oml="http://openml.org/openml">
  <oml:id>{openml_id}</oml:id>
  <oml:name>{name}</oml:name>
  <oml:version>1</oml:version>
  <oml:description>Offline test copy.</oml:description>
  <oml:format>ARFF</oml:format>
  <oml:upload_date>2018-01-01T00:00:00</oml:upload_date>
  <oml:licence>Public</oml:licence>
  <oml:url>{base}/data/v1/download/{openml_id}/{name}.arff</oml:url>
  <oml:parquet_url>{base}/datasets/{openml_id}/dataset_{openml_id}.pq</oml:parquet_url>
  <oml:default_target_attribute>{target}</oml:default_target_attribute>
  <oml:visibility>public</oml:visibility>
  <oml:status>active</oml:status>
</oml:data_set_description>
""",
        encoding="utf8",
    )


def cache_moneyball(offline: OfflineOpenML, mirror_root: Path) -> Path:
    """Fill the openml-python cache with Moneyball, as a download would leave it."""
    folder = offline.dataset_folder(MONEYBALL)
    folder.mkdir(parents=True)
    frame = pd.read_parquet(mirror_root / MONEYBALL_FILE)
    for column in MONEYBALL_CATEGORICAL:
        frame[column] = frame[column].astype("category")
    frame.to_parquet(folder / f"dataset_{MONEYBALL}.pq")
    write_description(folder, MONEYBALL, "Moneyball", "RS", offline.base_url)
    return folder


def test_openml_cache_loads_offline(offline_openml: OfflineOpenML, tmp_path: Path):
    mirror_root = require_mirror()
    cache_moneyball(offline_openml, mirror_root)
    expected = pl.read_parquet(mirror_root / MONEYBALL_FILE)

    dataset = load_dataset(MONEYBALL, offline_openml.sources(tmp_path / "cache"))

    assert dataset.source == "openml"
    assert dataset.name == "Moneyball"
    assert dataset.target == "RS"
    assert dataset.categorical == MONEYBALL_CATEGORICAL
    for column in MONEYBALL_CATEGORICAL:
        assert dataset.frame.schema[column] == pl.String, column
    assert sorted(dataset.frame.columns) == sorted(expected.columns)
    assert_frame_equal(dataset.frame.select(expected.columns), expected)


def test_openml_load_fills_project_cache(offline_openml: OfflineOpenML, tmp_path: Path):
    cache_moneyball(offline_openml, require_mirror())
    sources = offline_openml.sources(tmp_path / "cache")

    first = load_dataset(MONEYBALL, sources)
    second = load_dataset(MONEYBALL, sources)

    assert (tmp_path / "cache" / f"{MONEYBALL}.parquet").is_file()
    assert first.source == "openml"
    assert second.source == "cache"
    assert second.categorical == first.categorical
    assert_frame_equal(second.frame, first.frame)


def test_openml_target_override_used(offline_openml: OfflineOpenML, tmp_path: Path):
    cache_moneyball(offline_openml, require_mirror())

    dataset = load_dataset(
        MONEYBALL, offline_openml.sources(tmp_path / "cache"), target="W"
    )

    assert dataset.source == "openml"
    assert dataset.target == "W"
    assert "RS" in dataset.features
    assert dataset.categorical == MONEYBALL_CATEGORICAL


def test_openml_unknown_target_rejected(offline_openml: OfflineOpenML, tmp_path: Path):
    cache_moneyball(offline_openml, require_mirror())

    with pytest.raises(DatasetError) as raised:
        load_dataset(
            MONEYBALL, offline_openml.sources(tmp_path / "cache"), target="Runs"
        )

    assert str(MONEYBALL) in str(raised.value)
    assert "'Runs'" in str(raised.value)


def test_openml_categorical_target_rejected(
    offline_openml: OfflineOpenML, tmp_path: Path
):
    cache_moneyball(offline_openml, require_mirror())

    with pytest.raises(DatasetError) as raised:
        load_dataset(
            MONEYBALL, offline_openml.sources(tmp_path / "cache"), target="League"
        )

    assert str(MONEYBALL) in str(raised.value)
    assert "'League'" in str(raised.value)
    assert "categorical" in str(raised.value)


def test_openml_uncached_unreachable_fails_fast(
    offline_openml: OfflineOpenML, tmp_path: Path
):
    started = time.monotonic()
    with pytest.raises(DatasetError) as raised:
        load_dataset(507, offline_openml.sources(tmp_path / "cache"))
    elapsed = time.monotonic() - started

    message = str(raised.value)
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert "507" in message
    assert "--mirror" in message
    assert "BENCH_MIRROR" in message
    assert "fill the cache" in message
    assert offline_openml.base_url in message


@pytest.mark.parametrize("file_name", [f"dataset_{MONEYBALL}.pq", "description.xml"])
def test_openml_empty_cached_file_rejected(
    offline_openml: OfflineOpenML, tmp_path: Path, file_name: str
):
    folder = cache_moneyball(offline_openml, require_mirror())
    (folder / file_name).write_bytes(b"")

    started = time.monotonic()
    with pytest.raises(DatasetError) as raised:
        load_dataset(MONEYBALL, offline_openml.sources(tmp_path / "cache"))
    elapsed = time.monotonic() - started

    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert str(MONEYBALL) in str(raised.value)
    assert str(folder / file_name) in str(raised.value)
    assert folder.is_dir()
    assert (folder / file_name).is_file()


@pytest.mark.parametrize(
    "content",
    [b"not xml <", b"<oml:other xmlns:oml='http://openml.org/openml'/>"],
    ids=["invalid-xml", "wrong-root"],
)
def test_openml_broken_description_rejected(
    offline_openml: OfflineOpenML, tmp_path: Path, content: bytes
):
    folder = cache_moneyball(offline_openml, require_mirror())
    description = folder / "description.xml"
    description.write_bytes(content)

    started = time.monotonic()
    with pytest.raises(DatasetError) as raised:
        load_dataset(MONEYBALL, offline_openml.sources(tmp_path / "cache"))
    elapsed = time.monotonic() - started

    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert str(MONEYBALL) in str(raised.value)
    assert str(description) in str(raised.value)
    assert (folder / f"dataset_{MONEYBALL}.pq").is_file()


def test_openml_unreadable_parquet_rejected(
    offline_openml: OfflineOpenML, tmp_path: Path
):
    folder = cache_moneyball(offline_openml, require_mirror())
    data_file = folder / f"dataset_{MONEYBALL}.pq"
    data_file.write_bytes(b"not a parquet file")

    with pytest.raises(DatasetError) as raised:
        load_dataset(MONEYBALL, offline_openml.sources(tmp_path / "cache"))

    assert str(MONEYBALL) in str(raised.value)
    assert str(data_file) in str(raised.value)
    assert folder.is_dir()


def test_openml_cache_left_byte_identical(
    offline_openml: OfflineOpenML, tmp_path: Path
):
    folder = cache_moneyball(offline_openml, require_mirror())
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    dataset = load_dataset(MONEYBALL, offline_openml.sources(tmp_path / "cache"))

    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert dataset.source == "openml"
    assert after == before
    assert not list(folder.parent.parent.rglob("*.pkl*"))


class _Tripwire:
    """Unpickling this creates the file at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_openml_cache_pickles_never_loaded(
    offline_openml: OfflineOpenML, tmp_path: Path
):
    folder = cache_moneyball(offline_openml, require_mirror())
    marker = tmp_path / "unpickled"
    for name in (f"dataset_{MONEYBALL}.pkl.py3", "features.pkl", "qualities.pkl"):
        (folder / name).write_bytes(pickle.dumps(_Tripwire(marker)))

    dataset = load_dataset(MONEYBALL, offline_openml.sources(tmp_path / "cache"))

    assert dataset.target == "RS"
    assert not marker.exists()
