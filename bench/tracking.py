"""MLflow conventions: where runs live, how they are tagged and found again.

One experiment per suite. A parent run per (dataset, encoder) study is tagged
``phase=study``. Nested child runs are tagged ``phase=trial`` (one per trial,
with the validation curve) or ``phase=final`` (one per final seed, with test
metrics).
A study is identified by its ``study_key`` tag, so a re-run finds the parent
it started before and skips what is complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlflow.entities import Metric, Param, Run, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from reports.collect import search_all

logger = logging.getLogger(__name__)

MAX_PARAM_CHARS = 500

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def local_tracking_uri(results: Path) -> str:
    """Return the default tracking URI: an SQLite store inside ``results``."""
    return f"sqlite:///{(results / 'mlflow.db').resolve()}"


# The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"
# URI schemes of MLflow's database stores. A driver name may follow a "+", as
# in postgresql+psycopg://.
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")
SERVER_SCHEMES = ("http", "https", "databricks")
ACCEPTED_FORMS = (
    "Accepted forms: sqlite:///PATH (an SQLite file), http://HOST:PORT or "
    "https://HOST:PORT (a tracking server), postgresql://USER@HOST:PORT/DB, "
    "mysql://... or mssql://... (a database), and file:///PATH (a folder "
    "store, which MLflow 3.17 accepts only with MLFLOW_ALLOW_FILE_STORE=true)."
)


def check_tracking_uri(tracking_uri: str, origin: str = "--tracking-uri") -> None:
    """Raise `ValueError` if ``tracking_uri`` is not a form that `bench` accepts.

    MLflow reports these URIs with a traceback from inside its client, so this
    check runs before any client opens the store. A bare path is rejected too,
    although MLflow would read it as a file store, because it is more often a
    SQLite file written without sqlite:///.

    Args:
        tracking_uri: The URI to check.
        origin: Where the URI came from (an option or an environment
            variable), named in the message.

    Raises:
        ValueError: if the URI is a bare path, has an unknown scheme, names a
            SQLite file that is a folder or not an SQLite database, or is a
            file store that this MLflow version rejects.
    """
    url = urlparse(tracking_uri)
    scheme = url.scheme.lower().split("+", 1)[0]
    prefix = f"{origin} {tracking_uri} is invalid"
    if tracking_uri == "databricks":
        return
    # A one-letter scheme is a Windows drive letter, as in C:/mlruns.
    if len(scheme) <= 1:
        raise ValueError(f"{prefix}: it is a path, not a URI. {ACCEPTED_FORMS}")
    if scheme == "sqlite":
        _check_sqlite_file(tracking_uri, prefix)
    elif scheme == "file":
        _check_file_store_allowed(prefix)
    elif scheme in SERVER_SCHEMES:
        if scheme != "databricks" and not url.hostname:
            raise ValueError(f"{prefix}: it names no host. {ACCEPTED_FORMS}")
    elif scheme not in DATABASE_SCHEMES:
        raise ValueError(
            f"{prefix}: MLflow has no tracking store for the scheme "
            f"{url.scheme}://. {ACCEPTED_FORMS}"
        )


def _check_sqlite_file(tracking_uri: str, prefix: str) -> None:
    """Raise `ValueError` if the SQLite file of a URI cannot be a database.

    A missing file is accepted, because MLflow creates it and its missing
    folders, unless a parent is a file. An empty file is accepted too, because
    SQLite treats it as an empty database.
    """
    text = tracking_uri.split("://", 1)[1].split("?", 1)[0]
    if text in ("", "/", "/:memory:"):
        return
    # sqlite:///relative/path and sqlite:////absolute/path, as in SQLAlchemy.
    path = Path(text.removeprefix("/"))
    if path.is_dir():
        raise ValueError(
            f"{prefix}: {path} is a folder, not an SQLite file. Give the path of "
            f"its database file, such as sqlite:///{path / 'mlflow.db'}. "
            f"{ACCEPTED_FORMS}"
        )
    if not path.exists():
        _check_parent_folders(path, prefix)
        return
    with path.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise ValueError(
            f"{prefix}: {path} is not an SQLite database (its first bytes are not "
            "the SQLite header). Give the path of an MLflow SQLite store, or of a "
            f"file that does not exist yet, which MLflow creates. {ACCEPTED_FORMS}"
        )


def _check_parent_folders(path: Path, prefix: str) -> None:
    """Raise `ValueError` if the nearest existing parent of ``path`` is a file.

    MLflow creates missing parent folders of an SQLite file, but not below a file.
    """
    for parent in path.parents:
        if not parent.exists():
            continue
        if not parent.is_dir():
            raise ValueError(
                f"{prefix}: {parent} is a file, not a folder, so the SQLite file "
                f"{path} cannot be created. Give a path inside a folder. "
                f"{ACCEPTED_FORMS}"
            )
        return


def _check_file_store_allowed(prefix: str) -> None:
    """Raise `ValueError` if this MLflow version rejects file stores.

    MLflow 3.17 raises for a file store unless MLFLOW_ALLOW_FILE_STORE is true.
    NOTE: versions without that variable are assumed to accept file stores.
    """
    from mlflow import environment_variables

    allowed = getattr(environment_variables, "MLFLOW_ALLOW_FILE_STORE", None)
    if allowed is None or allowed.get():
        return
    raise ValueError(
        f"{prefix}: MLflow keeps file stores in maintenance mode and rejects them "
        "unless MLFLOW_ALLOW_FILE_STORE=true. Use sqlite:///PATH/mlflow.db "
        f"instead, or set that variable to keep a file store. {ACCEPTED_FORMS}"
    )


def check_reachable(tracking_uri: str, timeout_s: float = 5.0) -> None:
    """Raise `ConnectionError` unless an HTTP tracking server accepts connections.

    MLflow's client retries an unreachable server for minutes; this check fails
    in at most ``timeout_s`` seconds, before any training starts. Local stores
    (SQLite, file paths) need no connection, but every URI is first checked by
    `check_tracking_uri`.

    Raises:
        ValueError: if `check_tracking_uri` rejects the URI.
        ConnectionError: if an HTTP server does not accept a connection.
    """
    check_tracking_uri(tracking_uri, "Tracking URI")
    url = urlparse(tracking_uri)
    if url.scheme not in ("http", "https"):
        return
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            return
    except OSError as error:
        raise ConnectionError(
            f"MLflow tracking server {tracking_uri} is unreachable ({error}). Start "
            "it, or pass another --tracking-uri (or unset MLFLOW_TRACKING_URI to "
            "use the SQLite store in the results folder)."
        ) from None


def code_version() -> str:
    """Return the git commit of the source tree (``-dirty`` if modified), else the
    package version."""
    from bench import __version__

    root = Path(__file__).resolve().parent.parent
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return described or __version__
    except (OSError, subprocess.SubprocessError):
        return __version__


def fingerprint(data: Any) -> str:
    """Return a short stable hash of JSON-ready data."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Tracker:
    """A thin layer over `MlflowClient` that applies the conventions above.

    Args:
        tracking_uri: Any MLflow tracking URI (SQLite file, server URL).
        artifact_root: Folder for artifacts of experiments this tracker creates;
            None lets the tracking server decide.
    """

    def __init__(self, tracking_uri: str, artifact_root: Path | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri)
        self.artifact_root = artifact_root

    def experiment_id(self, name: str) -> str:
        """Return the id of the experiment ``name``, creating it if needed."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.artifact_root is not None:
            location = (self.artifact_root / name).resolve().as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def find_runs(self, experiment_id: str, filter_string: str) -> list[Run]:
        """Return every matching run, following MLflow's pages to the end."""
        return search_all(self.client, experiment_id, filter_string)

    def parent_run(
        self, experiment_id: str, study_key: str, name: str, tags: dict[str, str]
    ) -> Run:
        """Return the study's parent run, creating it on the first call.

        When an earlier process died and left several parents with this key,
        the oldest is used.
        """
        found = self.find_runs(
            experiment_id,
            f"tags.phase = 'study' and tags.study_key = '{study_key}'",
        )
        if found:
            return min(found, key=lambda r: r.info.start_time)
        return self.client.create_run(
            experiment_id,
            run_name=name,
            tags={**tags, "phase": "study", "study_key": study_key},
        )

    def record_skipped(
        self, experiment_id: str, openml_id: int, dataset: str, reason: str
    ) -> None:
        """Store why a dataset was skipped, as a FAILED run tagged ``phase=skipped``.

        The report lists these runs (`reports.collect`). An earlier record of
        the same dataset is updated instead of adding a second one.
        """
        found = self._skipped_runs(experiment_id, openml_id)
        if found:
            run_id = found[0].info.run_id
        else:
            run_id = self.client.create_run(
                experiment_id,
                run_name=f"skipped {openml_id}",
                tags={"phase": "skipped", "openml_id": str(openml_id)},
            ).info.run_id
        self.client.set_tag(run_id, "dataset", dataset)
        self.client.set_tag(run_id, "status_reason", reason[:4000])
        self.client.set_terminated(run_id, "FAILED")

    def clear_skipped(self, experiment_id: str, openml_id: int) -> None:
        """Delete the skip records of a dataset that has now loaded."""
        for run in self._skipped_runs(experiment_id, openml_id):
            self.client.delete_run(run.info.run_id)

    def _skipped_runs(self, experiment_id: str, openml_id: int) -> list[Run]:
        return self.find_runs(
            experiment_id,
            f"tags.phase = 'skipped' and tags.openml_id = '{openml_id}'",
        )

    def start_child(self, parent: Run, name: str, tags: dict[str, str]) -> str:
        """Create a RUNNING nested run under ``parent`` and return its id."""
        run = self.client.create_run(
            parent.info.experiment_id,
            tags={
                **tags,
                MLFLOW_PARENT_RUN_ID: parent.info.run_id,
                MLFLOW_RUN_NAME: name,
            },
        )
        return run.info.run_id

    def fail(self, run_id: str, error: BaseException) -> None:
        """End a run FAILED (KILLED for Ctrl-C), storing the error in a tag."""
        # Lightning turns Ctrl-C during fitting into SystemExit.
        interrupted = isinstance(error, KeyboardInterrupt | SystemExit)
        status = "KILLED" if interrupted else "FAILED"
        self.client.set_tag(run_id, "error", f"{type(error).__name__}: {error}"[:4000])
        self.client.set_terminated(run_id, status)

    @contextmanager
    def child_run(self, parent: Run, name: str, tags: dict[str, str]) -> Iterator[str]:
        """Open a nested run under ``parent``; yield its id.

        The run ends FINISHED, or FAILED when the body raises (the error is
        stored in the ``error`` tag and re-raised).
        """
        run_id = self.start_child(parent, name, tags)
        try:
            yield run_id
        except BaseException as error:
            self.fail(run_id, error)
            raise
        self.client.set_terminated(run_id, "FINISHED")

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Log parameters, storing any value over 500 characters as an artifact.

        The parameter then keeps the value's first characters and its hash.
        """
        batch = []
        for key, value in params.items():
            text = str(value)
            if len(text) > MAX_PARAM_CHARS:
                self.log_json(run_id, {key: value}, f"params/{key}.json")
                digest = hashlib.sha256(text.encode()).hexdigest()[:12]
                text = f"{text[: MAX_PARAM_CHARS - 40]}... (sha256 {digest}, full)"
            batch.append(Param(key, text))
        for start in range(0, len(batch), 100):
            self.client.log_batch(run_id, params=batch[start : start + 100])

    def log_metrics(
        self, run_id: str, metrics: dict[str, float], step: int = 0
    ) -> None:
        """Log scalar metrics at one step."""
        import time

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(run_id, metrics=batch)

    def log_curve(self, run_id: str, name: str, values: list[float]) -> None:
        """Log a per-epoch curve as one metric with steps 0, 1, ..."""
        import time

        now = int(time.time() * 1000)
        batch = [Metric(name, float(v), now, step) for step, v in enumerate(values)]
        for start in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[start : start + 1000])

    def log_json(self, run_id: str, data: Any, artifact_path: str) -> None:
        """Store JSON-ready data as an artifact file of the run."""
        folder, name = os.path.split(artifact_path)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
            self.client.log_artifact(run_id, str(path), folder or None)

    def finish(self, run_id: str) -> None:
        """Mark a run FINISHED."""
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
