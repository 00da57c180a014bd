"""The Optuna storage shared by every worker of a run: URL, defaults, opening.

- ``sqlite:///PATH``: one process (the in-process runner's default).
- ``journal:PATH``: an append-only journal file, for several processes on one
  machine or on a shared filesystem (the local and Slurm runners' default).
- ``postgresql://USER@HOST/DB`` (or any SQLAlchemy URL): a database server, for
  many workers on many machines.

Open the storage once in the launching process before any worker starts:
that creates the tables, and two processes creating a new SQLite file at the
same moment can crash.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna

from bench.claims import LeaseSettings, retry_trial

logger = logging.getLogger(__name__)

SQLITE_NAME = "optuna.db"
LOCK_NAME = ".lock"
JOURNAL_NAME = "optuna.journal"
JOURNAL_PREFIX = "journal:"

# SQLAlchemy 2 connects postgresql:// URLs through psycopg (version 3).
_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql"}


def default_storage_url(results: Path, workers: int) -> str:
    """Return the storage URL used when ``--storage`` is not given.

    An existing journal or SQLite file in ``results`` is kept, so changing the
    runner does not start the studies over. Otherwise one worker gets SQLite
    and several get a journal file.
    """
    journal = results / JOURNAL_NAME
    sqlite = results / SQLITE_NAME
    if journal.exists():
        return f"{JOURNAL_PREFIX}{journal}"
    if sqlite.exists() or workers <= 1:
        return f"sqlite:///{sqlite}"
    return f"{JOURNAL_PREFIX}{journal}"


@contextmanager
def results_lock(results: Path) -> Iterator[None]:
    """Hold an exclusive lock on the results folder inside the block.

    Every `bench run` on a folder creates its SQLite stores and writes its
    report under this lock, so two runs started together neither create the
    same tables at once nor interleave writes to one report file. The lock is
    ``fcntl.flock`` on the file ``.lock`` in ``results``, released when the
    block ends or the process dies.

    NOTE: on network filesystems without ``flock`` support (some NFS setups)
    the lock may not hold across machines.
    """
    with open(results / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_storage_url(url: str, workers: int) -> None:
    """Reject storage URLs that cannot work; warn about risky ones.

    Raises:
        ValueError: if the URL has no known form, its journal folder is
            missing, or the database driver it needs is not installed.
    """
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX) :])
        if not path.name:
            raise ValueError(f"--storage {url}: give a file after 'journal:'.")
        if path.parent.exists() and not path.parent.is_dir():
            raise ValueError(
                f"--storage {url}: {path.parent} is a file, not a folder; give a "
                "file path inside a folder."
            )
        if not path.parent.is_dir():
            raise ValueError(
                f"--storage {url}: folder {path.parent} does not exist; create it "
                "or choose another path."
            )
        return
    if "://" not in url:
        raise ValueError(
            f"--storage {url!r} is not a storage URL: use sqlite:///PATH, "
            "journal:PATH or postgresql://USER@HOST/DATABASE."
        )
    dialect, _, driver = url.split("://", 1)[0].partition("+")
    driver = driver or _DRIVERS.get(dialect, "")
    if driver and importlib.util.find_spec(driver) is None:
        raise ValueError(
            f"--storage {_hide_password(url)}: the Python driver {driver!r} is not "
            f"installed; run `pip install {_package_of(driver)}`."
        )
    if dialect == "sqlite" and workers > 1:
        logger.warning(
            "--storage %s: SQLite serves one writer at a time, so %d workers may "
            "wait on each other or fail with 'database is locked'; a journal file "
            "(journal:PATH) or PostgreSQL suits several workers.",
            url,
            workers,
        )


def open_storage(
    url: str, leases: LeaseSettings | None = None
) -> optuna.storages.BaseStorage:
    """Open the storage at ``url``, creating its tables on first use.

    RDB storages get Optuna's heartbeat: a trial whose process stopped
    beating for the grace period is marked failed at the next trial start and
    queued again by `retry_trial`. Journal files have no heartbeat in Optuna;
    the workers' own claims (`bench.claims`) cover both kinds.
    """
    leases = leases or LeaseSettings()
    if url.startswith(JOURNAL_PREFIX):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(
            JournalFileBackend(url[len(JOURNAL_PREFIX) :])
        )
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}
    else:
        # A connection idle through a long trial may have been closed by the
        # server or a firewall: test it before use.
        engine = {"pool_pre_ping": True}
        if url.startswith("postgresql"):
            engine["connect_args"] = {"connect_timeout": 10}
    with warnings.catch_warnings():
        # Optuna 5.1 warns at every use of `heartbeat_interval` that the
        # argument is experimental, and has no stable replacement. The claims
        # in `bench.claims` end stale trials without it, so only this warning
        # is silenced, here where it is raised.
        warnings.filterwarnings(
            "ignore",
            message=r"Argument ``heartbeat_interval`` is an experimental feature",
            category=optuna.exceptions.ExperimentalWarning,
        )
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=max(1, round(leases.heartbeat_interval)),
            grace_period=max(2, round(leases.grace_period)),
            heartbeat_stale_trial_callback=retry_trial,
        )


def _hide_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def _package_of(driver: str) -> str:
    packages = {
        "psycopg": "psycopg[binary]",
        "psycopg2": "psycopg2-binary",
        "pymysql": "pymysql",
    }
    return packages.get(driver, driver)
