"""Fused, chunked Euclidean-attention aggregation with a hand-written (differentiable) backward.

For every message i ← j along an edge e (receiver i, sender j, atom pair p) the attention layer
needs

    c_e^g = Σ_{f ∈ g} q_{i,f} k_{j,f} w_{p,f}            (2F/g partial sums of g features)
    [α_e; β_e] = (c_e H) ⊙ φ_p / c                        (H invariant, |𝓛| Euclidean heads)
    Δx_i = Σ_e α_e^h v_j^h,        Δχ_i^(l) = Σ_e β_e^(l) Y_l(r̂_e),

with H the constant 0/1 matrix that sums the partial sums of each head. Written as separate
tensor operations, every intermediate has n_edges × 2F entries: on a 1,000-atom box that is
tens of MB per tensor, larger than the allocator keeps for reuse, so each one costs fresh pages
and a trip through memory, and autograd keeps all of them. Here the edges are processed in
chunks of pairs small enough to stay in cache; the forward keeps nothing but its inputs, and the
backward recomputes the per-edge products chunk by chunk. The backward is made of ordinary
differentiable torch operations, so double backward (force training) works.

Edge layout: pair p < P has D ∈ {1, 2} edges, edge d·P + p (direction d); the filters w_p and
cutoff weights φ_p/c are per pair and shared by the D directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["AttentionLayout", "aggregate_attention"]


@dataclass(frozen=True, slots=True, eq=False)
class AttentionLayout:
    """Shapes and constant matrices of one attention layer.

    Attributes:
        num_heads: H, invariant heads of size ``head_dim``.
        head_dim: d = F/H.
        sum_width: g = gcd(d, F/|𝓛|), features per partial sum.
        head_sum: ``(2F/g, H + |𝓛|)`` 0/1 matrix from partial sums to heads (in the dtype of
            the features), or None when every partial sum is a head (d = F/|𝓛|).
        degree_one_hot: ``(m_tot, |𝓛|)`` 0/1 matrix, component → degree (features' dtype).
        degree_index: ``(m_tot,)`` int64, the degree slot of each χ component.
        chunk_pairs: Pairs per chunk (None: all in one chunk).
    """

    num_heads: int
    head_dim: int
    sum_width: int
    head_sum: torch.Tensor | None
    degree_one_hot: torch.Tensor
    degree_index: torch.Tensor
    chunk_pairs: int | None


def _chunks(n_pairs: int, chunk_pairs: int | None) -> list[tuple[int, int]]:
    """Pair ranges [start, stop) covering 0..n_pairs (none for no pairs)."""
    if n_pairs == 0:
        return []
    step = chunk_pairs or n_pairs
    return [(start, min(start + step, n_pairs)) for start in range(0, n_pairs, step)]


def _edge_rows(index: torch.Tensor, n_directions: int, start: int, stop: int) -> torch.Tensor:
    """The entries of a per-edge ``(D·P, …)`` tensor that belong to pairs start..stop."""
    if n_directions == 1 or (start == 0 and stop * n_directions == index.shape[0]):
        return index[start:stop] if n_directions == 1 else index
    n_pairs = index.shape[0] // n_directions
    return torch.cat([index[d * n_pairs + start:d * n_pairs + stop]
                      for d in range(n_directions)])  # (D·n, …)


def _partial_sums(
    qk: torch.Tensor, filters: torch.Tensor, layout: AttentionLayout, n_directions: int
) -> torch.Tensor:
    """c_e = per-head ⟨q ⊙ k, w⟩ of a chunk, ``(D·n, H + |𝓛|)`` before the cutoff."""
    n, two_f = filters.shape
    groups = two_f // layout.sum_width
    sums = (qk.view(n_directions, n, groups, layout.sum_width)
            * filters.reshape(n, groups, layout.sum_width)).sum(3)  # (D, n, 2F/g)
    sums = sums.view(n_directions * n, groups)  # (D·n, 2F/g)
    if layout.head_sum is None:
        return sums
    return sums @ layout.head_sum  # (D·n, H + |L|)


def _chunk_coefficients(
    qk: torch.Tensor, filters: torch.Tensor, cutoffs: torch.Tensor, layout: AttentionLayout,
    n_directions: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Head sums c_e ``(D, n, H + |𝓛|)`` of a chunk and, after the cutoff weights, α
    ``(D·n, H)`` and β ``(D·n, |𝓛|)``."""
    n = filters.shape[0]
    sums = _partial_sums(qk, filters, layout, n_directions).view(n_directions, n, -1)
    coefficients = (sums * cutoffs).view(n_directions * n, -1)  # (D·n, H + |L|)
    alpha, beta = coefficients.split(
        [layout.num_heads, coefficients.shape[1] - layout.num_heads], dim=1)
    return sums, alpha, beta


class _AttentionAggregation(torch.autograd.Function):
    """Δx, Δχ from q, k, v, filters, cutoff weights and harmonics (see the module docstring)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        filters: torch.Tensor,
        head_cutoffs: torch.Tensor,
        harmonics: torch.Tensor,
        receivers: torch.Tensor,
        senders: torch.Tensor,
        layout: AttentionLayout,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Δx ``(n_atoms, F)`` and Δχ ``(n_atoms, m_tot)``; arguments as in
        :func:`aggregate_attention`. Saves only the inputs for the backward."""
        n_pairs, n_edges = filters.shape[0], receivers.shape[0]
        n_directions = n_edges // n_pairs if n_pairs else 1
        n_atoms, heads, d = query.shape[0], layout.num_heads, layout.head_dim
        delta_x = value.new_zeros((n_atoms, heads * d))  # (n_atoms, F)
        delta_chi = value.new_zeros((n_atoms, harmonics.shape[1]))  # (n_atoms, m_tot)
        for start, stop in _chunks(n_pairs, layout.chunk_pairs):
            receiver = _edge_rows(receivers, n_directions, start, stop)  # (D·n,)
            sender = _edge_rows(senders, n_directions, start, stop)  # (D·n,)
            qk = query.index_select(0, receiver).mul_(key.index_select(0, sender))  # (D·n, 2F)
            _, alpha, beta = _chunk_coefficients(qk, filters[start:stop], head_cutoffs[start:stop],
                                                 layout, n_directions)
            messages = value.index_select(0, sender).view(-1, heads, d).mul_(
                alpha.unsqueeze(2))  # (D·n, H, d)
            delta_x.index_add_(0, receiver, messages.view(-1, heads * d))  # (n_atoms, F)
            sphc = beta.index_select(1, layout.degree_index).mul_(
                _edge_rows(harmonics, n_directions, start, stop))  # (D·n, m_tot)
            delta_chi.index_add_(0, receiver, sphc)  # (n_atoms, m_tot)
        ctx.save_for_backward(query, key, value, filters, head_cutoffs, harmonics,
                              receivers, senders)
        ctx.layout, ctx.num_directions = layout, n_directions
        return delta_x, delta_chi

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        grad_delta_x: torch.Tensor,
        grad_delta_chi: torch.Tensor,
    ) -> tuple[torch.Tensor | None, ...]:
        """Gradients of q, k, v, filters, cutoff weights and harmonics from those of Δx and Δχ,
        recomputing the per-edge products chunk by chunk (differentiable: double backward)."""
        query, key, value, filters, head_cutoffs, harmonics, receivers, senders = (
            ctx.saved_tensors)
        layout: AttentionLayout = ctx.layout
        n_directions: int = ctx.num_directions
        n_pairs, n_edges = filters.shape[0], receivers.shape[0]
        heads, d, g = layout.num_heads, layout.head_dim, layout.sum_width
        # Inputs that do not require grad get none (e.g. q, k, v of the first layer when the
        # calculator evaluates forces: they depend on the species only).
        need_query, need_key, need_value = ctx.needs_input_grad[:3]
        grad_query = torch.zeros_like(query) if need_query else None  # (n_atoms, 2F)
        grad_key = torch.zeros_like(key) if need_key else None  # (n_atoms, 2F)
        grad_value = torch.zeros_like(value) if need_value else None  # (n_atoms, F)
        if n_pairs == 0:
            return (grad_query, grad_key, grad_value, torch.zeros_like(filters),
                    torch.zeros_like(head_cutoffs), torch.zeros_like(harmonics), None, None, None)
        grad_filters, grad_cutoffs, grad_harmonics = [], [], []
        for start, stop in _chunks(n_pairs, layout.chunk_pairs):
            n = stop - start
            receiver = _edge_rows(receivers, n_directions, start, stop)  # (D·n,)
            sender = _edge_rows(senders, n_directions, start, stop)  # (D·n,)
            w, cutoffs = filters[start:stop], head_cutoffs[start:stop]  # (n, 2F), (n, H+L)
            harmonics_chunk = _edge_rows(harmonics, n_directions, start, stop)  # (D·n, m)
            query_r = query.index_select(0, receiver)  # (D·n, 2F)
            key_s = key.index_select(0, sender)  # (D·n, 2F)
            qk = query_r * key_s  # (D·n, 2F)
            sums, alpha, beta = _chunk_coefficients(qk, w, cutoffs, layout, n_directions)
            # Δx_i = Σ α_e v_j
            grad_messages = grad_delta_x.index_select(0, receiver).view(-1, heads, d)  # (D·n, H, d)
            value_s = value.index_select(0, sender).view(-1, heads, d)  # (D·n, H, d)
            grad_alpha = (grad_messages * value_s).sum(2)  # (D·n, H)
            if grad_value is not None:
                grad_value.index_add_(
                    0, sender, (grad_messages * alpha.unsqueeze(2)).view(-1, heads * d))
            # Δχ_i = Σ β_e[l(m)] Y_m(e)
            grad_sphc = grad_delta_chi.index_select(0, receiver)  # (D·n, m)
            grad_beta = (grad_sphc * harmonics_chunk) @ layout.degree_one_hot  # (D·n, L)
            grad_harmonics.append((beta.index_select(1, layout.degree_index) * grad_sphc)
                                  .view(n_directions, n, -1))  # (D, n, m)
            # coefficients = sums ⊙ cutoffs
            grad_coefficients = torch.cat([grad_alpha, grad_beta], dim=1).view(
                n_directions, n, -1)  # (D, n, H+L)
            grad_cutoffs.append((grad_coefficients * sums).sum(0))  # (n, H+L)
            grad_sums = grad_coefficients * cutoffs  # (D, n, H+L)
            if layout.head_sum is not None:
                grad_sums = grad_sums @ layout.head_sum.t()  # (D, n, 2F/g)
            grad_sums = grad_sums.unsqueeze(3)  # (D, n, 2F/g, 1), broadcast over g features
            grad_filters.append((grad_sums * qk.view(n_directions, n, -1, g)).sum(0)
                                .reshape(n, -1))  # (n, 2F)
            if grad_query is not None or grad_key is not None:
                grad_qk = (grad_sums * w.reshape(n, -1, g)).reshape(
                    n_directions * n, -1)  # (D·n, 2F)
                if grad_query is not None:
                    grad_query.index_add_(0, receiver, grad_qk * key_s)  # (n_atoms, 2F)
                if grad_key is not None:
                    grad_key.index_add_(0, sender, grad_qk * query_r)  # (n_atoms, 2F)
        grad_harmonics_all = torch.cat(grad_harmonics, dim=1).view(n_edges, -1)  # (D·P, m)
        return (grad_query, grad_key, grad_value, torch.cat(grad_filters),
                torch.cat(grad_cutoffs), grad_harmonics_all, None, None, None)


