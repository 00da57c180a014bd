"""The hand-written backward passes of soft bins against plain autograd."""

from __future__ import annotations

import math

import pytest
import torch
from rtdl_num_embeddings import PiecewiseLinearEncoding
from torch.func import functional_call, stack_module_state, vmap

from encoders import get_encoder, soft_bins
from encoders.soft_bins import (
    EdgeSoftBinEmbeddings,
    SoftBinEmbeddings,
    _EdgeLookup,
    _SoftLookup,
)
from encoders.temperature import keep_top_k

SCORES = ["edges", "interval"]


def interval_scores(module: SoftBinEmbeddings, x: torch.Tensor) -> torch.Tensor:
    """Interval scores as the sum of two ReLU distances, (n, batch, n_bins)."""
    lower = module.centres - module.half_widths
    upper = module.centres + module.half_widths
    with torch.no_grad():
        lowest = lower.amin(dim=-1)
        highest = upper.amax(dim=-1)
    column = torch.clamp(x.T, lowest, highest).unsqueeze(-1)
    distance = torch.relu(lower - column) + torch.relu(column - upper)
    factor = module.temperature.inverse() * module.inverse_widths
    return -distance * factor[:, None, None]


def edge_scores(module: EdgeSoftBinEmbeddings, x: torch.Tensor) -> torch.Tensor:
    """Edge scores from their definition, (n, batch, n_bins).

    Bin k lies right of edges 1..k and left of the others, so the distance from
    x to the edges in between is the sum of relu(u_i - x) over i <= k and of
    relu(x - u_i) over i > k.
    """
    column = module.positions(x).unsqueeze(-1).unsqueeze(-1)  # (n, batch, 1, 1)
    edges = module.edges.unsqueeze(1).unsqueeze(-1)  # (n, 1, n_bins - 1, 1)
    n_bins = module.edges.shape[1] + 1
    bins = torch.arange(n_bins)
    right_of = torch.arange(1, n_bins).unsqueeze(-1) <= bins  # (edge, bin)
    before = torch.relu(edges - column) * right_of
    after = torch.relu(column - edges) * ~right_of
    distance = (before + after).sum(dim=-2)
    return -distance * module.temperature.inverse()[:, None, None]


