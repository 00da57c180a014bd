"""Discovery of encoders through the ``bench.encoders`` entry-point group.

A third-party package adds an encoder by declaring, in its own
``pyproject.toml``::

    [project.entry-points."bench.encoders"]
    my-encoder = "my_package.module:MyEncoder"

where ``MyEncoder`` subclasses `encoders.base.Encoder`.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from encoders.autodis import AutoDisEncoder
from encoders.base import Encoder, EncoderError
from encoders.hard_bins import BinEmbeddingEncoder, OneHotBinsEncoder
from encoders.linear import LinearEncoder, LinearReLUEncoder
from encoders.periodic import PeriodicEncoder, PLREncoder, PLRLiteEncoder
from encoders.plain import PlainEncoder
from encoders.ple import (
    QuantilePLEEncoder,
    QuantilePLEEncodingEncoder,
    QuantilePLELinearEncoder,
    TreePLEEncoder,
    TreePLEEncodingEncoder,
    TreePLELinearEncoder,
)
from encoders.soft_bins import SoftBinsEncoder

logger = logging.getLogger(__name__)

GROUP = "bench.encoders"
BUILTIN: dict[str, type[Encoder]] = {
    cls.name: cls
    for cls in (
        PlainEncoder,
        OneHotBinsEncoder,
        BinEmbeddingEncoder,
        QuantilePLEEncoder,
        QuantilePLELinearEncoder,
        QuantilePLEEncodingEncoder,
        TreePLEEncoder,
        TreePLELinearEncoder,
        TreePLEEncodingEncoder,
        LinearEncoder,
        LinearReLUEncoder,
        PeriodicEncoder,
        PLREncoder,
        PLRLiteEncoder,
        SoftBinsEncoder,
        AutoDisEncoder,
    )
}


def available_encoders() -> dict[str, type[Encoder]]:
    """Return every encoder by name: the built-ins plus installed plug-ins.

    A plug-in that fails to import is skipped with a logged error, so one broken
    package does not hide the others.
    """
    found = dict(BUILTIN)
    for point in entry_points(group=GROUP):
        if point.name in BUILTIN:
            continue
        try:
            cls = point.load()
        except Exception:  # a third-party import can raise anything
            logger.exception(
                "Encoder plug-in %r (%s) failed to load", point.name, point.value
            )
            continue
        if not (isinstance(cls, type) and issubclass(cls, Encoder)):
            logger.error(
                "Encoder plug-in %r (%s) is not an Encoder subclass",
                point.name,
                point.value,
            )
            continue
        found[point.name] = cls
    return found


def get_encoder(name: str) -> type[Encoder]:
    """Return the encoder class registered under ``name``.

    Raises:
        EncoderError: naming the unknown encoder and listing the known ones.
    """
    known = available_encoders()
    if name not in known:
        raise EncoderError(
            f"Unknown encoder {name!r}. Available: {', '.join(sorted(known))}. "
            "Run `bench encoders` for descriptions."
        )
    return known[name]
