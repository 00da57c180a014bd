"""The encoder protocol, checked for every built-in encoder.

Each test runs over all of `encoders.registry.BUILTIN` on a small synthetic
table whose columns cover the edge cases the encoders must handle: continuous,
heavily tied, binary, low-cardinality integer, and heavy-tailed values.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pytest
import torch

from encoders import EncoderError, get_encoder
from encoders.policies import POLICY_KEYS
from encoders.registry import BUILTIN

NAMES = sorted(BUILTIN)
N_FEATURES = 5
BINARY_COLUMN = 2


def make_table(n_rows: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return features (n_rows, 5) and a target that depends on all of them."""
    generator = torch.Generator().manual_seed(seed)
    continuous = torch.randn(n_rows, generator=generator)
    tied = torch.where(
        torch.rand(n_rows, generator=generator) < 0.7,
        torch.tensor(0.0),
        torch.rand(n_rows, generator=generator),
    )
    binary = (torch.rand(n_rows, generator=generator) < 0.3).float()
    small_integers = torch.randint(0, 5, (n_rows,), generator=generator).float()
    heavy_tailed = torch.randn(n_rows, generator=generator).exp() ** 3
    x = torch.stack([continuous, tied, binary, small_integers, heavy_tailed], dim=1)
    y = torch.sin(2 * continuous) + tied + binary + 0.3 * small_integers
    return x, y


def fitted(name: str, **params) -> tuple[object, torch.Tensor]:
    """Return an encoder fitted on the synthetic table, and the table."""
    x, y = make_table()
    encoder = get_encoder(name)(**params)
    encoder.fit(x, y)
    return encoder, x


def built(name: str, seed: int = 0, **params) -> tuple[torch.nn.Module, torch.Tensor]:
    encoder, x = fitted(name, **params)
    torch.manual_seed(seed)
    return encoder.build(N_FEATURES), x


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_and_d_out(name):
    module, x = built(name)

    out = module(x[:17])

    assert out.shape == (17, module.d_out)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    module, x = built(name)
    if not list(module.parameters()):
        pytest.skip("the module has no parameters")
    projection = torch.randn(module.d_out, generator=torch.Generator().manual_seed(1))

    (module(x) @ projection).sum().backward()

    for parameter_name, parameter in module.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name):
    first, x = built(name, seed=3)
    second, _ = built(name, seed=3)

    assert torch.equal(first(x), second(x))


@pytest.mark.parametrize("name", NAMES)
def test_module_follows_float64(name):
    module, x = built(name)
    expected = module(x).detach()

    module = module.to(dtype=torch.float64)
    out = module(x.double())

    assert out.dtype == torch.float64
    assert torch.allclose(out.float(), expected, rtol=1e-4, atol=1e-4)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_module_follows_device(name, device):
    module, x = built(name)
    expected = module(x).detach()

    module = module.to(torch.device(device))
    out = module(x.to(device))

    assert out.device.type == device
    assert torch.allclose(out.cpu(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_fit_accepts_float64_rows(name):
    x, y = make_table()
    encoder = get_encoder(name)()

    encoder.fit(x.double(), y.double())
    module = encoder.build(N_FEATURES)

    assert torch.isfinite(module(x)).all()


@pytest.mark.parametrize("name", NAMES)
def test_summary_records_policy(name):
    encoder, _ = fitted(name)
    encoder.build(N_FEATURES)

    summary = encoder.summary()

    json.dumps(summary)
    assert tuple(summary["policy"]) == POLICY_KEYS
    for key in POLICY_KEYS:
        assert summary["policy"][key], key
    if "bins" in encoder.state:
        assert summary["bins_per_feature"] == [
            len(edges) - 1 for edges in encoder.state["bins"]
        ]


@pytest.mark.parametrize("name", NAMES)
def test_far_and_huge_inputs_stay_finite(name):
    module, x = built(name)
    far = x[:4].clone()
    far[0] = 1e12
    far[1] = -1e12
    far[2] = x.max(dim=0).values + 1e3
    far[3] = x.min(dim=0).values - 1e3

    out = module(far)

    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_huge_training_magnitudes(name):
    x, y = make_table()
    x = x * 1e12
    encoder = get_encoder(name)()

    encoder.fit(x, y)
    torch.manual_seed(0)
    out = encoder.build(N_FEATURES)(x)

    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_binary_column_stays_distinguishable(name):
    module, x = built(name)
    zero = x[:8].clone()
    zero[:, BINARY_COLUMN] = 0.0
    one = zero.clone()
    one[:, BINARY_COLUMN] = 1.0

    difference = (module(one) - module(zero)).abs().sum(dim=1)

    assert (difference > 0).all()


INVALID = [
    ("onehot-bins", "n_bins", 1),
    ("bin-embedding", "d_embedding", 0),
    ("linear", "d_embedding", 2.5),
    ("ple-quantile", "version", "C"),
    ("ple-tree", "version", "B"),
    ("ple-quantile-encoding", "n_bins", True),
    ("ple-tree", "min_samples_leaf", 0),
    ("ple-tree-linear", "min_impurity_decrease", -1e-3),
    ("periodic", "frequency_init_scale", -0.1),
    ("plr", "n_frequencies", 0),
    ("soft-bins", "temperature", 0.0),
    ("soft-bins", "temperature", math.inf),
    ("soft-bins", "temperature_mode", "cosine"),
    ("soft-bins", "top_k", -1),
    ("soft-bins", "anneal_ratio", 0),
    ("autodis", "n_meta_embeddings", 1),
    ("autodis", "alpha", math.nan),
]


@pytest.mark.parametrize(("name", "parameter", "value"), INVALID)
def test_invalid_parameter_raises(name, parameter, value):
    with pytest.raises(EncoderError) as error:
        get_encoder(name)(**{parameter: value})

    message = str(error.value)
    assert f"{parameter}={value!r}" in message
    assert "use " in message


def test_unknown_parameter_raises():
    with pytest.raises(EncoderError, match="unknown parameters"):
        get_encoder("soft-bins")(learn_temperature=True)


BINNED = [name for name in NAMES if "n_bins" in BUILTIN[name].defaults()]


@pytest.mark.parametrize("name", BINNED)
def test_build_before_fit_raises(name):
    encoder = get_encoder(name)()

    with pytest.raises(EncoderError, match="call fit"):
        encoder.build(N_FEATURES)


def test_tree_bins_need_target():
    x, _ = make_table()
    encoder = get_encoder("ple-tree")()

    with pytest.raises(EncoderError, match="need the training target"):
        encoder.fit(x)


def test_constant_column_raises():
    x, y = make_table()
    x[:, 0] = 1.0

    with pytest.raises(
        EncoderError, match=r"constant training columns at positions \[0\]"
    ):
        get_encoder("onehot-bins")().fit(x, y)


def test_registry_matches_entry_points():
    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    table = tomllib.loads(pyproject.read_text())["project"]["entry-points"]
    declared = table["bench.encoders"]

    expected = {
        name: f"{cls.__module__}:{cls.__qualname__}" for name, cls in BUILTIN.items()
    }
    assert declared == expected
    for name, cls in BUILTIN.items():
        assert cls.name == name
