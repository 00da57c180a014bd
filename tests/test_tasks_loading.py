"""Loading datasets from the mirror folder and the project's Parquet cache."""

from __future__ import annotations

import functools
import os
import shutil
import tomllib
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tasks import DatasetError, DataSources, load_dataset
from tasks.cache import TableCache
from tasks.mirror import MANIFEST_NAME

MONEYBALL = 41021


def require_mirror() -> Path:
    """Return the mirror folder named by BENCH_MIRROR, failing when it is absent."""
    value = os.environ.get("BENCH_MIRROR")
    if not value or not (Path(value) / MANIFEST_NAME).is_file():
        pytest.fail(
            "BENCH_MIRROR must point at the dataset mirror, a folder holding "
            f"{MANIFEST_NAME} and the Parquet files. It is {value!r}."
        )
    return Path(value)


@functools.cache
def read_manifest(mirror_root: Path) -> dict[int, dict]:
    with (mirror_root / MANIFEST_NAME).open("rb") as handle:
        document = tomllib.load(handle)
    return {entry["openml_dataset_id"]: entry for entry in document["dataset"]}


@pytest.fixture
def mirror_root() -> Path:
    return require_mirror()


def copy_mirror(mirror_root: Path, destination: Path, ids: list[int]) -> Path:
    """Copy some datasets and their own [[dataset]] tables into a new mirror."""
    destination.mkdir()
    text = (mirror_root / MANIFEST_NAME).read_text()
    header, *tables = text.split("\n[[dataset]]\n")
    kept = []
    for table in tables:
        entry = tomllib.loads(table)
        if entry["openml_dataset_id"] in ids:
            kept.append(table)
            shutil.copyfile(mirror_root / entry["file"], destination / entry["file"])
    assert len(kept) == len(ids), f"ids {ids} are not all in the mirror"
    manifest = "\n[[dataset]]\n".join([header, *kept])
    (destination / MANIFEST_NAME).write_text(manifest)
    return destination


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("openml_id", [507, MONEYBALL])
def test_mirror_load_matches_manifest(tmp_path: Path, openml_id: int):
    # The mirror is looked up here, not in a fixture, so a missing mirror
    # shows as a failed test instead of a setup error.
    mirror_root = require_mirror()
    entry = read_manifest(mirror_root)[openml_id]
    sources = DataSources(cache_dir=tmp_path / "cache", mirror=mirror_root)

    dataset = load_dataset(openml_id, sources)

    assert dataset.source == "mirror"
    assert dataset.openml_id == openml_id
    assert dataset.name == entry["name"]
    assert dataset.frame.height == entry["n_rows"]
    assert dataset.target == entry["target"]
    assert len(dataset.features) == entry["n_features"]
    assert dataset.categorical == tuple(entry["categorical_features"])
    assert len(dataset.numeric) == entry["n_numeric_features"]
    for column in dataset.categorical:
        assert dataset.frame.schema[column] == pl.String, column
    nulls = dataset.frame.null_count().row(0)
    assert sum(nulls) == entry["n_missing_values"]


@pytest.mark.parametrize("openml_id", [507, MONEYBALL])
def test_second_load_reads_cache(mirror_root: Path, tmp_path: Path, openml_id: int):
    cache_dir = tmp_path / "cache"
    first = load_dataset(
        openml_id, DataSources(cache_dir=cache_dir, mirror=mirror_root)
    )

    assert (cache_dir / f"{openml_id}.parquet").is_file()
    assert (cache_dir / f"{openml_id}.json").is_file()
    assert sorted(p.name for p in cache_dir.iterdir()) == [
        f"{openml_id}.json",
        f"{openml_id}.parquet",
    ]

    # No mirror and offline: only the cache can serve this load.
    second = load_dataset(
        openml_id, DataSources(cache_dir=cache_dir, mirror=None, offline=True)
    )
    assert second.source == "cache"
    assert second.name == first.name
    assert second.target == first.target
    assert second.categorical == first.categorical
    assert_frame_equal(second.frame, first.frame)
    n_missing = read_manifest(mirror_root)[openml_id]["n_missing_values"]
    assert sum(second.frame.null_count().row(0)) == n_missing


def test_moneyball_nulls_survive_loading(mirror_root: Path, tmp_path: Path):
    expected = pl.read_parquet(mirror_root / "41021_Moneyball.parquet")
    sources = DataSources(cache_dir=tmp_path / "cache", mirror=mirror_root)

    for _ in range(2):
        frame = load_dataset(MONEYBALL, sources).frame
        assert frame["RankSeason"].null_count() == 988
        assert frame["OOBP"].null_count() == 812
        assert frame["OOBP"].is_nan().sum() == 0
        assert_frame_equal(frame, expected)


def test_target_override_keeps_cached_default(mirror_root: Path, tmp_path: Path):
    sources = DataSources(cache_dir=tmp_path / "cache", mirror=mirror_root)

    overridden = load_dataset(MONEYBALL, sources, target="W")
    default = load_dataset(MONEYBALL, sources)

    assert overridden.target == "W"
    assert "RS" in overridden.features
    assert default.target == "RS"


def test_non_numeric_target_rejected(mirror_root: Path, tmp_path: Path):
    sources = DataSources(cache_dir=tmp_path / "cache", mirror=mirror_root)

    with pytest.raises(DatasetError) as raised:
        load_dataset(MONEYBALL, sources, target="Team")

    assert "41021" in str(raised.value)
    assert "'Team'" in str(raised.value)


def test_mirror_copy_loads_untampered(mirror_root: Path, tmp_path: Path):
    copy = copy_mirror(mirror_root, tmp_path / "mirror", [MONEYBALL, 507])
    sources = DataSources(cache_dir=tmp_path / "cache", mirror=copy)

    assert load_dataset(MONEYBALL, sources).source == "mirror"
    assert load_dataset(507, sources).source == "mirror"


