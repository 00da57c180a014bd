"""Presets: the numbers of a benchmark protocol, stored as TOML data files.

A preset sets the split, the preprocessing, the tuning budget, the training
loop and the search spaces. Built-in presets live in ``bench/presets/``; a
user copies one, edits it and passes its path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)


class PresetError(ValueError):
    """A preset name, file or value is invalid; the message names it."""


@dataclass(frozen=True)
class Preset:
    """One protocol. Field units: fractions of all rows, epochs, rows."""

    name: str
    description: str
    split_seed: int
    test_fraction: float
    val_fraction: float
    train_cap: int | None
    deduplicate: bool
    numeric_transform: str
    n_trials: int
    sampler_seed: int
    n_startup_trials: int
    pruner_warmup_epochs: int
    max_epochs: int
    patience: int
    batch_size: int
    eval_batch_size: int
    n_seeds: int
    backbone_space: dict[str, BaseDistribution]
    encoder_spaces: dict[str, dict[str, BaseDistribution]] = field(default_factory=dict)

    def with_budget(
        self,
        n_trials: int | None = None,
        n_seeds: int | None = None,
        max_epochs: int | None = None,
    ) -> Preset:
        """Return a copy with the given budget values replaced."""
        changes = {
            k: v
            for k, v in {
                "n_trials": n_trials,
                "n_seeds": n_seeds,
                "max_epochs": max_epochs,
            }.items()
            if v is not None
        }
        flags = {
            "n_trials": "--trials",
            "n_seeds": "--seeds",
            "max_epochs": "--max-epochs",
        }
        for key, value in changes.items():
            if value < 1:
                raise PresetError(f"{flags[key]} {value} is invalid; use 1 or more.")
        return dataclasses.replace(self, **changes)

    def record(self) -> dict[str, Any]:
        """Return every value as plain JSON-ready data, for the run's record."""
        data = dataclasses.asdict(self)
        data["backbone_space"] = _spaces_to_text(self.backbone_space)
        data["encoder_spaces"] = {
            k: _spaces_to_text(v) for k, v in self.encoder_spaces.items()
        }
        return data

    def study_fingerprint(self) -> str:
        """Return a hash of every value that changes what a trial computes.

        The trial and seed budgets are left out, so raising them continues the
        same study instead of starting a new one.
        """
        data = self.record()
        for key in ("name", "description", "n_trials", "n_seeds"):
            data.pop(key)
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def builtin_presets() -> list[str]:
    """Return the names of the presets shipped with the package."""
    folder = resources.files("bench") / "presets"
    return sorted(
        p.name.removesuffix(".toml")
        for p in folder.iterdir()
        if p.name.endswith(".toml")
    )


def load_preset(name_or_path: str = "default") -> Preset:
    """Load a built-in preset by name, or a preset file by path.

    Raises:
        PresetError: if the preset does not exist or a value is invalid.
    """
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        text, origin = path.read_text(), str(path)
    else:
        resource = resources.files("bench") / "presets" / f"{name_or_path}.toml"
        if not resource.is_file():
            raise PresetError(
                f"Unknown preset {name_or_path!r}. Built-in presets: "
                f"{', '.join(builtin_presets())}; or pass the path of a .toml file."
            )
        text, origin = resource.read_text(), f"built-in preset {name_or_path}"
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PresetError(f"{origin}: invalid TOML: {error}.") from None
    _check_keys(document, origin)
    try:
        return _parse(document, origin)
    except KeyError as missing:
        raise PresetError(f"{origin}: missing key {missing}.") from None


