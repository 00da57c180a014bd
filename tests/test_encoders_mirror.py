"""Encoders on a real OpenML table from the mirror: space_ga (OpenML 507).

space_ga has 3107 rows and 6 numeric features, two of them coordinates of
magnitude 1e7 to 1e8, where float32 resolution is 2 to 8. The `mirror`
fixture fails with a message when BENCH_MIRROR is not set.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import torch
from rtdl_num_embeddings import PiecewiseLinearEncoding, compute_bins

from encoders import get_encoder

OPENML_ID = 507


def load_features(mirror: Path) -> torch.Tensor:
    """Return the features of OpenML 507 as float32, shape (3107, 6)."""
    matches = sorted(mirror.glob(f"{OPENML_ID}_*.parquet"))
    assert matches, f"OpenML {OPENML_ID} is not in the mirror {mirror}."
    path = matches[0]
    metadata = json.loads(pq.read_schema(path).metadata[b"openml"])
    frame = pl.read_parquet(path).drop(metadata["target"])
    return torch.tensor(frame.to_numpy(), dtype=torch.float32)


@pytest.fixture(scope="module")
def space_ga(mirror: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (training rows, all rows with far-out rows appended)."""
    x = load_features(mirror)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x_train = x[order[: int(0.8 * len(x))]]
    far = torch.stack([x.min(dim=0).values - 1e3, x.max(dim=0).values + 1e3])
    huge = torch.full((2, x.shape[1]), 1e12) * torch.tensor([[-1.0], [1.0]])
    return x_train, torch.cat([x, far, huge])


def test_soft_bins_limit_is_lookup(space_ga):
    """As the temperature goes to 0, soft bins equal the hard lookup."""
    x_train, x_all = space_ga
    hard = get_encoder("bin-embedding")(n_bins=32)
    hard.fit(x_train)
    torch.manual_seed(0)
    lookup = hard.build(x_train.shape[1]).double()
    errors = []

    for temperature in (1e-1, 1e-3, 1e-6, 1e-12):
        soft = get_encoder("soft-bins")(
            n_bins=32, temperature=temperature, temperature_mode="fixed"
        )
        soft.fit(x_train)
        for soft_edges, hard_edges in zip(
            soft.state["bins"], hard.state["bins"], strict=True
        ):
            assert torch.equal(soft_edges, hard_edges)
        torch.manual_seed(1)
        module = soft.build(x_train.shape[1]).double()
        with torch.no_grad():
            lookup.embeddings.copy_(module.embeddings)
            difference = module(x_all.double()) - lookup(x_all.double())
        errors.append(float(difference.abs().max()))

    assert errors == sorted(errors, reverse=True), errors
    assert errors[0] > 1e-3, errors
    assert errors[-1] == 0.0, errors


def test_ple_matches_rtdl_on_space_ga(space_ga):
    x_train, x_all = space_ga
    encoder = get_encoder("ple-quantile-encoding")(n_bins=48)
    encoder.fit(x_train)

    ours = encoder.build(x_train.shape[1])(x_all)
    reference_bins = compute_bins(x_train, n_bins=48)
    reference = PiecewiseLinearEncoding(reference_bins)(x_all)

    for edges, reference_edges in zip(
        encoder.state["bins"], reference_bins, strict=True
    ):
        assert torch.equal(edges, reference_edges)
    assert torch.equal(ours, reference)


def test_tree_ple_matches_rtdl_on_space_ga(space_ga):
    x_train, x_all = space_ga
    # A target made from the features, so that the trees find splits.
    y_train = torch.sin(x_train[:, 2]) + x_train[:, 3] / 10
    encoder = get_encoder("ple-tree-encoding")(n_bins=16)
    encoder.fit(x_train, y_train)
    tree_kwargs = {
        "min_samples_leaf": encoder.params["min_samples_leaf"],
        "min_impurity_decrease": encoder.params["min_impurity_decrease"],
        "random_state": 0,
    }

    ours = encoder.build(x_train.shape[1])(x_all)
    reference_bins = compute_bins(
        x_train, n_bins=16, tree_kwargs=tree_kwargs, y=y_train, regression=True
    )
    reference = PiecewiseLinearEncoding(reference_bins)(x_all)

    for edges, reference_edges in zip(
        encoder.state["bins"], reference_bins, strict=True
    ):
        assert torch.equal(edges, reference_edges)
    assert torch.equal(ours, reference)
    assert max(encoder.summary()["bins_per_feature"]) > 1
