"""Tiny random-weight models for unit tests (deterministic, seconds to build and evaluate)."""

from __future__ import annotations

import torch

from ase_mlpot.models.ani import AEVConfig, ANIConfig, ANIEnsemble
from ase_mlpot.models.so3krates import So3krates, So3kratesConfig

__all__ = ["TINY_ANI_REFERENCE", "TINY_SO3KRATES_REFERENCE", "tiny_ani_model", "tiny_so3krates"]

#: Reference energies (Hartree) of the tiny ANI model; realistic magnitudes, arbitrary values.
TINY_ANI_REFERENCE = {"H": -0.5, "C": -37.8, "N": -54.5, "O": -75.0}
#: Reference energies (eV) of the tiny So3krates models; realistic magnitudes, arbitrary values.
TINY_SO3KRATES_REFERENCE = {"H": -13.6, "C": -1029.0, "N": -1484.0, "O": -2041.0}


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


def tiny_so3krates(*, seed: int = 0, **overrides: object) -> So3krates:
    """A small H, C, N, O So3krates (F = 16, 2 heads, 2 layers, degrees 1–4, r_c = 4 Å) with
    deterministic random weights and per-element head scale/shift (global RNG untouched).

    Args:
        seed: Seed of the private generators.
        **overrides: Any :class:`So3kratesConfig` field.
    """
    settings: dict[str, object] = {
        "num_features": 16, "num_heads": 2, "num_layers": 2, "degrees": (1, 2, 3, 4),
        "num_radial_basis": 8, "energy_regression_dim": 16, "cutoff": 4.0,
    }
    settings.update(overrides)
    model = So3krates(So3kratesConfig(**settings), reference_energies=TINY_SO3KRATES_REFERENCE)
    model.reset_parameters(torch.Generator().manual_seed(seed))
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for member in model.members:
            member.head.shift.copy_(0.1 * torch.randn(member.head.shift.shape, generator=generator))
            # forces of ~0.3 eV/Å, as the tiny ANI model's: far above the float32 tolerances
            member.head.scale.copy_(5.0 + 2.5 * torch.rand(member.head.scale.shape,
                                                         generator=generator))
    return model
