"""A local mirror folder of OpenML datasets stored as Parquet.

A mirror contains one Parquet file per dataset (``<openml_id>_<name>.parquet``)
and a ``MANIFEST.toml`` with one ``[[dataset]]`` table per file, giving at least
``file``, ``openml_dataset_id``, ``name``, ``target`` and ``sha256``, and
optionally ``categorical_features``. Categorical columns are stored as strings.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tasks.checksums import sha256_file
from tasks.dataset import Dataset, DatasetError

logger = logging.getLogger(__name__)

MANIFEST_NAME = "MANIFEST.toml"


@dataclass(frozen=True)
class MirrorEntry:
    """One dataset as the mirror's manifest describes it."""

    openml_id: int
    name: str
    path: Path
    target: str
    sha256: str
    categorical: tuple[str, ...]


class Mirror:
    """Read-only access to a mirror folder; checksums are verified on every load."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        manifest = self.root / MANIFEST_NAME
        if not manifest.is_file():
            raise DatasetError(
                f"Dataset mirror {self.root} has no {MANIFEST_NAME}. Point --mirror "
                "or BENCH_MIRROR at a folder that holds the Parquet files and their "
                "manifest."
            )
        self.entries = _read_manifest(manifest, self.root)

    def __contains__(self, openml_id: int) -> bool:
        return openml_id in self.entries

    def load(self, openml_id: int) -> Dataset:
        """Load one dataset after checking its SHA-256 against the manifest.

        Raises:
            DatasetError: if the id is not in the manifest, the file is missing,
                or its checksum differs from the manifest's.
        """
        entry = self.entries.get(openml_id)
        if entry is None:
            raise DatasetError(
                f"OpenML dataset {openml_id} is not in the mirror {self.root}."
            )
        if not entry.path.is_file():
            raise DatasetError(
                f"OpenML dataset {openml_id}: the mirror's manifest lists "
                f"{entry.path}, but the file does not exist."
            )

        actual = sha256_file(entry.path)
        if actual != entry.sha256:
            raise DatasetError(
                f"OpenML dataset {openml_id}: checksum mismatch for {entry.path} "
                f"(manifest sha256 {entry.sha256}, file sha256 {actual}). The file "
                "is corrupt or was changed; restore it from the mirror's source."
            )

        frame = pl.read_parquet(entry.path)
        logger.debug("Read %s from the mirror (%d rows)", entry.path, frame.height)
        return Dataset(
            openml_id=openml_id,
            name=entry.name,
            target=entry.target,
            frame=frame,
            categorical=entry.categorical,
            source="mirror",
        )


def _read_manifest(path: Path, root: Path) -> dict[int, MirrorEntry]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise DatasetError(
            f"The mirror manifest {path} is not valid TOML ({error}). Restore it "
            "from the mirror's source."
        ) from None

    entries: dict[int, MirrorEntry] = {}
    for index, table in enumerate(document.get("dataset", [])):
        try:
            entry = MirrorEntry(
                openml_id=int(table["openml_dataset_id"]),
                name=str(table["name"]),
                path=root / str(table["file"]),
                target=str(table["target"]),
                sha256=str(table["sha256"]).lower(),
                categorical=tuple(table.get("categorical_features", [])),
            )
        except KeyError as missing:
            raise DatasetError(
                f"{path}: [[dataset]] table number {index + 1} lacks the key "
                f"{missing}; every entry needs file, openml_dataset_id, name, "
                "target and sha256."
            ) from None
        entries[entry.openml_id] = entry
    return entries