def aggregate_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    filters: torch.Tensor,
    head_cutoffs: torch.Tensor,
    harmonics: torch.Tensor,
    receivers: torch.Tensor,
    senders: torch.Tensor,
    layout: AttentionLayout,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention updates Δx and Δχ, evaluated chunk by chunk.

    Args:
        query: [q | q'] of every atom, ``(n_atoms, 2F)`` (receiver side).
        key: [k | k'] of every atom, ``(n_atoms, 2F)`` (sender side).
        value: v of every atom, ``(n_atoms, F)``.
        filters: [w_inv | w_ev] per pair, ``(P, 2F)``.
        head_cutoffs: φ_p/c per pair and head (H invariant, then |𝓛|), ``(P, H + |𝓛|)``.
        harmonics: Y(r̂_e) per edge, ``(D·P, m_tot)``.
        receivers: Receiver of each edge, ``(D·P,)`` int64.
        senders: Sender of each edge, ``(D·P,)`` int64.
        layout: Head layout and chunk size.

    Returns:
        ``Δx (n_atoms, F)`` and ``Δχ (n_atoms, m_tot)``.
    """
    result: tuple[torch.Tensor, torch.Tensor] = _AttentionAggregation.apply(
        query, key, value, filters, head_cutoffs, harmonics, receivers, senders, layout)
    return result
