"""Bin fitting and bin lookup: training rows only, ties, few values, padding."""

from __future__ import annotations

import pytest
import torch
from rtdl_num_embeddings import PiecewiseLinearEncoding, compute_bins

from encoders import get_encoder
from encoders.bins import lookup_bins
from encoders.hard_bins import BinIndex
from encoders.registry import BUILTIN

BINNED = sorted(name for name, cls in BUILTIN.items() if "n_bins" in cls.defaults())


def split_table(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return training rows, their target, and test rows with wider ranges."""
    generator = torch.Generator().manual_seed(seed)
    x_train = torch.randn(300, 3, generator=generator)
    x_train[:, 2] = torch.randint(0, 3, (300,), generator=generator).float()
    y_train = x_train[:, 0] - x_train[:, 1] ** 2 + x_train[:, 2]
    x_test = 5 * torch.randn(200, 3, generator=generator)
    return x_train, y_train, x_test


@pytest.mark.parametrize("name", BINNED)
def test_edges_within_training_range(name):
    x_train, y_train, _ = split_table()
    encoder = get_encoder(name)(n_bins=16)

    encoder.fit(x_train, y_train)

    for j, edges in enumerate(encoder.state["bins"]):
        assert edges.min() >= x_train[:, j].min(), j
        assert edges.max() <= x_train[:, j].max(), j
        assert (edges[1:] > edges[:-1]).all(), j


@pytest.mark.parametrize("name", BINNED)
def test_bins_ignore_test_rows(name):
    x_train, y_train, x_test = split_table()
    encoder = get_encoder(name)(n_bins=16)
    encoder.fit(x_train, y_train)
    before = [edges.clone() for edges in encoder.state["bins"]]

    torch.manual_seed(0)
    encoder.build(3)(x_test)
    again = get_encoder(name)(n_bins=16)
    again.fit(x_train, y_train)

    for old, new in zip(before, again.state["bins"], strict=True):
        assert torch.equal(old, new)
    for old, current in zip(before, encoder.state["bins"], strict=True):
        assert torch.equal(old, current)


def test_lookup_few_values_one_bin_each():
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 2.0], [0.0, 5.0], [1.0, 2.0]])

    fitted = lookup_bins(x, n_bins=8)

    assert fitted.value_bin_features == [0, 1]
    assert torch.equal(fitted.edges[0], torch.tensor([0.0, 0.5, 1.0]))
    assert torch.equal(fitted.edges[1], torch.tensor([1.0, 1.5, 3.5, 5.0]))


def test_lookup_heavy_ties_split_mode():
    generator = torch.Generator().manual_seed(0)
    column = torch.zeros(2000)
    column[:50] = torch.rand(50, generator=generator) + 0.5

    fitted = lookup_bins(column[:, None], n_bins=32)

    assert fitted.tie_split_features == [0]
    edges = fitted.edges[0]
    assert len(edges) == 3
    assert edges[0] == 0.0
    assert 0.0 < edges[1] < column[:50].min()


def test_lookup_no_training_value_on_edge():
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 200, (2000, 2), generator=generator).float()
    x[:, 1] = torch.randn(2000, generator=generator).round(decimals=1)

    fitted = lookup_bins(x, n_bins=16)

    for j, edges in enumerate(fitted.edges):
        interior = edges[1:-1]
        assert not torch.isin(x[:, j], interior).any(), j


def test_lookup_keeps_half_open_assignment():
    """Moving edges to midpoints keeps every training value in its quantile bin."""
    generator = torch.Generator().manual_seed(1)
    column = torch.randint(0, 50, (3000,), generator=generator).float()

    moved = lookup_bins(column[:, None], n_bins=8).edges[0]
    quantile = compute_bins(column[:, None], n_bins=8)[0]

    before = torch.searchsorted(quantile[1:-1], column, right=True)
    after = torch.searchsorted(moved[1:-1], column, right=True)
    assert torch.equal(before, after)


def test_mixed_bin_counts_stack():
    x_train, y_train, x_test = split_table()
    encoder = get_encoder("soft-bins")(n_bins=16)
    encoder.fit(x_train, y_train)
    counts = encoder.summary()["bins_per_feature"]
    torch.manual_seed(0)
    module = encoder.build(3)

    weights = module.weights(x_test)

    assert counts == [16, 16, 3]
    assert weights.shape == (200, 3, 16)
    assert torch.equal(weights[:, 2, 3:], torch.zeros(200, 13))
    assert torch.allclose(weights.sum(dim=-1), torch.ones(200, 3))


def test_onehot_width_is_total_bins():
    x_train, y_train, x_test = split_table()
    encoder = get_encoder("onehot-bins")(n_bins=16)
    encoder.fit(x_train, y_train)
    module = encoder.build(3)

    out = module(x_test)

    assert module.d_out == 16 + 16 + 3
    assert torch.equal(out.sum(dim=1), torch.full((200,), 3.0))


def test_hard_lookup_edges_and_outside():
    index = BinIndex([torch.tensor([0.0, 1.0, 2.0, 3.0])])
    x = torch.tensor(
        [[-1e12], [0.0], [0.5], [1.0], [2.999], [3.0], [1e12], [torch.nan]]
    )

    bins = index(x)[:, 0].tolist()

    assert bins == [0, 0, 0, 1, 2, 2, 2, 2]


def test_soft_weights_outside_go_to_nearest():
    x_train, y_train, _ = split_table()
    encoder = get_encoder("soft-bins")(n_bins=16, temperature=0.1)
    encoder.fit(x_train, y_train)
    module = encoder.build(3)
    far = torch.tensor([[-1e12] * 3, [1e12] * 3])

    weights = module.weights(far)

    last_bins = [count - 1 for count in encoder.summary()["bins_per_feature"]]
    for j, last in enumerate(last_bins):
        assert weights[0, j].argmax() == 0, j
        assert weights[1, j].argmax() == last, j
        assert weights[0, j].max() > 0.99, j
        assert weights[1, j].max() > 0.99, j


@pytest.mark.parametrize("name", ["ple-quantile-encoding", "ple-tree-encoding"])
def test_ple_matches_rtdl_encoding(name):
    x_train, y_train, x_test = split_table()
    encoder = get_encoder(name)(n_bins=16)
    encoder.fit(x_train, y_train)
    bins = encoder.state["bins"]

    ours = encoder.build(3)(x_test)
    reference = PiecewiseLinearEncoding(bins)(x_test)

    assert torch.equal(ours, reference)


def test_quantile_ple_bins_are_rtdl_bins():
    x_train, y_train, _ = split_table()
    encoder = get_encoder("ple-quantile")(n_bins=16)

    encoder.fit(x_train, y_train)

    for ours, reference in zip(
        encoder.state["bins"], compute_bins(x_train, n_bins=16), strict=True
    ):
        assert torch.equal(ours, reference)


@pytest.mark.parametrize("name", ["ple-quantile", "ple-tree"])
def test_ple_relu_head_trains(name):
    """The PLE weights behind the ReLU move away from their initial values."""
    x_train, y_train, _ = split_table()
    encoder = get_encoder(name)(n_bins=16)
    encoder.fit(x_train, y_train)
    torch.manual_seed(0)
    module = encoder.build(3)
    head = torch.nn.Linear(module.d_out, 1)
    weights = module.embeddings.linear.weight
    start = weights.detach().clone()
    parameters = [*module.parameters(), *head.parameters()]

    for _ in range(5):
        loss = ((head(module(x_train)).squeeze(-1) - y_train) ** 2).mean()
        gradients = torch.autograd.grad(loss, parameters)
        with torch.no_grad():
            for parameter, gradient in zip(parameters, gradients, strict=True):
                parameter -= 0.1 * gradient

    assert not torch.equal(weights.detach(), start)


@pytest.mark.parametrize("name", BINNED)
def test_top_edge_is_train_maximum(name):
    """Train x = y = 0..99 and test x = 1000..1099: the largest edge is 99."""
    x_train = torch.arange(100, dtype=torch.float32).unsqueeze(1)
    encoder = get_encoder(name)(n_bins=8)

    encoder.fit(x_train, x_train[:, 0].clone())

    assert float(encoder.state["bins"][0].max()) == 99.0
