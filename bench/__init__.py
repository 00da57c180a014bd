"""The benchmark driver: command line, presets, backbone, training, tuning, tracking."""

__version__ = "0.1.0"
