"""Suites: named lists of OpenML dataset ids, stored as TOML data files.

A suite file looks like this::

    name = "demo"
    description = "..."
    encoders = ["none", "ple-quantile"]   # optional default encoder list

    [[dataset]]
    openml_id = 507
    name = "space_ga"          # for humans; the loader uses the id
    target = "..."             # optional, overrides the default target
    target_transform = "log1p" # optional, see below

``target_transform`` says how the stored target was derived from the target a
publication reports on. ``"log1p"`` means the stored value is
``log1p(original)``, so loading maps it back with ``expm1``; ``"log"`` means
``log(original)``, mapped back with ``exp``. The inverse is applied right after
loading, before splitting, so every metric is in the original units.

Built-in suites live in ``tasks/suites/``; any other path to a TOML file works
too, so a user can copy one and edit it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

# Inverse of each allowed ``target_transform``: stored value -> original value.
TARGET_INVERSES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log1p": np.expm1,
    "log": np.exp,
}


# A suite's name is a folder name under the results folder (reports/NAME) and
# an MLflow experiment name, so it may contain only these characters.
SUITE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SUITE_NAME_CHARACTERS = (
    "letters A-Z and a-z, digits, '.', '_' and '-', starting with a letter or "
    "digit, with no '..'"
)


class SuiteError(ValueError):
    """A suite name or file is invalid; the message names it."""


@dataclass(frozen=True)
class SuiteEntry:
    """One dataset of a suite."""

    openml_id: int
    name: str
    target: str | None = None
    target_transform: str | None = None


@dataclass(frozen=True)
class Suite:
    """A named list of datasets and the encoders run on them by default."""

    name: str
    description: str
    datasets: tuple[SuiteEntry, ...]
    encoders: tuple[str, ...] = field(default_factory=tuple)


def builtin_suites() -> list[str]:
    """Return the names of the suites shipped with the package."""
    folder = resources.files("tasks") / "suites"
    return sorted(
        p.name.removesuffix(".toml")
        for p in folder.iterdir()
        if p.name.endswith(".toml")
    )


def load_suite(name_or_path: str) -> Suite:
    """Load a built-in suite by name, or a suite file by path.

    Raises:
        SuiteError: if the suite does not exist or its file is malformed.
    """
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise SuiteError(
                f"Suite file {path} does not exist. Pass the path of an existing "
                f".toml file or a built-in suite: {', '.join(builtin_suites())}."
            )
        text = path.read_text()
        origin = str(path)
    else:
        resource = resources.files("tasks") / "suites" / f"{name_or_path}.toml"
        if not resource.is_file():
            raise SuiteError(
                f"Unknown suite {name_or_path!r}. Built-in suites: "
                f"{', '.join(builtin_suites())}; or pass the path of a .toml file."
            )
        text = resource.read_text()
        origin = f"built-in suite {name_or_path}"
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"{origin} is not valid TOML: {error}.") from None
    return _parse(document, origin)


def _parse(document: dict, origin: str) -> Suite:
    tables = document.get("dataset", [])
    if not tables:
        raise SuiteError(f"{origin}: the suite lists no [[dataset]] tables.")

    entries = []
    for index, table in enumerate(tables):
        if "openml_id" not in table:
            raise SuiteError(
                f"{origin}: [[dataset]] number {index + 1} has no openml_id."
            )
        try:
            openml_id = int(table["openml_id"])
        except (TypeError, ValueError):
            raise SuiteError(
                f"{origin}: [[dataset]] number {index + 1} has openml_id "
                f"{table['openml_id']!r}, which is not an integer."
            ) from None
        transform = table.get("target_transform")
        if transform is not None and transform not in TARGET_INVERSES:
            raise SuiteError(
                f"{origin}: [[dataset]] number {index + 1} (OpenML {openml_id}) "
                f"has target_transform = {transform!r}, which is invalid; use one "
                f"of {', '.join(TARGET_INVERSES)} or leave it out."
            )
        unknown = sorted(set(table) - DATASET_KEYS)
        if unknown:
            raise SuiteError(
                f"{origin}: [[dataset]] number {index + 1} (OpenML {openml_id}) "
                f"has unknown key(s) {unknown}; allowed: {sorted(DATASET_KEYS)}."
            )
        entries.append(
            SuiteEntry(
                openml_id=openml_id,
                name=str(table.get("name", table["openml_id"])),
                target=table.get("target"),
                target_transform=transform,
            )
        )

    ids = [e.openml_id for e in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SuiteError(f"{origin}: OpenML ids listed twice: {duplicates}.")

    return Suite(
        name=_suite_name(document, origin),
        description=str(document.get("description", "")),
        datasets=tuple(entries),
        encoders=tuple(document.get("encoders", ())),
    )


DATASET_KEYS = {"openml_id", "name", "target", "target_transform"}


def _suite_name(document: dict, origin: str) -> str:
    """Return the suite's ``name`` field, else the file's stem.

    Raises:
        SuiteError: if the name is not a safe folder name (see
            `SUITE_NAME_PATTERN`), because the report folder
            ``RESULTS/reports/NAME`` would otherwise lie outside the results
            folder or fail to be created.
    """
    if document.get("name"):
        name = str(document["name"])
        source = f"the field name = {name!r}"
        fix = "Change the name field"
    else:
        name = Path(origin).stem
        source = f"the suite name {name!r} (the file name, as name is not set)"
        fix = "Set the name field"
    if SUITE_NAME_PATTERN.fullmatch(name) and ".." not in name:
        return name
    raise SuiteError(
        f"{origin}: {source} is invalid, because the name becomes a folder "
        f"under the results folder. {fix} to use only {SUITE_NAME_CHARACTERS}."
    )


def invert_target_transform(
    frame: pl.DataFrame, target: str, transform: str | None, dataset: str = ""
) -> pl.DataFrame:
    """Map the stored target column back to the original target's units.

    Args:
        frame: The loaded table.
        target: Name of the target column.
        transform: A key of `TARGET_INVERSES`, or None to return ``frame``
            unchanged.
        dataset: Name of the dataset, for error messages.

    Raises:
        SuiteError: if ``transform`` is not a key of `TARGET_INVERSES`, or if
            the inverse turns a finite stored value into an infinite one
            (the stored target was then not transformed that way).
    """
    if transform is None:
        return frame
    if transform not in TARGET_INVERSES:
        raise SuiteError(
            f"target_transform {transform!r} is invalid; use one of "
            f"{', '.join(TARGET_INVERSES)}."
        )
    stored = frame[target].cast(pl.Float64).to_numpy()
    with np.errstate(over="ignore"):
        original = TARGET_INVERSES[transform](stored)
    overflowed = np.isfinite(stored) & ~np.isfinite(original)
    if overflowed.any():
        raise SuiteError(
            f"{dataset or 'Dataset'}: target_transform = {transform!r} turns "
            f"{int(overflowed.sum())} finite values of target {target!r} (largest "
            f"{np.nanmax(stored[overflowed]):.6g}) into infinity, so the stored "
            f"target is probably not {transform} of the original. Remove "
            "target_transform from the suite file or correct it."
        )
    return frame.with_columns(pl.Series(target, original, dtype=pl.Float64))
