"""Tiny random-weight models for unit tests (deterministic, seconds to build and evaluate)."""

from __future__ import annotations

import torch

from ase_mlpot.models.ani import AEVConfig, ANIConfig, ANIEnsemble

__all__ = ["tiny_ani_model"]

#: Reference energies (Hartree) of the tiny ANI model; realistic magnitudes, arbitrary values.
TINY_ANI_REFERENCE = {"H": -0.5, "C": -37.8, "N": -54.5, "O": -75.0}


def tiny_ani_model(
    *,
    seed: int = 0,
    ensemble_size: int = 3,
    hidden: tuple[int, ...] = (16, 8),
    output_scale: float = 0.05,
    aev: AEVConfig | None = None,
) -> ANIEnsemble:
    """An H, C, N, O ANI ensemble with random weights and the ANI-1x AEV (unless ``aev``).

    Args:
        seed: Seed of a private generator (the global RNG is untouched).
        ensemble_size: Number of members.
        hidden: Hidden-layer widths, the same for every element.
        output_scale: Scale of the output layer, so energies vary by ~0.01 Hartree.
        aev: AEV hyperparameters (default ANI-1x).
    """
    elements = ("H", "C", "N", "O")
    config = ANIConfig(
        elements=elements,
        aev=aev or AEVConfig(),
        hidden_layers={symbol: hidden for symbol in elements},
        ensemble_size=ensemble_size,
    )
    model = ANIEnsemble(config, reference_energies=TINY_ANI_REFERENCE)
    generator = torch.Generator().manual_seed(seed)
    model.reset_parameters(generator)
    with torch.no_grad():
        for network in model.networks.values():
            network.weights[-1].mul_(output_scale)
            network.biases[-1].copy_(
                torch.randn(network.biases[-1].shape, generator=generator) * output_scale
            )
    return model