def test_mirror_flipped_byte_rejected(mirror_root: Path, tmp_path: Path):
    copy = copy_mirror(mirror_root, tmp_path / "mirror", [MONEYBALL])
    data_file = copy / "41021_Moneyball.parquet"
    flip_byte(data_file)
    cache_dir = tmp_path / "cache"

    with pytest.raises(DatasetError) as raised:
        load_dataset(MONEYBALL, DataSources(cache_dir=cache_dir, mirror=copy))

    message = str(raised.value)
    assert "41021" in message
    assert str(data_file) in message
    assert "checksum mismatch" in message
    assert not (cache_dir / "41021.parquet").exists()


def test_manifest_checksum_change_rejected(mirror_root: Path, tmp_path: Path):
    copy = copy_mirror(mirror_root, tmp_path / "mirror", [MONEYBALL])
    manifest_path = copy / MANIFEST_NAME
    real_sha = tomllib.loads(manifest_path.read_text())["dataset"][0]["sha256"]
    wrong_sha = ("0" if real_sha[0] != "0" else "1") + real_sha[1:]
    manifest_path.write_text(manifest_path.read_text().replace(real_sha, wrong_sha))

    with pytest.raises(DatasetError) as raised:
        load_dataset(MONEYBALL, DataSources(cache_dir=tmp_path / "cache", mirror=copy))

    message = str(raised.value)
    assert "41021" in message
    assert str(copy / "41021_Moneyball.parquet") in message
    assert wrong_sha in message


def test_cache_flipped_byte_rejected(mirror_root: Path, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    sources = DataSources(cache_dir=cache_dir, mirror=mirror_root)
    load_dataset(MONEYBALL, sources)
    table = cache_dir / "41021.parquet"
    flip_byte(table)

    with pytest.raises(DatasetError) as raised:
        load_dataset(MONEYBALL, sources)

    message = str(raised.value)
    assert "41021" in message
    assert str(table) in message
    assert "checksum mismatch" in message


@pytest.mark.parametrize(
    "sidecar_text",
    ["{not json", '{"name": "Moneyball"}', "[]"],
    ids=["invalid-json", "missing-keys", "not-an-object"],
)
def test_cache_damaged_sidecar_rejected(
    mirror_root: Path, tmp_path: Path, sidecar_text: str
):
    cache_dir = tmp_path / "cache"
    sources = DataSources(cache_dir=cache_dir, mirror=mirror_root)
    load_dataset(MONEYBALL, sources)
    sidecar = cache_dir / "41021.json"
    sidecar.write_text(sidecar_text)

    with pytest.raises(DatasetError) as raised:
        load_dataset(MONEYBALL, sources)

    assert "41021" in str(raised.value)
    assert str(sidecar) in str(raised.value)


def test_cache_put_then_get_roundtrip(mirror_root: Path, tmp_path: Path):
    dataset = load_dataset(
        MONEYBALL, DataSources(cache_dir=tmp_path / "first", mirror=mirror_root)
    )
    cache = TableCache(tmp_path / "second")

    assert cache.get(MONEYBALL) is None
    cache.put(dataset)
    restored = cache.get(MONEYBALL)

    assert restored is not None
    assert restored.source == "cache"
    assert restored.categorical == dataset.categorical
    assert_frame_equal(restored.frame, dataset.frame)
    assert not list((tmp_path / "second").glob("*.tmp"))


def test_folder_without_manifest_rejected(tmp_path: Path):
    empty = tmp_path / "mirror"
    empty.mkdir()

    with pytest.raises(DatasetError) as raised:
        load_dataset(507, DataSources(cache_dir=tmp_path / "cache", mirror=empty))

    assert MANIFEST_NAME in str(raised.value)
    assert "BENCH_MIRROR" in str(raised.value)


def test_malformed_manifest_rejected(tmp_path: Path):
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / MANIFEST_NAME).write_text("[[dataset]\nfile = ")

    with pytest.raises(DatasetError) as raised:
        load_dataset(507, DataSources(cache_dir=tmp_path / "cache", mirror=folder))

    assert str(folder / MANIFEST_NAME) in str(raised.value)


def test_manifest_lists_missing_file(mirror_root: Path, tmp_path: Path):
    copy = copy_mirror(mirror_root, tmp_path / "mirror", [MONEYBALL])
    data_file = copy / "41021_Moneyball.parquet"
    data_file.unlink()

    with pytest.raises(DatasetError) as raised:
        load_dataset(MONEYBALL, DataSources(cache_dir=tmp_path / "cache", mirror=copy))

    assert "41021" in str(raised.value)
    assert str(data_file) in str(raised.value)


def test_offline_without_mirror_says_so(tmp_path: Path):
    sources = DataSources(cache_dir=tmp_path / "cache", mirror=None, offline=True)

    with pytest.raises(DatasetError) as raised:
        load_dataset(507, sources)

    message = str(raised.value)
    assert f"is not in the cache {tmp_path / 'cache'} and no mirror is set" in message
    assert "nor in" not in message


def test_offline_without_source_rejected(mirror_root: Path, tmp_path: Path):
    copy = copy_mirror(mirror_root, tmp_path / "mirror", [MONEYBALL])
    sources = DataSources(cache_dir=tmp_path / "cache", mirror=copy, offline=True)

    with pytest.raises(DatasetError) as raised:
        load_dataset(507, sources)

    message = str(raised.value)
    assert "507" in message
    assert str(copy) in message
    assert "BENCH_MIRROR" in message
