"""The hand-written backward pass of soft bins against plain autograd."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, stack_module_state, vmap

from encoders import get_encoder
from encoders.soft_bins import SoftBinEmbeddings, _SoftLookup
from encoders.temperature import keep_top_k


def reference_output(module: SoftBinEmbeddings, x: torch.Tensor) -> torch.Tensor:
    """Soft bins written as the sum of two ReLU distances, all through autograd."""
    lower = module.centres - module.half_widths
    upper = module.centres + module.half_widths
    with torch.no_grad():
        lowest = lower.amin(dim=-1)
        highest = upper.amax(dim=-1)
    column = torch.clamp(x.T, lowest, highest).unsqueeze(-1)
    distance = torch.relu(lower - column) + torch.relu(column - upper)
    factor = module.temperature.inverse() * module.inverse_widths
    scores = -distance * factor[:, None, None]
    if module.padding is not None:
        scores = scores + module.padding
    weights = torch.softmax(keep_top_k(scores, module.top_k), dim=-1)
    lookup = torch.bmm(weights, module.embeddings)
    return lookup.transpose(0, 1).reshape(len(x), module.d_out)


def fitted_module(**params) -> tuple[SoftBinEmbeddings, torch.Tensor]:
    """Three features, the last with 3 distinct values (so its bins are padded)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=generator, dtype=torch.float64)
    x[:, 2] = torch.randint(0, 3, (300,), generator=generator).double()
    encoder = get_encoder("soft-bins")(n_bins=12, d_embedding=4, **params)
    encoder.fit(x[:200].float())
    torch.manual_seed(0)
    module = encoder.build(3).double()
    # Move the intervals off their start, so that they overlap and leave gaps.
    with torch.no_grad():
        module.centres.add_(0.05 * torch.randn_like(module.centres))
        module.half_widths.mul_(1.5)
    return module, x[200:] * 1.3


def gradients(module: torch.nn.Module, output: torch.Tensor) -> list[torch.Tensor]:
    parameters = [p for p in module.parameters() if p.requires_grad]
    weights = torch.linspace(-1, 1, output.numel(), dtype=output.dtype)
    loss = (output.flatten() * weights).sum()
    return list(torch.autograd.grad(loss, parameters))


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
def test_output_and_gradients_match_autograd(params):
    module, x = fitted_module(**params)

    ours = module(x)
    reference = reference_output(module, x)

    assert module.padding is not None
    assert torch.allclose(ours, reference, rtol=0, atol=1e-12)
    for got, expected in zip(
        gradients(module, ours), gradients(module, reference), strict=True
    ):
        assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_gradcheck_in_float64():
    module, x = fitted_module()
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


def test_vmap_over_stacked_modules_matches_each():
    modules = [fitted_module(temperature_mode="learned")[0] for _ in range(2)]
    with torch.no_grad():
        modules[1].embeddings.mul_(-2.0)
    x = fitted_module()[1]
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