def _parse(doc: dict[str, Any], origin: str) -> Preset:
    split, tuning = doc["split"], doc["tuning"]
    training, final = doc["training"], doc["final"]

    def integer(table: dict[str, Any], section: str, key: str, default=None) -> int:
        value = table.get(key, default)
        if value is None:
            raise KeyError(f"[{section}] {key}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise PresetError(
                f"{origin}: [{section}] {key} = {value!r} is invalid; use an integer."
            )
        return value

    def fraction(key: str) -> float:
        value = split[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PresetError(
                f"{origin}: [split] {key} = {value!r} is invalid; use a number."
            )
        return float(value)

    preset = Preset(
        name=str(doc.get("name", Path(origin).stem)),
        description=str(doc.get("description", "")),
        split_seed=integer(split, "split", "seed"),
        test_fraction=fraction("test_fraction"),
        val_fraction=fraction("val_fraction"),
        train_cap=integer(split, "split", "train_cap")
        if "train_cap" in split
        else None,
        deduplicate=bool(split.get("deduplicate", False)),
        numeric_transform=str(doc["preprocess"]["numeric_transform"]),
        n_trials=integer(tuning, "tuning", "n_trials"),
        sampler_seed=integer(tuning, "tuning", "sampler_seed"),
        n_startup_trials=integer(tuning, "tuning", "n_startup_trials", 10),
        pruner_warmup_epochs=integer(tuning, "tuning", "pruner_warmup_epochs", 5),
        max_epochs=integer(training, "training", "max_epochs"),
        patience=integer(training, "training", "patience"),
        batch_size=integer(training, "training", "batch_size"),
        eval_batch_size=integer(training, "training", "eval_batch_size", 8192),
        n_seeds=integer(final, "final", "n_seeds"),
        backbone_space=parse_space(doc["backbone"]["space"], f"{origin} [backbone]"),
        encoder_spaces={
            name: parse_space(table.get("space", {}), f"{origin} [encoders.{name}]")
            for name, table in doc.get("encoders", {}).items()
        },
    )
    if preset.numeric_transform not in NUMERIC_TRANSFORMS:
        raise PresetError(
            f"{origin}: [preprocess] numeric_transform = "
            f"{preset.numeric_transform!r} is invalid; use one of "
            f"{', '.join(NUMERIC_TRANSFORMS)}."
        )
    total = preset.test_fraction + preset.val_fraction
    if not (0 < preset.test_fraction < 1 and 0 < preset.val_fraction < 1 and total < 1):
        raise PresetError(
            f"{origin}: [split] test_fraction ({preset.test_fraction}) and "
            f"val_fraction ({preset.val_fraction}) must each lie between 0 and 1 "
            "and sum to less than 1."
        )
    for key in ("n_trials", "max_epochs", "patience", "batch_size", "n_seeds"):
        if getattr(preset, key) < 1:
            raise PresetError(f"{origin}: {key}={getattr(preset, key)} must be >= 1.")
    required = {"n_blocks", "d_block", "dropout", "lr", "weight_decay"}
    if not required <= set(preset.backbone_space):
        raise PresetError(
            f"{origin}: [backbone.space] must define {sorted(required)}; it lacks "
            f"{sorted(required - set(preset.backbone_space))}."
        )
    return preset


NUMERIC_TRANSFORMS = ("quantile-normal", "standard", "none")
KNOWN_KEYS: dict[str, set[str]] = {
    "": {
        "name",
        "description",
        "split",
        "preprocess",
        "tuning",
        "training",
        "final",
        "backbone",
        "encoders",
    },
    "split": {"seed", "test_fraction", "val_fraction", "train_cap", "deduplicate"},
    "preprocess": {"numeric_transform"},
    "tuning": {"n_trials", "sampler_seed", "n_startup_trials", "pruner_warmup_epochs"},
    "training": {"max_epochs", "patience", "batch_size", "eval_batch_size"},
    "final": {"n_seeds"},
    "backbone": {"space"},
}


def _check_keys(document: dict[str, Any], origin: str) -> None:
    """Raise `PresetError` for a key the preset format does not define, so a
    misspelled optional key cannot fall back to its default unnoticed."""
    for section, allowed in KNOWN_KEYS.items():
        table = document if not section else document.get(section, {})
        unknown = sorted(set(table) - allowed)
        if unknown:
            where = f"[{section}]" if section else "the top level"
            raise PresetError(
                f"{origin}: unknown key(s) {unknown} in {where}; allowed: "
                f"{sorted(allowed)}."
            )


def check_encoder_spaces(preset: Preset, encoders: dict[str, Any]) -> None:
    """Raise `PresetError` unless every ``[encoders.NAME.space]`` override names a
    known encoder and parameters that encoder accepts.

    Args:
        encoders: Encoder classes by registry name.
    """
    for name, space in preset.encoder_spaces.items():
        if name not in encoders:
            raise PresetError(
                f"Preset {preset.name!r}: [encoders.{name}] names an unknown "
                f"encoder; known encoders: {', '.join(sorted(encoders))}."
            )
        accepted = set(encoders[name].search_space()) | set(encoders[name].defaults())
        unknown = sorted(set(space) - accepted)
        if unknown:
            raise PresetError(
                f"Preset {preset.name!r}: [encoders.{name}.space] sets {unknown}, "
                f"which {name} does not accept; it accepts {sorted(accepted)}."
            )


def parse_space(table: dict[str, Any], origin: str) -> dict[str, BaseDistribution]:
    """Turn a TOML table of ``{type=..., low=..., high=...}`` into distributions.

    Supported types: ``int`` and ``float`` (with ``low``, ``high``, optional
    ``log`` and ``step``), ``categorical`` (with ``choices``) and ``fixed``
    (with ``value``, a single choice).
    """
    space: dict[str, BaseDistribution] = {}
    for name, spec in table.items():
        kind = spec.get("type")
        try:
            if kind == "int":
                space[name] = IntDistribution(
                    int(spec["low"]),
                    int(spec["high"]),
                    log=bool(spec.get("log")),
                    step=int(spec.get("step", 1)),
                )
            elif kind == "float":
                space[name] = FloatDistribution(
                    float(spec["low"]),
                    float(spec["high"]),
                    log=bool(spec.get("log")),
                    step=spec.get("step"),
                )
            elif kind == "categorical":
                space[name] = CategoricalDistribution(list(spec["choices"]))
            elif kind == "fixed":
                space[name] = CategoricalDistribution([spec["value"]])
            else:
                raise PresetError(
                    f"{origin}: parameter {name!r} has type {kind!r}; use int, "
                    "float, categorical or fixed."
                )
        except KeyError as missing:
            raise PresetError(
                f"{origin}: parameter {name!r} lacks the key {missing}."
            ) from None
        except ValueError as error:
            if isinstance(error, PresetError):
                raise
            raise PresetError(f"{origin}: parameter {name!r}: {error}") from None
    return space


def _spaces_to_text(space: dict[str, BaseDistribution]) -> dict[str, str]:
    return {name: repr(dist) for name, dist in space.items()}
