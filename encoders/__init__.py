"""Numeric-feature encoders: plug-ins placed in front of one fixed MLP.

Every encoder follows the small protocol of `encoders.base.Encoder`: it fits
its data-dependent state on training rows, builds a ``torch.nn.Module`` for a
given number of features, and declares its Optuna search space. Encoders are
found through the ``bench.encoders`` entry-point group, so a package outside
this repository can add one. This package imports nothing else of the project.
"""

from encoders.base import Encoder, EncoderError
from encoders.registry import available_encoders, get_encoder
from encoders.temperature import set_training_progress

__all__ = [
    "Encoder",
    "EncoderError",
    "available_encoders",
    "get_encoder",
    "set_training_progress",
]
