"""Load a dataset by OpenML id from the first source that has it.

Sources are tried in this order: the project's Parquet cache, the mirror
folder (``--mirror`` or ``BENCH_MIRROR``), then OpenML through openml-python.
A table loaded from the mirror or OpenML is written to the cache.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from tasks.cache import TableCache
from tasks.dataset import Dataset, DatasetError
from tasks.mirror import Mirror
from tasks.openml_source import load_from_openml

logger = logging.getLogger(__name__)

MIRROR_ENV = "BENCH_MIRROR"
CACHE_ENV = "BENCH_CACHE"


def default_cache_dir() -> Path:
    """Return ``$BENCH_CACHE``, else ``$XDG_CACHE_HOME/encoder-bench``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "encoder-bench"


@dataclass(frozen=True)
class DataSources:
    """Dataset sources, tried in the order cache, mirror, OpenML.

    Attributes:
        cache_dir: Folder of the project's Parquet cache.
        mirror: Mirror folder, or None to use OpenML only.
        openml_cache: Root cache folder for openml-python; None keeps
            openml-python's own setting.
        offline: Never contact the OpenML server.
    """

    cache_dir: Path
    mirror: Path | None = None
    openml_cache: Path | None = None
    offline: bool = False

    @classmethod
    def from_env(
        cls,
        mirror: Path | None = None,
        cache_dir: Path | None = None,
        openml_cache: Path | None = None,
        offline: bool = False,
    ) -> DataSources:
        """Fill unset fields from ``BENCH_MIRROR`` and ``BENCH_CACHE``.

        Raises:
            ValueError: if the mirror path is not an existing folder; the
                message names the path and where it came from (``--mirror`` or
                the variable).
        """
        origin = "--mirror"
        if mirror is None and os.environ.get(MIRROR_ENV):
            mirror = Path(os.environ[MIRROR_ENV])
            origin = f"the environment variable {MIRROR_ENV}"
        if mirror is not None and not mirror.is_dir():
            problem = "is not a folder" if mirror.exists() else "does not exist"
            raise ValueError(
                f"Dataset mirror {mirror} (from {origin}) {problem}. Point "
                f"--mirror or {MIRROR_ENV} at a folder that holds the Parquet files "
                f"and MANIFEST.toml, or unset {MIRROR_ENV} to load datasets from "
                "the cache and OpenML."
            )
        return cls(
            cache_dir=cache_dir or default_cache_dir(),
            mirror=mirror,
            openml_cache=openml_cache,
            offline=offline,
        )


def load_dataset(
    openml_id: int, sources: DataSources, target: str | None = None
) -> Dataset:
    """Load one dataset, caching it as Parquet.

    Args:
        openml_id: OpenML dataset id.
        sources: Where to look.
        target: Target column to use instead of the source's default.

    Raises:
        DatasetError: if no source has the dataset (the message names the id
            and the ways to fix it) or its target is unusable.
    """
    cache = TableCache(sources.cache_dir)
    dataset = cache.get(openml_id)
    if dataset is None:
        dataset = _load_uncached(openml_id, sources, target)
        dataset.validate()
        cache.put(dataset)

    if target is not None and target != dataset.target:
        dataset = dataclasses.replace(dataset, target=target)
    dataset.validate()
    return dataset


def _load_uncached(openml_id: int, sources: DataSources, target: str | None) -> Dataset:
    if sources.mirror is not None:
        mirror = Mirror(sources.mirror)
        if openml_id in mirror:
            return mirror.load(openml_id)
        logger.info("Dataset %d is not in the mirror %s", openml_id, sources.mirror)

    if sources.offline:
        where = (
            f"nor in the mirror {sources.mirror}"
            if sources.mirror
            else "and no mirror is set"
        )
        raise DatasetError(
            f"OpenML dataset {openml_id} is not in the cache {sources.cache_dir} "
            f"{where}, and offline mode forbids contacting OpenML. Point "
            "--mirror or BENCH_MIRROR at a mirror folder that holds it, or load "
            "it once on a machine with network access."
        )

    if sources.openml_cache is not None:
        import openml

        openml.config.set_root_cache_directory(sources.openml_cache)
    return load_from_openml(openml_id, target)
