"""A third-party encoder package, installed with pip, is found by entry point."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import torch

from encoders import available_encoders, get_encoder

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "bench-scale-plugin"
version = "0.1.0"

[project.entry-points."bench.encoders"]
scale-plugin = "bench_scale_plugin:ScaleEncoder"

[tool.setuptools]
packages = ["bench_scale_plugin"]
"""

MODULE = '''\
"""A test encoder: each feature times a learned scale, and its negation."""

import torch
from torch import nn

from encoders import Encoder


class Scale(nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n_features))
        self.d_out = 2 * n_features

    def forward(self, x):
        scaled = x * self.scale
        return torch.cat([scaled, -scaled], dim=1)


class ScaleEncoder(Encoder):
    name = "scale-plugin"
    description = "Learned per-feature scale (test plug-in)."

    def build(self, n_features):
        return Scale(n_features)
'''


def write_package(root: Path) -> Path:
    package = root / "plugin"
    (package / "bench_scale_plugin").mkdir(parents=True)
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "bench_scale_plugin" / "__init__.py").write_text(MODULE)
    return package


def test_installed_plugin_is_found(tmp_path):
    package = write_package(tmp_path)
    site = tmp_path / "site"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--disable-pip-version-check",
        "--quiet",
        "--target",
        str(site),
        str(package),
    ]
    installed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr

    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        found = available_encoders()
        assert "scale-plugin" in found
        encoder = get_encoder("scale-plugin")()
        x = torch.randn(5, 3)
        encoder.fit(x)
        module = encoder.build(3)
        out = module(x)
        assert out.shape == (5, module.d_out)
        assert torch.equal(out[:, :3], x)
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("bench_scale_plugin", None)
        importlib.invalidate_caches()

    assert "scale-plugin" not in available_encoders()
