"""Datasets from OpenML through openml-python, with its on-disk cache.

openml-python keeps a cache per server under its root cache directory
(``<root>/org/openml/www/datasets/<id>/`` for openml.org), holding
``description.xml`` and the data as ``dataset_<id>.pq`` or ``dataset.arff``.
A dataset whose cache is complete loads without the network.
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse
from xml.parsers.expat import ExpatError

import pandas as pd
import polars as pl

from tasks.dataset import Dataset, DatasetError

if TYPE_CHECKING:
    from openml import OpenMLDataset

logger = logging.getLogger(__name__)

REACHABILITY_TIMEOUT_S = 3.0


def server_reachable(timeout_s: float = REACHABILITY_TIMEOUT_S) -> bool:
    """Return whether a TCP connection to the configured OpenML server opens.

    The check costs one connection attempt, bounded by ``timeout_s`` seconds,
    so an offline machine learns it at once instead of after openml-python's
    retries.
    """
    import openml

    url = urlparse(openml.config.server)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def cached_files(openml_id: int) -> tuple[Path, list[Path]]:
    """Return the openml-python cache folder of a dataset and its data files there."""
    import openml

    folder = Path(openml.config.get_cache_directory()) / "datasets" / str(openml_id)
    data = [
        folder / name
        for name in (f"dataset_{openml_id}.pq", "dataset.pq", "dataset.arff")
        if (folder / name).exists()
    ]
    return folder, data


def cache_complete(openml_id: int) -> bool:
    """Return whether the openml-python cache can serve a dataset offline.

    Raises:
        DatasetError: if a cached file is empty or the cached description is
            not valid XML. For a broken description, openml-python 0.15.1
            requests it from the server again and, if that request fails,
            deletes the whole folder. An empty data file fails later with an
            error that does not name the dataset.
    """
    folder, data = cached_files(openml_id)
    description = folder / "description.xml"
    for path in [description, *data]:
        if path.exists() and path.stat().st_size == 0:
            raise DatasetError(
                f"OpenML dataset {openml_id}: the cached file {path} is empty. "
                "Delete it and fetch the dataset again on a machine with network "
                "access, or use a mirror (--mirror / BENCH_MIRROR)."
            )
    if description.is_file():
        _check_description(openml_id, description)
    return description.is_file() and bool(data)


def _check_description(openml_id: int, path: Path) -> None:
    import xmltodict

    try:
        document = xmltodict.parse(path.read_bytes())
    except ExpatError as error:
        problem = f"is not valid XML ({error})"
    else:
        if "oml:data_set_description" in document:
            return
        problem = "has no oml:data_set_description element"
    raise DatasetError(
        f"OpenML dataset {openml_id}: the cached description {path} {problem}. "
        "Delete it and fetch the dataset again on a machine with network access, "
        "or use a mirror (--mirror / BENCH_MIRROR)."
    )


def load_from_openml(openml_id: int, target: str | None = None) -> Dataset:
    """Load a dataset through openml-python, from its cache or the server.

    Args:
        openml_id: OpenML dataset id.
        target: Target column; defaults to the dataset's default target
            attribute, which must then name exactly one column.

    Raises:
        DatasetError: if the dataset is neither cached nor reachable, or its
            target is missing or ambiguous.
    """
    import openml

    if not cache_complete(openml_id) and not server_reachable():
        raise DatasetError(
            f"OpenML dataset {openml_id}: the OpenML server "
            f"{openml.config.server} is unreachable and the dataset is not in "
            f"the openml cache ({openml.config.get_cache_directory()}). Either "
            "point --mirror or BENCH_MIRROR at a mirror folder that holds it, or "
            "fill the cache on a machine with network access and copy it here."
        )

    if not cache_complete(openml_id):
        _fetch(openml_id)
    _, data_files = cached_files(openml_id)
    with _scratch_cache(openml_id):
        remote = _fetch(openml_id)
        return _read(remote, openml_id, target, data_files)


def _fetch(openml_id: int) -> OpenMLDataset:
    import openml

    try:
        return openml.datasets.get_dataset(
            openml_id,
            download_data=True,
            download_qualities=False,
            download_features_meta_data=False,
        )
    except (openml.exceptions.PyOpenMLError, OSError) as error:
        raise DatasetError(
            f"OpenML dataset {openml_id}: openml-python failed to fetch it from "
            f"{openml.config.server} ({type(error).__name__}: {error}). Point "
            "--mirror or BENCH_MIRROR at a mirror folder that holds it, or retry "
            "when the server is reachable."
        ) from error


@contextmanager
def _scratch_cache(openml_id: int) -> Iterator[None]:
    """Point openml-python at a throw-away copy of one dataset's cache folder.

    openml-python 0.15.1 writes pickle files beside the data when it reads a
    dataset, and unpickles them on later reads; it also deletes the folder when
    a read fails. Reading from a copy keeps the real cache unchanged, and no
    pickle from a persistent cache is ever loaded.
    """
    import openml

    root = Path(openml.config._root_cache_directory)
    folder, data = cached_files(openml_id)
    relative = folder.relative_to(root)
    with tempfile.TemporaryDirectory(prefix="openml-scratch-") as scratch:
        copy = Path(scratch) / relative
        copy.mkdir(parents=True)
        for path in [folder / "description.xml", *data]:
            shutil.copy2(path, copy / path.name)
        openml.config.set_root_cache_directory(scratch)
        try:
            yield
        finally:
            openml.config.set_root_cache_directory(root)


def _read(
    remote: OpenMLDataset, openml_id: int, target: str | None, files: list[Path]
) -> Dataset:
    """Read the table from the cache, naming ``files`` (the real cache's data
    files, not the scratch copies) when that fails."""
    target = target or _default_target(openml_id, remote.default_target_attribute)
    # The table is read without a target because get_data(target=...) fails
    # with an IndexError when the target is not a column.
    try:
        table, _, categorical_mask, names = remote.get_data()
    # openml-python 0.15.1 raises a bare Exception for an unreadable Parquet
    # file, naming only the path and chaining the reader's error as the cause.
    except Exception as error:
        reason = error.__cause__ or error
        raise DatasetError(
            f"OpenML dataset {openml_id}: openml-python failed to read the data "
            f"file {', '.join(map(str, files)) or '(none cached)'} "
            f"({type(reason).__name__}: {reason}). Delete the file and fetch the "
            "dataset again, or use a mirror (--mirror / BENCH_MIRROR)."
        ) from error
    if target not in names:
        raise DatasetError(
            f"OpenML dataset {openml_id} ({remote.name}): target column "
            f"{target!r} is not in the table, whose first columns are "
            f"{names[:10]}. Set `target` for this dataset in the suite file."
        )

    frame = _to_polars(openml_id, table.drop(columns=[target]), table[target], target)
    categorical = tuple(
        n
        for n, is_cat in zip(names, categorical_mask, strict=True)
        if is_cat and n != target
    )
    logger.info(
        "Loaded OpenML dataset %d (%s) through openml-python", openml_id, remote.name
    )
    return Dataset(
        openml_id=openml_id,
        name=remote.name,
        target=target,
        frame=frame,
        categorical=categorical,
        source="openml",
    )


def _default_target(openml_id: int, default: str | None) -> str:
    if not default:
        raise DatasetError(
            f"OpenML dataset {openml_id} declares no default target. Set `target` "
            "for it in the suite file."
        )
    if "," in default:
        raise DatasetError(
            f"OpenML dataset {openml_id} declares several default targets "
            f"({default}). Set `target` for it in the suite file to one of them."
        )
    return default


def _to_polars(
    openml_id: int, features: pd.DataFrame, labels: pd.Series, target: str
) -> pl.DataFrame:
    features = features.copy()
    for column in features.columns:
        dtype = features[column].dtype
        if isinstance(dtype, pd.SparseDtype):
            features[column] = features[column].sparse.to_dense()
        elif isinstance(dtype, pd.CategoricalDtype):
            features[column] = features[column].astype("string")
    if isinstance(labels.dtype, pd.CategoricalDtype):
        raise DatasetError(
            f"OpenML dataset {openml_id}: target {target!r} is categorical "
            f"(dtype {labels.dtype}), so it cannot be a regression target. Pick a "
            "numeric target in the suite file or drop the dataset from the suite."
        )
    features[target] = labels.to_numpy()
    return pl.from_pandas(features)
