"""Suites: named lists of OpenML dataset ids, stored as TOML data files.

A suite file looks like this::

    name = "demo"
    description = "..."
    encoders = ["none", "ple-quantile"]   # optional default encoder list

    [[dataset]]
    openml_id = 507
    name = "space_ga"          # for humans; the loader uses the id
    target = "..."             # optional, overrides the default target

Built-in suites live in ``tasks/suites/``; any other path to a TOML file works
too, so a user can copy one and edit it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path


class SuiteError(ValueError):
    """A suite name or file is invalid; the message names it."""


@dataclass(frozen=True)
class SuiteEntry:
    """One dataset of a suite."""

    openml_id: int
    name: str
    target: str | None = None


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
        entries.append(
            SuiteEntry(
                openml_id=openml_id,
                name=str(table.get("name", table["openml_id"])),
                target=table.get("target"),
            )
        )

    ids = [e.openml_id for e in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SuiteError(f"{origin}: OpenML ids listed twice: {duplicates}.")

    return Suite(
        name=str(document.get("name") or Path(origin).stem),
        description=str(document.get("description", "")),
        datasets=tuple(entries),
        encoders=tuple(document.get("encoders", ())),
    )
