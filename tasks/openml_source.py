"""Datasets from OpenML through openml-python, with its on-disk cache.

openml-python keeps a cache per server under its root cache directory
(``<root>/org/openml/www/datasets/<id>/`` for openml.org), holding
``description.xml`` and the data as ``dataset_<id>.pq`` or ``dataset.arff``.
A dataset whose cache is complete loads without the network.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import polars as pl

from tasks.dataset import Dataset, DatasetError

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
        DatasetError: if a cached file is empty, which openml-python would
            otherwise treat as a failure and answer by deleting the folder.
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
    return description.is_file() and bool(data)


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

    remote = openml.datasets.get_dataset(
        openml_id,
        download_data=True,
        download_qualities=False,
        download_features_meta_data=False,
    )
    target = target or _default_target(openml_id, remote.default_target_attribute)
    features, labels, categorical_mask, names = remote.get_data(target=target)
    frame = _to_polars(openml_id, features, labels, target)
    categorical = tuple(
        n for n, is_cat in zip(names, categorical_mask, strict=True) if is_cat
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