def reference_output(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The module's output with scores, softmax and sum all through autograd."""
    if isinstance(module, EdgeSoftBinEmbeddings):
        scores = edge_scores(module, x)
    else:
        scores = interval_scores(module, x)
    if module.padding is not None:
        scores = scores + module.padding
    weights = torch.softmax(keep_top_k(scores, module.top_k), dim=-1)
    lookup = torch.bmm(weights, module.embeddings)
    return lookup.transpose(0, 1).reshape(len(x), module.d_out)


def training_rows() -> torch.Tensor:
    """Three features, the last with 3 distinct values (so its bins are padded)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=generator, dtype=torch.float64)
    x[:, 2] = torch.randint(0, 3, (300,), generator=generator).double()
    return x


def get_fitted_bins() -> list[torch.Tensor]:
    encoder = get_encoder("soft-bins")(n_bins=12, d_embedding=4)
    encoder.fit(training_rows()[:200].float())
    return encoder.state["bins"]


def fitted_module(scores: str, **params) -> tuple[torch.nn.Module, torch.Tensor]:
    """A module on `training_rows`, and rows beyond the training range."""
    x = training_rows()
    encoder = get_encoder("soft-bins")(
        n_bins=12, d_embedding=4, scores=scores, **params
    )
    encoder.fit(x[:200].float())
    torch.manual_seed(0)
    module = encoder.build(3).double()
    # Move the bins off their start: intervals overlap and leave gaps, and
    # edges move by a fraction of a bin width.
    with torch.no_grad():
        if scores == "interval":
            module.centres.add_(0.05 * torch.randn_like(module.centres))
            module.half_widths.mul_(1.5)
        else:
            module.edges.add_(0.3 * torch.randn_like(module.edges))
    return module, x[200:] * 1.3


def gradients(module: torch.nn.Module, output: torch.Tensor) -> list[torch.Tensor]:
    parameters = [p for p in module.parameters() if p.requires_grad]
    weights = torch.linspace(-1, 1, output.numel(), dtype=output.dtype)
    loss = (output.flatten() * weights).sum()
    return list(torch.autograd.grad(loss, parameters))


@pytest.mark.parametrize("scores", SCORES)
@pytest.mark.parametrize(
    "params",
    [
        {"temperature_mode": "learned"},
        {"temperature_mode": "fixed", "temperature": 0.05},
        {"temperature_mode": "annealed"},
        {"temperature_mode": "learned", "top_k": 3},
    ],
    ids=["learned", "fixed", "annealed", "top-k"],
)
def test_output_and_gradients_match_autograd(scores, params):
    module, x = fitted_module(scores, **params)

    ours = module(x)
    reference = reference_output(module, x)

    assert module.padding is not None
    assert torch.allclose(ours, reference, rtol=0, atol=1e-12)
    for got, expected in zip(
        gradients(module, ours), gradients(module, reference), strict=True
    ):
        assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12)


def graph_names(output: torch.Tensor) -> set[str]:
    """Names of the autograd nodes that ``output`` was computed through."""
    names, stack = set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node.name() not in names:
            names.add(node.name())
            stack.extend(next_node for next_node, _ in node.next_functions)
    return names


@pytest.mark.parametrize("scores", SCORES)
def test_plain_twin_matches_general_path(scores, monkeypatch):
    """Outside torch.func transforms the twin runs, with the same results."""
    module, x = fitted_module(scores)
    function = "_EdgeLookup" if scores == "edges" else "_SoftLookup"

    plain = module(x)
    monkeypatch.setattr(soft_bins, "_transforms_active", None)
    general = module(x)

    assert f"{function}PlainBackward" in graph_names(plain)
    assert f"{function}Backward" in graph_names(general)
    assert torch.equal(plain, general)
    for got, expected in zip(
        gradients(module, plain), gradients(module, general), strict=True
    ):
        assert torch.equal(got, expected)


def test_interval_gradcheck_in_float64():
    module, x = fitted_module("interval")
    column = x[:20].T.unsqueeze(-1).contiguous()
    factor = torch.rand(3, 1, 1, dtype=torch.float64) + 0.5
    inputs = (
        column,
        module.centres.detach().clone().requires_grad_(),
        module.half_widths.detach().clone().requires_grad_(),
        factor.requires_grad_(),
        module.padding,
        module.embeddings.detach().clone().requires_grad_(),
        0,
    )

    def lookup(*args: torch.Tensor) -> torch.Tensor:
        return _SoftLookup.apply(*args)[0]

    assert torch.autograd.gradcheck(lookup, inputs)


def test_edge_gradcheck_in_float64():
    module, x = fitted_module("edges")
    log_temperature = torch.rand(3, dtype=torch.float64) - 0.5
    inputs = (
        module.positions(x[:20]).unsqueeze(-1),
        log_temperature.requires_grad_(),
        module.edges.detach().clone().requires_grad_(),
        module.slopes,
        module.summing,
        module.padding,
        module.embeddings.detach().clone().requires_grad_(),
        0,
    )

    def lookup(*args: torch.Tensor) -> torch.Tensor:
        return _EdgeLookup.apply(*args)[0]

    assert torch.autograd.gradcheck(lookup, inputs)


def test_positions_equal_ple_sums():
    """PLE gives 1 per bin left of x and the fraction of x's bin: its position."""
    module, x = fitted_module("edges")
    bins = [edges.double() for edges in get_fitted_bins()]
    far = [[-1e12, 1e12, 1e12], [1e12, -1e12, 0.0], [-math.inf, math.inf, math.inf]]
    x = torch.cat([x, torch.tensor(far, dtype=x.dtype)])
    inside = torch.stack(
        [x[:, j].clamp(edges[0], edges[-1]) for j, edges in enumerate(bins)], dim=1
    )
    encoding = PiecewiseLinearEncoding(bins)(inside)

    expected = []
    for j, edges in enumerate(bins):
        start = sum(len(e) - 1 for e in bins[:j])
        sums = encoding[:, start : start + len(edges) - 1].sum(dim=1)
        expected.append(sums - (len(edges) - 1) / 2)

    assert torch.allclose(module.positions(x), torch.stack(expected), atol=1e-12)


@pytest.mark.parametrize("scores", SCORES)
def test_vmap_over_stacked_modules_matches_each(scores):
    modules = [fitted_module(scores, temperature_mode="learned")[0] for _ in range(2)]
    with torch.no_grad():
        modules[1].embeddings.mul_(-2.0)
    x = fitted_module(scores)[1]
    params, buffers = stack_module_state(modules)

    def run(p: dict, b: dict) -> torch.Tensor:
        return functional_call(modules[0], (p, b), (x,))

    stacked = vmap(run)(params, buffers)
    stacked.sum().backward()

    for i, module in enumerate(modules):
        alone = module(x)
        alone.sum().backward()
        assert torch.allclose(stacked[i], alone, atol=1e-12)
        for name, parameter in module.named_parameters():
            assert torch.allclose(params[name].grad[i], parameter.grad, atol=1e-12)


def test_edges_start_at_training_edges():
    encoder = get_encoder("soft-bins")(n_bins=12, d_embedding=4)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=generator)
    encoder.fit(x)
    fresh = encoder.build(3).double()

    for j, edges in enumerate(encoder.state["bins"]):
        inner = edges[1:-1].double()
        got = fresh.learned_edges()[j, : len(inner)]
        assert torch.allclose(got, inner, rtol=0, atol=1e-5)
