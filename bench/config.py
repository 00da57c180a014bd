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
        for key, value in changes.items():
            if value < 1:
                raise PresetError(f"--{key.replace('_', '-')}={value} must be >= 1.")
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
        return _parse(tomllib.loads(text), origin)
    except KeyError as missing:
        raise PresetError(f"{origin}: missing key {missing}.") from None


def _parse(doc: dict[str, Any], origin: str) -> Preset:
    split, tuning = doc["split"], doc["tuning"]
    training, final = doc["training"], doc["final"]
    preset = Preset(
        name=str(doc.get("name", Path(origin).stem)),
        description=str(doc.get("description", "")),
        split_seed=int(split["seed"]),
        test_fraction=float(split["test_fraction"]),
        val_fraction=float(split["val_fraction"]),
        train_cap=int(split["train_cap"]) if "train_cap" in split else None,
        deduplicate=bool(split.get("deduplicate", False)),
        numeric_transform=str(doc["preprocess"]["numeric_transform"]),
        n_trials=int(tuning["n_trials"]),
        sampler_seed=int(tuning["sampler_seed"]),
        n_startup_trials=int(tuning.get("n_startup_trials", 10)),
        pruner_warmup_epochs=int(tuning.get("pruner_warmup_epochs", 5)),
        max_epochs=int(training["max_epochs"]),
        patience=int(training["patience"]),
        batch_size=int(training["batch_size"]),
        eval_batch_size=int(training.get("eval_batch_size", 8192)),
        n_seeds=int(final["n_seeds"]),
        backbone_space=parse_space(doc["backbone"]["space"], f"{origin} [backbone]"),
        encoder_spaces={
            name: parse_space(table.get("space", {}), f"{origin} [encoders.{name}]")
            for name, table in doc.get("encoders", {}).items()
        },
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
