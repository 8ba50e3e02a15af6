"""Element networks of an ANI ensemble, evaluated for all members in one batched computation.

For element X and member m: E_i^m = W₄ᵐ σ(W₃ᵐ σ(W₂ᵐ σ(W₁ᵐ G_i + b₁ᵐ) + b₂ᵐ) + b₃ᵐ) + b₄ᵐ with
σ = CELU(α). Weights of layer l are stored stacked over members, shape ``(M, out, in)``; the first
layer, whose input G_i is shared by the members, is one matmul ``(n_X, in) × (in, M·out)``, the
following ones one batched matmul ``(M, n_X, in) × (M, in, out)`` each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional

__all__ = ["EnsembleElementNetwork"]


class EnsembleElementNetwork(torch.nn.Module):
    """The MLPs of one element for all ensemble members.

    Args:
        sizes: Layer widths ``(in, h1, ..., 1)``.
        ensemble_size: Number of members M.
        celu_alpha: α of the CELU activation on hidden layers (output layer linear).
    """

    def __init__(self, sizes: Sequence[int], ensemble_size: int, celu_alpha: float) -> None:
        super().__init__()
        if sizes[-1] != 1:
            raise ValueError("the last layer of an element network must have width 1")
        self.sizes = tuple(int(s) for s in sizes)
        self.ensemble_size = ensemble_size
        self.celu_alpha = celu_alpha
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.empty(ensemble_size, n_out, n_in))
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        )
        self.biases = torch.nn.ParameterList(
            torch.nn.Parameter(torch.empty(ensemble_size, n_out)) for n_out in self.sizes[1:]
        )
        self.reset_parameters()

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw weights N(0, 1/fan_in) (independently per member) and zero the biases."""
        with torch.no_grad():
            for weight, bias in zip(self.weights, self.biases, strict=True):
                std = 1.0 / math.sqrt(weight.shape[2])
                weight.copy_(
                    torch.randn(weight.shape, generator=generator, dtype=weight.dtype) * std
                )
                bias.zero_()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Member energies of the atoms whose AEVs are ``features`` ``(n_X, in)`` → ``(M, n_X)``."""
        n_atoms = features.shape[0]
        members = self.ensemble_size
        first_weight = self.weights[0]  # (M, h1, in)
        hidden = functional.linear(
            features, first_weight.reshape(-1, first_weight.shape[2]), self.biases[0].reshape(-1)
        )  # (n_X, M·h1)
        hidden = functional.celu(hidden, alpha=self.celu_alpha)
        hidden = hidden.view(n_atoms, members, -1).transpose(0, 1)  # (M, n_X, h1)
        last = self.n_layers - 1
        for layer in range(1, self.n_layers):
            hidden = torch.baddbmm(
                self.biases[layer].unsqueeze(1), hidden, self.weights[layer].transpose(1, 2)
            )  # (M, n_X, out)
            if layer != last:
                hidden = functional.celu(hidden, alpha=self.celu_alpha)
        return hidden.squeeze(2)  # (M, n_X)
