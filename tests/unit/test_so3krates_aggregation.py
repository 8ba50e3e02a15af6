"""The fused, chunked attention aggregation against the plain formula, and its derivatives."""

from __future__ import annotations

import pytest
import torch

from ase_mlpot.models.so3krates import So3kratesConfig
from ase_mlpot.models.so3krates.aggregation import AttentionLayout, aggregate_attention
from ase_mlpot.models.so3krates.layers import EuclideanAttention

N_ATOMS, N_PAIRS = 5, 7


def _layout(num_heads: int, chunk_pairs: int | None) -> AttentionLayout:
    config = So3kratesConfig(num_features=8, num_heads=num_heads, degrees=(1, 2),
                             num_radial_basis=4, energy_regression_dim=4)
    attention = EuclideanAttention(config)
    attention.cpu_chunk_pairs = chunk_pairs
    return attention.layout(torch.float64, torch.device("cpu"))


def _inputs(num_directions: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """q, k, v, filters, cutoffs, harmonics (all float64, requiring grad), receivers, senders."""
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(0, N_ATOMS, (N_PAIRS,), generator=generator)
    second = (first + torch.randint(1, N_ATOMS, (N_PAIRS,), generator=generator)) % N_ATOMS
    receivers = torch.cat([first, second]) if num_directions == 2 else first
    senders = torch.cat([second, first]) if num_directions == 2 else second
    n_edges = receivers.shape[0]
    shapes = [(N_ATOMS, 16), (N_ATOMS, 16), (N_ATOMS, 8), (N_PAIRS, 16), (N_PAIRS, 6),
              (n_edges, 8)]  # heads: H + |L| = 4 + 2 or 2 + 2 (cutoffs sliced below)
    tensors = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
    return (*tensors, receivers, senders)


def _plain(query, key, value, filters, cutoffs, harmonics, receivers, senders,  # type: ignore[no-untyped-def]
           layout: AttentionLayout):
    """The attention sums written out edge by edge, as in the paper."""
    n_edges, n_pairs = receivers.shape[0], filters.shape[0]
    pair = torch.arange(n_edges) % n_pairs
    weighted = query[receivers] * key[senders] * filters[pair]  # (n_edges, 2F)
    n_heads = layout.num_heads + layout.degree_one_hot.shape[1]
    head_of_feature = torch.cat([
        torch.arange(8) // layout.head_dim,
        layout.num_heads + torch.arange(8) // (8 // layout.degree_one_hot.shape[1]),
    ])  # (2F,)
    coefficients = torch.zeros(n_edges, n_heads, dtype=query.dtype).index_add(
        1, head_of_feature, weighted) * cutoffs[pair]  # (n_edges, H + L)
    alpha, beta = coefficients[:, :layout.num_heads], coefficients[:, layout.num_heads:]
    messages = (alpha.repeat_interleave(layout.head_dim, dim=1) * value[senders])  # (n_edges, F)
    sphc = beta[:, layout.degree_index] * harmonics  # (n_edges, m)
    delta_x = torch.zeros_like(value).index_add(0, receivers, messages)
    delta_chi = torch.zeros(N_ATOMS, harmonics.shape[1], dtype=query.dtype).index_add(
        0, receivers, sphc)
    return delta_x, delta_chi


@pytest.mark.parametrize("num_heads", [2, 4], ids=["heads=degrees", "head_sum"])
@pytest.mark.parametrize("num_directions", [1, 2])
@pytest.mark.parametrize("chunk_pairs", [None, 3])
def test_matches_plain_formula_and_derivatives(
    num_heads: int, num_directions: int, chunk_pairs: int | None
) -> None:
    layout = _layout(num_heads, chunk_pairs)
    assert (layout.head_sum is None) == (num_heads == 2)
    *tensors, receivers, senders = _inputs(num_directions)
    tensors[4] = tensors[4][:, :num_heads + 2].contiguous()  # cutoffs (P, H + |L|)
    tensors = [t.requires_grad_() for t in tensors]
    fused = aggregate_attention(*tensors, receivers, senders, layout)
    plain = _plain(*tensors, receivers, senders, layout)
    for ours, reference in zip(fused, plain, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)

    def function(*args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return aggregate_attention(*args, receivers, senders, layout)

    # first derivatives (forces) and second derivatives (training on forces)
    assert torch.autograd.gradcheck(function, tuple(tensors))
    assert torch.autograd.gradgradcheck(function, tuple(tensors))


@pytest.mark.parametrize("chunk_pairs", [None, 3])
def test_no_pairs_gives_zero_updates(chunk_pairs: int | None) -> None:
    """A lone atom, or atoms farther apart than the cutoff (also on the single-chunk GPU path)."""
    layout = _layout(4, chunk_pairs)
    query = torch.randn(N_ATOMS, 16, dtype=torch.float64, requires_grad=True)
    empty = torch.zeros(0, dtype=torch.int64)
    delta_x, delta_chi = aggregate_attention(
        query, torch.randn(N_ATOMS, 16, dtype=torch.float64), torch.randn(N_ATOMS, 8,
                                                                          dtype=torch.float64),
        torch.zeros(0, 16, dtype=torch.float64), torch.zeros(0, 6, dtype=torch.float64),
        torch.zeros(0, 8, dtype=torch.float64), empty, empty, layout)
    assert delta_x.shape == (N_ATOMS, 8) and delta_chi.shape == (N_ATOMS, 8)
    assert not delta_x.any() and not delta_chi.any()
    (grad,) = torch.autograd.grad(delta_x.sum() + delta_chi.sum(), query)
    assert not grad.any()


def test_constant_queries_keys_values() -> None:
    """First layer: q, k, v do not depend on the positions; the other gradients stay exact."""
    layout = _layout(4, 3)
    query, key, value, *rest, receivers, senders = _inputs(2, seed=1)
    rest[1] = rest[1][:, :6].contiguous()
    rest = [t.requires_grad_() for t in rest]

    def function(*args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return aggregate_attention(query, key, value, *args, receivers, senders, layout)

    assert torch.autograd.gradcheck(function, tuple(rest))
