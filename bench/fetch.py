"""Fetch a suite's datasets ahead of a run, for compute nodes without network.

On a login node, `fetch_suite` loads every dataset of a suite through the
usual sources, which write each table to the Parquet cache. It can also write
a mirror folder (Parquet files and ``MANIFEST.toml``) for ``--mirror`` or
``BENCH_MIRROR``. Compute nodes then run with
``--offline``, which fails at once, naming the dataset, when a table is
missing.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tasks import Dataset, DatasetError, DataSources, Suite, load_dataset
from tasks.checksums import sha256_file
from tasks.mirror import MANIFEST_NAME

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchResult:
    """One dataset's outcome: its file in the mirror folder, or the error."""

    openml_id: int
    name: str = ""
    rows: int = 0
    source: str = ""
    error: str = ""


def fetch_suite(
    suite: Suite,
    sources: DataSources,
    dataset_ids: list[int] | None = None,
    mirror_out: Path | None = None,
) -> list[FetchResult]:
    """Load the suite's datasets into the cache; optionally write a mirror.

    Args:
        suite: The suite whose datasets to load.
        sources: Where to load from; every table lands in its cache.
        dataset_ids: Only these OpenML ids of the suite; None for all.
        mirror_out: Folder for a mirror of the loaded tables; None for none.

    Returns:
        One result per dataset, in suite order. A dataset that fails to load
        is reported in its result and the others are still fetched.

    Raises:
        ValueError: if an id in ``dataset_ids`` is not in the suite.
    """
    entries = list(suite.datasets)
    if dataset_ids is not None:
        known = {e.openml_id for e in entries}
        unknown = sorted(set(dataset_ids) - known)
        if unknown:
            raise ValueError(
                f"--datasets {','.join(map(str, unknown))}: not in suite "
                f"{suite.name} ({', '.join(str(i) for i in sorted(known))})."
            )
        entries = [e for e in entries if e.openml_id in dataset_ids]

    results = []
    loaded: list[Dataset] = []
    for entry in entries:
        try:
            dataset = load_dataset(entry.openml_id, sources, target=entry.target)
        except DatasetError as error:
            results.append(FetchResult(entry.openml_id, entry.name, error=str(error)))
            continue
        logger.info(
            "Dataset %d (%s): %d rows from the %s",
            entry.openml_id,
            dataset.name,
            dataset.frame.height,
            dataset.source,
        )
        loaded.append(dataset)
        results.append(
            FetchResult(
                entry.openml_id, dataset.name, dataset.frame.height, dataset.source
            )
        )
    if mirror_out is not None and loaded:
        write_mirror(loaded, mirror_out)
    return results


def write_mirror(datasets: list[Dataset], folder: Path) -> Path:
    """Write datasets as a mirror folder and return its manifest's path.

    Files already in the folder are replaced; the manifest lists the datasets
    given here together with any others it listed before.
    """
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / MANIFEST_NAME
    tables = _existing_tables(manifest)
    for dataset in datasets:
        file_name = f"{dataset.openml_id}_{_safe_name(dataset.name)}.parquet"
        path = folder / file_name
        partial = path.with_suffix(f".parquet.{os.getpid()}.tmp")
        dataset.frame.write_parquet(partial)
        os.replace(partial, path)
        tables[dataset.openml_id] = "\n".join(
            [
                "[[dataset]]",
                f"file = {_toml_string(file_name)}",
                f"openml_dataset_id = {dataset.openml_id}",
                f"name = {_toml_string(dataset.name)}",
                f"target = {_toml_string(dataset.target)}",
                f"sha256 = {_toml_string(sha256_file(path))}",
                "categorical_features = ["
                + ", ".join(_toml_string(c) for c in dataset.categorical)
                + "]",
            ]
        )
    header = "# Written by `bench fetch`; one [[dataset]] table per Parquet file.\n"
    body = "\n\n".join(tables[i] for i in sorted(tables))
    partial = manifest.with_suffix(f".toml.{os.getpid()}.tmp")
    partial.write_text(header + "\n" + body + "\n")
    os.replace(partial, manifest)
    logger.info("Mirror of %d datasets written to %s", len(tables), folder)
    return manifest


def _existing_tables(manifest: Path) -> dict[int, str]:
    """Return the manifest's [[dataset]] tables as text, keyed by OpenML id."""
    if not manifest.is_file():
        return {}
    tables = {}
    for block in manifest.read_text().split("[[dataset]]")[1:]:
        match = re.search(r"^openml_dataset_id\s*=\s*(\d+)", block, re.MULTILINE)
        if match:
            tables[int(match.group(1))] = "[[dataset]]" + block.rstrip()
    return tables


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "dataset"


def _toml_string(text: str) -> str:
    # A JSON string with ASCII escapes is also a valid TOML basic string.
    return json.dumps(text, ensure_ascii=True)
