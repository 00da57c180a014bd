"""Presets: the numbers of a benchmark protocol, stored as TOML data files.

A preset sets the split, the preprocessing, the tuning budget, the training
loop and the search spaces. Built-in presets live in ``bench/presets/``; a
user copies one, edits it and passes its path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from bench.preset_names import builtin_preset_file, builtin_presets
from tasks.preprocess import QUANTILE_NOISE

if TYPE_CHECKING:
    from encoders.base import Encoder


class PresetError(ValueError):
    """A preset name, file or value is invalid; the message names it."""


@dataclass(frozen=True)
class Preset:
    """One protocol. Field units: fractions of all rows, epochs, rows."""

    name: str
    description: str
    split_seed: int
    test_fraction: float | None
    val_fraction: float | None
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
    split_method: str = "fractions"
    train_fraction: float | None = None
    val_share: float | None = None
    val_cap: int | None = None
    test_cap: int | None = None
    resamples: int | str = 1
    quantile_noise: float = QUANTILE_NOISE
    normalized_score: str = "rmse"
    # How final seeds train: "auto", True (as one vectorized model) or False
    # (one after another); see `bench.vectorized.resolve_vectorized`.
    vectorized_seeds: bool | str = "auto"
    # Suite that `bench run` uses when no --suite is given: a name, or a path
    # that a preset file gives relative to itself. None means demo.
    suite: str | None = None

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
        # vectorized_seeds changes how final seeds run, not what a trial computes.
        # The default suite only chooses the datasets of a run.
        ignored = ("name", "description", "n_trials", "n_seeds", "vectorized_seeds")
        for key in (*ignored, "suite"):
            data.pop(key)
        # Fields added after the first presets are left out while they keep
        # their default, so studies of older presets keep their keys and resume.
        for key, default in LATER_FIELD_DEFAULTS.items():
            if data.get(key) == default:
                data.pop(key)
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_preset(name_or_path: str = "default") -> Preset:
    """Load a built-in preset by name, or a preset file by path.

    A value that contains a path separator or ends in ``.toml`` is read as a
    path, anything else as the name of a built-in preset.

    Raises:
        PresetError: if the value is empty, the preset or file does not exist,
            a value is invalid, or a categorical choice of an encoder's space
            fails that encoder's parameter check.
    """
    if not name_or_path.strip():
        raise PresetError(
            "The preset name is empty. Give a built-in preset "
            f"({', '.join(builtin_presets())}) or the path of a preset .toml file."
        )
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            problem = "is not a file" if path.exists() else "was not found"
            raise PresetError(
                f"Preset file {path} {problem}. Check the path, or give a built-in "
                f"preset by name: {', '.join(builtin_presets())}."
            )
        text, origin = path.read_text(), str(path)
    else:
        resource = builtin_preset_file(name_or_path)
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
        preset = _parse(document, origin)
    except KeyError as missing:
        raise PresetError(f"{origin}: missing key {missing}.") from None
    from encoders import available_encoders

    check_encoder_choices(preset, available_encoders(), origin)
    if _looks_like_path(name_or_path):
        preset = _suite_beside(preset, Path(name_or_path).resolve().parent)
    return preset


def _suite_beside(preset: Preset, folder: Path) -> Preset:
    """Return ``preset`` with a relative suite path made relative to ``folder``.

    A preset file names its suite file from where it lies, so the suite is
    found whatever the current folder is.
    """
    suite = preset.suite
    if suite is None or not _looks_like_path(suite) or Path(suite).is_absolute():
        return preset
    return dataclasses.replace(preset, suite=str(folder / suite))


def _looks_like_path(value: str) -> bool:
    separators = {os.sep, os.altsep} - {None}
    return value.endswith(".toml") or any(sep in value for sep in separators)


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

    def number(table: dict[str, Any], section: str, key: str) -> float:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PresetError(
                f"{origin}: [{section}] {key} = {value!r} is invalid; use a number."
            )
        return float(value)

    def fraction(key: str) -> float:
        return number(split, "split", key)

    def optional_int(key: str) -> int | None:
        return integer(split, "split", key) if key in split else None

    method = str(split.get("method", "fractions"))
    if method not in SPLIT_METHODS:
        raise PresetError(
            f"{origin}: [split] method = {method!r} is invalid; use one of "
            f"{', '.join(SPLIT_METHODS)}."
        )
    fractions = method == "fractions"
    other = "capped-train" if fractions else "fractions"
    unused = sorted(set(split) & METHOD_KEYS[other])
    if unused:
        raise PresetError(
            f"{origin}: [split] sets {unused}, which method = {method!r} does not "
            f"use; remove them or set method = {other!r}."
        )
    preprocess = doc["preprocess"]
    preset = Preset(
        name=str(doc.get("name", Path(origin).stem)),
        description=str(doc.get("description", "")),
        split_seed=integer(split, "split", "seed"),
        test_fraction=fraction("test_fraction") if fractions else None,
        val_fraction=fraction("val_fraction") if fractions else None,
        train_cap=optional_int("train_cap"),
        deduplicate=_flag(split, "split", "deduplicate", origin),
        numeric_transform=str(preprocess["numeric_transform"]),
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
        split_method=method,
        train_fraction=None if fractions else fraction("train_fraction"),
        val_share=None if fractions else fraction("val_share"),
        val_cap=optional_int("val_cap"),
        test_cap=optional_int("test_cap"),
        resamples=_resamples(split.get("resamples", 1), origin),
        quantile_noise=number(preprocess, "preprocess", "quantile_noise")
        if "quantile_noise" in preprocess
        else QUANTILE_NOISE,
        normalized_score=str(doc.get("report", {}).get("normalized_score", "rmse")),
        vectorized_seeds=_vectorized(final.get("vectorized", "auto"), origin),
        suite=str(doc["suite"]) if "suite" in doc else None,
    )
    _check_values(preset, origin)
    return preset


def _flag(table: dict[str, Any], section: str, key: str, origin: str) -> bool:
    """Return the boolean ``table[key]`` (false when absent).

    Raises:
        PresetError: if the value is not true or false. A string such as
            "false" would otherwise count as true.
    """
    value = table.get(key, False)
    if isinstance(value, bool):
        return value
    raise PresetError(
        f"{origin}: [{section}] {key} = {value!r} is invalid; use true or false "
        "(without quotes)."
    )


def _vectorized(value: Any, origin: str) -> bool | str:
    if value == "auto" or isinstance(value, bool):
        return value
    raise PresetError(
        f'{origin}: [final] vectorized = {value!r} is invalid; use "auto", true '
        "or false."
    )


def _resamples(value: Any, origin: str) -> int | str:
    if value == RESAMPLES_AUTO:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PresetError(
            f"{origin}: [split] resamples = {value!r} is invalid; use a positive "
            f"integer or {RESAMPLES_AUTO!r}."
        )
    return value


def _check_values(preset: Preset, origin: str) -> None:
    """Raise `PresetError` for a value outside its allowed range."""
    if preset.normalized_score not in NORMALIZED_SCORES:
        raise PresetError(
            f"{origin}: [report] normalized_score = {preset.normalized_score!r} "
            f"is invalid; use one of {', '.join(NORMALIZED_SCORES)}."
        )
    if preset.quantile_noise < 0:
        raise PresetError(
            f"{origin}: [preprocess] quantile_noise = {preset.quantile_noise} is "
            "invalid; use 0 or a positive fraction of each column's standard "
            "deviation."
        )
    if preset.split_method == "fractions":
        _check_fractions(preset, origin)
    else:
        _check_capped(preset, origin)
    if preset.numeric_transform not in NUMERIC_TRANSFORMS:
        raise PresetError(
            f"{origin}: [preprocess] numeric_transform = "
            f"{preset.numeric_transform!r} is invalid; use one of "
            f"{', '.join(NUMERIC_TRANSFORMS)}."
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
    _check_backbone_ranges(preset.backbone_space, origin)


# Valid values of the backbone parameters: the range as text and a test of one
# value. `bench.model.MLP` needs at least one block of at least one unit, and
# nn.Dropout a probability in [0, 1]. Dropout 1 is excluded because it zeroes
# every hidden unit. AdamW rejects a negative learning rate or weight decay,
# and a learning rate of 0 never trains.
BACKBONE_RANGES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "n_blocks": ("an integer >= 1", lambda v: v >= 1 and float(v).is_integer()),
    "d_block": ("an integer >= 1", lambda v: v >= 1 and float(v).is_integer()),
    "dropout": ("0 <= dropout < 1", lambda v: 0 <= v < 1),
    "lr": ("lr > 0", lambda v: v > 0),
    "weight_decay": ("weight_decay >= 0", lambda v: v >= 0),
}


def _check_backbone_ranges(space: dict[str, BaseDistribution], origin: str) -> None:
    """Raise `PresetError` if a backbone distribution can draw an invalid value.

    Int and float distributions are checked at both ends, categorical and
    fixed ones at every choice.
    """
    for parameter, (valid, is_valid) in BACKBONE_RANGES.items():
        for label, value in _distribution_values(space[parameter]):
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (is_number and is_valid(value)):
                raise PresetError(
                    f"{origin}: [backbone.space] {parameter} has the {label} "
                    f"{value!r}, outside the valid range ({valid}). Change the "
                    "range to lie within it."
                )


def _distribution_values(distribution: BaseDistribution) -> list[tuple[str, Any]]:
    """Return the values of ``distribution`` that a range check needs, labelled.

    The ends of an int or float range, or each choice of a categorical one.
    """
    if isinstance(distribution, IntDistribution | FloatDistribution):
        return [("low end", distribution.low), ("high end", distribution.high)]
    if isinstance(distribution, CategoricalDistribution):
        return [("choice", choice) for choice in distribution.choices]
    return []


def _check_fractions(preset: Preset, origin: str) -> None:
    test, val = preset.test_fraction or 0.0, preset.val_fraction or 0.0
    if not (0 < test < 1 and 0 < val < 1 and test + val < 1):
        raise PresetError(
            f"{origin}: [split] test_fraction ({preset.test_fraction}) and "
            f"val_fraction ({preset.val_fraction}) must each lie between 0 and 1 "
            "and sum to less than 1."
        )


def _check_capped(preset: Preset, origin: str) -> None:
    for key in ("train_fraction", "val_share"):
        value = getattr(preset, key)
        if not 0 < value < 1:
            raise PresetError(
                f"{origin}: [split] {key} = {value} is invalid; it must lie "
                "strictly between 0 and 1."
            )
    for key in ("train_cap", "val_cap", "test_cap"):
        value = getattr(preset, key)
        if value is not None and value < 1:
            raise PresetError(
                f"{origin}: [split] {key} = {value} is invalid; use 1 or more, or "
                "leave it out for no cap."
            )


NUMERIC_TRANSFORMS = ("quantile-normal", "standard", "none")
# "fractions": test_fraction and val_fraction of all rows, the rest training.
# "capped-train": train_fraction of all rows (at most train_cap), then
# val_share of the remaining rows for validation and the others for test.
SPLIT_METHODS = ("fractions", "capped-train")
# [split] keys that only one method reads, by method.
METHOD_KEYS = {
    "fractions": {"test_fraction", "val_fraction"},
    "capped-train": {"train_fraction", "val_share", "val_cap", "test_cap"},
}
# "auto" picks the number of resamples from the test size (see
# `tasks.splits.resamples_for_test_size`).
RESAMPLES_AUTO = "auto"
# Metric that `normalized_score` rescales per dataset (see `reports.tables`).
NORMALIZED_SCORES = ("rmse", "r2")
LATER_FIELD_DEFAULTS: dict[str, Any] = {
    "split_method": "fractions",
    "train_fraction": None,
    "val_share": None,
    "val_cap": None,
    "test_cap": None,
    "resamples": 1,
    "quantile_noise": QUANTILE_NOISE,
    "normalized_score": "rmse",
}
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
        "report",
        "suite",
    },
    "split": {
        "seed",
        "test_fraction",
        "val_fraction",
        "train_cap",
        "deduplicate",
        "method",
        "train_fraction",
        "val_share",
        "val_cap",
        "test_cap",
        "resamples",
    },
    "preprocess": {"numeric_transform", "quantile_noise"},
    "report": {"normalized_score"},
    "tuning": {"n_trials", "sampler_seed", "n_startup_trials", "pruner_warmup_epochs"},
    "training": {"max_epochs", "patience", "batch_size", "eval_batch_size"},
    "final": {"n_seeds", "vectorized"},
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
        accepted = encoders[name].parameter_names()
        unknown = sorted(set(space) - accepted)
        if unknown:
            raise PresetError(
                f"Preset {preset.name!r}: [encoders.{name}.space] sets {unknown}, "
                f"which {name} does not accept; it accepts {sorted(accepted)}."
            )


def check_encoder_choices(
    preset: Preset, encoders: dict[str, type[Encoder]], origin: str
) -> None:
    """Raise `PresetError` if a value of an encoder's space fails that encoder's
    own parameter check.

    The values checked are each choice of a categorical or fixed parameter and
    the low and high ends of an int or float range. Each value is checked
    alone: the encoder is constructed from its defaults with that one value
    replaced, so its ``check_params`` runs without fitting anything. Encoders
    and parameters that the encoders do not know are left to
    `check_encoder_spaces`, and so is an encoder whose defaults alone fail
    its check (a plug-in may leave tuned parameters without defaults).

    Args:
        encoders: Encoder classes by registry name.
        origin: The preset file or built-in preset, named in the message.
    """
    from encoders.base import EncoderError

    for name, space in preset.encoder_spaces.items():
        cls = encoders.get(name)
        if cls is None or not _defaults_pass(cls):
            continue
        accepted = cls.parameter_names()
        for parameter, distribution in space.items():
            if parameter not in accepted:
                continue
            # NOTE: only the ends of a range are checked, so a check that
            # rejects values inside a range (say, odd numbers) is not caught.
            for label, value in _distribution_values(distribution):
                try:
                    cls(**{**cls.defaults(), parameter: value})
                except EncoderError as error:
                    raise PresetError(
                        f"{origin}: [encoders.{name}.space] {parameter} has the "
                        f"{label} {value!r}, which encoder {name} rejects: {error}"
                    ) from None


def _defaults_pass(cls: type[Encoder]) -> bool:
    from encoders.base import EncoderError

    try:
        cls(**cls.defaults())
    except (EncoderError, KeyError):
        return False
    return True


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
