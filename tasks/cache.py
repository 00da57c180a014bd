"""The project's own Parquet cache of loaded tables.

Each dataset is stored as ``<openml_id>.parquet`` with a JSON sidecar holding
its name, target, categorical columns, origin and the Parquet file's SHA-256,
which is checked on every read. Files are written to a temporary name and
renamed, so a killed process never leaves a half-written table behind.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import polars as pl

from tasks.checksums import sha256_file
from tasks.dataset import Dataset, DatasetError

logger = logging.getLogger(__name__)

SIDECAR_KEYS = ("name", "target", "categorical", "sha256")


class TableCache:
    """A folder of cached datasets keyed by OpenML id."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def paths(self, openml_id: int) -> tuple[Path, Path]:
        """Return the Parquet file and the JSON sidecar of one dataset."""
        return (
            self.root / f"{openml_id}.parquet",
            self.root / f"{openml_id}.json",
        )

    def get(self, openml_id: int) -> Dataset | None:
        """Return the cached dataset, or None when it is not cached.

        Raises:
            DatasetError: if the sidecar is unreadable or the cached file's
                checksum differs from the one recorded when it was written.
        """
        table, sidecar = self.paths(openml_id)
        if not (table.is_file() and sidecar.is_file()):
            return None

        meta = _read_sidecar(openml_id, table, sidecar)
        actual = sha256_file(table)
        if actual != meta["sha256"]:
            raise DatasetError(
                f"OpenML dataset {openml_id}: checksum mismatch for the cached "
                f"table {table} (recorded {meta['sha256']}, file {actual}). Delete "
                f"{table} and {sidecar} to load the dataset again."
            )

        return Dataset(
            openml_id=openml_id,
            name=meta["name"],
            target=meta["target"],
            frame=pl.read_parquet(table),
            categorical=tuple(meta["categorical"]),
            source="cache",
        )

    def put(self, dataset: Dataset) -> None:
        """Write a dataset atomically, replacing any older copy."""
        self.root.mkdir(parents=True, exist_ok=True)
        table, sidecar = self.paths(dataset.openml_id)

        partial = table.with_suffix(f".parquet.{os.getpid()}.tmp")
        dataset.frame.write_parquet(partial)
        meta = {
            "openml_id": dataset.openml_id,
            "name": dataset.name,
            "target": dataset.target,
            "categorical": list(dataset.categorical),
            "origin": dataset.source,
            "sha256": sha256_file(partial),
        }
        partial_meta = sidecar.with_suffix(f".json.{os.getpid()}.tmp")
        partial_meta.write_text(json.dumps(meta, indent=2))

        os.replace(partial, table)
        os.replace(partial_meta, sidecar)
        logger.debug("Cached dataset %d at %s", dataset.openml_id, table)


def _read_sidecar(openml_id: int, table: Path, sidecar: Path) -> dict:
    try:
        meta = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problem = f"is not valid JSON ({error})"
    else:
        missing = [
            k for k in SIDECAR_KEYS if not isinstance(meta, dict) or k not in meta
        ]
        if not missing:
            return meta
        problem = f"lacks the keys {missing}"
    raise DatasetError(
        f"OpenML dataset {openml_id}: the cache sidecar {sidecar} {problem}. "
        f"Delete {table} and {sidecar} to load the dataset again."
    )
