"""Names of the built-in presets, readable without importing `bench.config`.

`bench.cli` builds its help text from these names on every start, and
`bench.config` pulls in scikit-learn and Optuna, which take seconds to import.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable


def builtin_preset_file(name: str) -> Traversable:
    """Return the packaged file of the built-in preset ``name``, which may not exist."""
    return resources.files("bench") / "presets" / f"{name}.toml"


def packaged_names(folder: str) -> list[str]:
    """Return the sorted names of the ``.toml`` files in a folder of `bench`."""
    files = (resources.files("bench") / folder).iterdir()
    return sorted(
        p.name.removesuffix(".toml") for p in files if p.name.endswith(".toml")
    )


def builtin_presets() -> list[str]:
    """Return the names of the presets shipped with the package, sorted."""
    return packaged_names("presets")
