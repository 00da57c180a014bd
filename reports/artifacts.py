"""Read the JSON artifacts a report needs: split sizes and learned bin weights.

Row counts come from the parent run's ``data.json`` (its ``split_sizes`` object
contains ``train``, ``val`` and ``test``). Soft-bin encoders log
``encoder_weights.json`` on their final-seed runs: one feature's grid of input
values (preprocessed units) and, for each grid value, the weight of every bin.
Artifacts are fetched through the tracking client, so a local store and a
remote server both work. A missing or malformed artifact leaves a note and
never stops the report.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from reports.collect import quiet_mlflow

logger = logging.getLogger(__name__)

WEIGHTS_ARTIFACT = "encoder_weights.json"
DATA_ARTIFACT = "data.json"
PRESET_ARTIFACT = "preset.json"
MAX_SIZE_ATTEMPTS = 3
WEIGHT_FAMILY_PREFIXES = ("soft-bin", "autodis")

SPLIT_SCHEMA: dict[str, type[pl.DataType]] = {
    "openml_id": pl.Int64,
    "n_train": pl.Int64,
    "n_val": pl.Int64,
    "n_test": pl.Int64,
}


@dataclass
class BinWeights:
    """Learned soft-bin weights of one feature, from one final-seed run.

    Attributes:
        values: Grid of input values in preprocessed units, shape ``(n_grid,)``.
        weights: Weight of each bin at each grid value, shape
            ``(n_grid, n_bins)``.
    """

    dataset: str
    openml_id: int
    encoder: str
    run_id: str
    seed: int
    feature: str
    feature_index: int
    values: np.ndarray
    weights: np.ndarray


def read_split_sizes(
    client: MlflowClient, studies: pl.DataFrame, notes: list[str]
) -> pl.DataFrame:
    """Return the train, validation and test row counts of every dataset.

    The first of a dataset's parent runs whose ``data.json`` can be read
    supplies the counts. Only the first ``MAX_SIZE_ATTEMPTS`` parents are
    tried, because every parent of a dataset logs the same file and each
    failed download costs a round trip to the tracking server. Datasets
    without counts are left out and named in ``notes``.
    """
    rows = []
    unknown = []
    for (openml_id,), group in studies.group_by("openml_id", maintain_order=True):
        sizes = None
        for run_id in group["run_id"].head(MAX_SIZE_ATTEMPTS):
            sizes = _split_sizes(_read_json(client, run_id, DATA_ARTIFACT))
            if sizes is not None:
                break
        if sizes is None:
            unknown.append(str(openml_id))
            continue
        rows.append({"openml_id": openml_id, **sizes})
    if unknown:
        notes.append(
            f"Times per 1,000 rows are blank where {DATA_ARTIFACT} cannot be "
            f"read: OpenML {', '.join(unknown)}."
        )
    return pl.DataFrame(rows, schema=SPLIT_SCHEMA)


def recorded_normalized_score(
    client: MlflowClient, studies: pl.DataFrame, notes: list[str]
) -> str:
    """Return the ``normalized_score`` that the studies' presets ask for.

    One parent run per preset fingerprint is read (its ``preset.json``). When
    the presets disagree, or none can be read, it returns ``rmse`` and adds the
    reason to ``notes``.
    """
    choices = set()
    for _, group in studies.group_by("preset_fingerprint", maintain_order=True):
        for run_id in group["run_id"].head(MAX_SIZE_ATTEMPTS):
            recorded = _read_json(client, run_id, PRESET_ARTIFACT)
            if isinstance(recorded, dict):
                choices.add(str(recorded.get("normalized_score", "rmse")))
                break
    if len(choices) == 1:
        return choices.pop()
    if choices:
        notes.append(
            f"The presets ask for different normalized scores ({sorted(choices)}); "
            "the report rescales RMSE. Pass --normalized-score to choose."
        )
    return "rmse"


def read_bin_weights(
    client: MlflowClient, finals: pl.DataFrame, notes: list[str]
) -> list[BinWeights]:
    """Return the bin weights logged by the lowest-seed final run of each study.

    Every study of the soft-bin family (names starting with
    ``WEIGHT_FAMILY_PREFIXES``) is checked. Any other encoder is checked on its
    first dataset only, and on the rest when that run has the artifact, so a
    large suite costs one artifact listing per such encoder and not one per
    study.
    """
    found: list[BinWeights] = []
    first_seeds = finals.sort("seed").unique(
        subset=["openml_id", "encoder"], keep="first", maintain_order=True
    )
    for (encoder,), group in first_seeds.sort("encoder", "openml_id").group_by(
        "encoder", maintain_order=True
    ):
        logs_weights = str(encoder).startswith(WEIGHT_FAMILY_PREFIXES)
        for row in group.iter_rows(named=True):
            if not _has_artifact(client, row["run_id"], WEIGHTS_ARTIFACT):
                if logs_weights:
                    continue
                break
            logs_weights = True
            data = _read_json(client, row["run_id"], WEIGHTS_ARTIFACT)
            parsed = _bin_weights(data, row)
            if parsed is None:
                notes.append(
                    f"{WEIGHTS_ARTIFACT} of run {row['run_id']} ({encoder} on "
                    f"{row['dataset']}) is malformed and was not plotted."
                )
                continue
            found.append(parsed)
    return found


def _has_artifact(client: MlflowClient, run_id: str, name: str) -> bool:
    try:
        return name in {info.path for info in client.list_artifacts(run_id)}
    except (MlflowException, OSError) as error:
        logger.warning("Failed to list the artifacts of run %s: %s", run_id, error)
        return False


def _read_json(client: MlflowClient, run_id: str, path: str) -> Any:
    with tempfile.TemporaryDirectory() as folder, quiet_mlflow():
        try:
            local = client.download_artifacts(run_id, path, folder)
            return json.loads(Path(local).read_text())
        except (MlflowException, OSError, ValueError) as error:
            logger.debug("Failed to read %s of run %s: %s", path, run_id, error)
            return None


def _split_sizes(data: Any) -> dict[str, int] | None:
    try:
        sizes = data["split_sizes"]
        return {f"n_{part}": int(sizes[part]) for part in ("train", "val", "test")}
    except (TypeError, KeyError, ValueError):
        return None


def _bin_weights(data: Any, row: dict[str, Any]) -> BinWeights | None:
    try:
        values = np.asarray(data["values"], dtype=float)
        weights = np.asarray(data["weights"], dtype=float)
        feature = str(data.get("feature", "feature"))
        index = int(data.get("feature_index", 0))
    except (TypeError, KeyError, ValueError, AttributeError):
        return None
    if values.ndim != 1 or weights.ndim != 2 or weights.shape[0] != values.size:
        return None
    if values.size < 2 or weights.shape[1] < 1:
        return None
    return BinWeights(
        dataset=row["dataset"],
        openml_id=row["openml_id"],
        encoder=row["encoder"],
        run_id=row["run_id"],
        seed=row["seed"],
        feature=feature,
        feature_index=index,
        values=values,
        weights=weights,
    )
