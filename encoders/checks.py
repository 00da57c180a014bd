"""Parameter checks that raise `EncoderError` with the value and a valid range."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

from encoders.base import EncoderError


def require_int(
    encoder: str, params: Mapping[str, Any], name: str, minimum: int
) -> int:
    """Return ``params[name]`` as an int, or raise if it is not an integer >= minimum.

    A float with an integral value (``32.0``, as TOML or JSON may produce) is
    accepted. Booleans are rejected although Python treats them as integers.
    """
    value = params[name]
    integral = isinstance(value, Integral) or (
        isinstance(value, float) and value.is_integer()
    )
    if isinstance(value, bool) or not integral or int(value) < minimum:
        raise EncoderError(
            f"Encoder {encoder!r}: {name}={value!r} is invalid; "
            f"use an integer >= {minimum}."
        )
    return int(value)


def require_positive(
    encoder: str, params: Mapping[str, Any], name: str, *, allow_zero: bool = False
) -> float:
    """Return ``params[name]`` as a float, or raise unless it is finite and > 0.

    With ``allow_zero``, 0 is accepted as well.
    """
    value = params[name]
    valid = (
        not isinstance(value, bool)
        and isinstance(value, Real)
        and math.isfinite(value)
        and (value > 0 or (allow_zero and value == 0))
    )
    if not valid:
        bound = ">= 0" if allow_zero else "> 0"
        raise EncoderError(
            f"Encoder {encoder!r}: {name}={value!r} is invalid; "
            f"use a finite number {bound}."
        )
    return float(value)


def require_finite(encoder: str, params: Mapping[str, Any], name: str) -> float:
    """Return ``params[name]`` as a float, or raise unless it is a finite number."""
    value = params[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
    ):
        raise EncoderError(
            f"Encoder {encoder!r}: {name}={value!r} is invalid; use a finite number."
        )
    return float(value)


def require_choice(
    encoder: str, params: Mapping[str, Any], name: str, choices: Sequence[Any]
) -> Any:
    """Return ``params[name]``, or raise unless it is one of ``choices``."""
    value = params[name]
    if value not in choices:
        raise EncoderError(
            f"Encoder {encoder!r}: {name}={value!r} is invalid; "
            f"use one of {list(choices)}."
        )
    return value


def require_fitted(encoder: Any, key: str, n_features: int) -> Any:
    """Return ``encoder.state[key]``, or raise if fit() has not run or does not match.

    Args:
        encoder: The encoder instance; its ``state`` contains one entry per feature
            under ``key``.
        key: The state entry that ``fit`` stores.
        n_features: The number of features that ``build`` was called with.
    """
    if key not in encoder.state:
        raise EncoderError(
            f"Encoder {encoder.name!r} has no fitted {key}; call fit(x_train, "
            "y_train) before build()."
        )
    fitted = encoder.state[key]
    if len(fitted) != n_features:
        raise EncoderError(
            f"Encoder {encoder.name!r} was fitted on {len(fitted)} features but "
            f"build() got n_features={n_features}; fit and build on the same columns."
        )
    return fitted
