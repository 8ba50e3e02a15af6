"""The physics mixin suite and So3krates-specific checks for tiny random-weight So3krates models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from e3nn.util.test import assert_equivariant

from ase_mlpot import keys
from ase_mlpot.calculator import MLPotCalculator
from ase_mlpot.data.batch import atoms_to_batch, batch_to_device
from ase_mlpot.io import build_model
from ase_mlpot.models.outputs import compute_outputs
from ase_mlpot.models.registry import get_architecture
from ase_mlpot.models.so3krates import So3krates, So3kratesConfig
from ase_mlpot.models.so3krates.model import edge_pairs
from ase_mlpot.testing import ModelTests, organic_molecule, periodic_water_box, water
from ase_mlpot.testing.factories import TINY_SO3KRATES_REFERENCE, tiny_so3krates


class TestTinySo3krates(ModelTests):
    """Paper-era defaults (PhysNet basis, cosine cutoff, √(head dim) normalisation), one network."""

    def make_model(self) -> So3krates:
        return tiny_so3krates(seed=0)


class TestTinySo3kratesCommittee(ModelTests):
    """SO3LR-style options (Bernstein, PhysNet cutoff, n̄, layer norms, residual MLPs, Eq. 11 χ⁰,
    SiLU q/k) in a committee of three."""

    def make_model(self) -> So3krates:
        model = tiny_so3krates(
            seed=3, radial_basis="bernstein", cutoff_function="physnet",
            attention_normalization="avg_num_neighbors", avg_num_neighbors=6.0,
            layer_norm_1=True, layer_norm_2=True, residual_mlp_1=True, residual_mlp_2=True,
            chi_init="neighbors", qk_non_linearity="silu", degrees=(1, 2), ensemble_size=3,
        )
        with torch.no_grad():  # the layer norms damp the forces to ~0.08 eV/Å: back to ~0.3
            for member in model.members:
                member.head.scale.mul_(4.0)
        return model


# --------------------------------------------------------------------------- So3krates specifics
def _forces_function(model: So3krates, atoms):  # type: ignore[no-untyped-def]
    batch = batch_to_device(
        atoms_to_batch(atoms, elements=model.atomic_numbers, cutoff=model.cutoff + 2.0),
        dtype=torch.float64, device="cpu",
    )

    def forces(positions: torch.Tensor) -> torch.Tensor:
        # Positions move rigidly, so the (padded) neighbour list stays valid.
        out = compute_outputs(model, {**batch, keys.POSITIONS: positions})
        return out[keys.FORCES]  # (n_atoms, 3)

    return forces, batch[keys.POSITIONS]


@pytest.mark.parametrize("ensemble_size", [1, 2])
def test_forces_are_equivariant_e3nn(ensemble_size: int) -> None:
    """e3nn's check: forces (1o) rotate, reflect and are translation invariant with positions."""
    model = tiny_so3krates(seed=5, ensemble_size=ensemble_size).double()
    forces, positions = _forces_function(model, organic_molecule())
    # e3nn draws its rotations in float32 (~1e-7 relative): the tolerance is relative to |F|,
    # which is ~0.3 eV/Å here; a broken model errs by ~|F|.
    scale = float(forces(positions).abs().max())
    assert scale > 0.1
    errors = assert_equivariant(
        forces, args_in=[positions], irreps_in=["cartesian_points"], irreps_out=["1o"],
        do_parity=True, do_translation=True, tolerance=2e-6 * scale,
    )
    assert max(float(e.max()) for e in errors.values()) < 2e-6 * scale


def test_pairs_match_plain_edges() -> None:
    """Evaluating filters once per pair equals the plain per-edge evaluation (incl. self images)."""
    from ase import Atoms

    small = Atoms("CO", positions=[[0.1, 0.2, 0.0], [1.2, 0.1, 0.3]],
                  cell=[[2.9, 0.0, 0.0], [0.3, 3.1, 0.0], [0.0, 0.2, 3.3]], pbc=True)
    for atoms in (organic_molecule(), periodic_water_box(), small):
        model = tiny_so3krates(seed=2, chi_init="neighbors")
        calc = MLPotCalculator(model, device="cpu", dtype=torch.float64)
        atoms.calc = calc
        energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), None
        if atoms.pbc.all():
            stress = atoms.get_stress()
        model.use_pair_symmetry = False
        atoms.calc = MLPotCalculator(model, device="cpu", dtype=torch.float64)
        assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-10)
        np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-10)
        if stress is not None:
            np.testing.assert_allclose(atoms.get_stress(), stress, atol=1e-12)


def test_edge_pairs_finds_reverse_edges() -> None:
    atoms = periodic_water_box()
    batch = atoms_to_batch(atoms, elements=(1, 8), cutoff=4.0)
    edge_index, shift = batch[keys.EDGE_INDEX], batch[keys.CELL_SHIFT]
    pairs = edge_pairs(edge_index, shift, len(atoms))
    assert pairs is not None
    forward, partner = pairs
    assert 2 * forward.numel() == edge_index.shape[1]
    mate = forward[partner]  # (n_edges,) the canonical edge of each edge's pair
    same = mate == torch.arange(edge_index.shape[1])
    assert torch.equal(edge_index[:, mate][:, same], edge_index[:, same])
    reverse = ~same
    assert torch.equal(edge_index[0, mate[reverse]], edge_index[1, reverse])
    assert torch.equal(edge_index[1, mate[reverse]], edge_index[0, reverse])
    assert torch.equal(shift[mate[reverse]], -shift[reverse])
    # A half list has no partners: the caller falls back to plain edges.
    assert edge_pairs(edge_index[:, forward], shift[forward], len(atoms)) is None


def test_committee_members_are_independent_networks() -> None:
    committee = tiny_so3krates(seed=4, ensemble_size=3).double()
    batch = batch_to_device(
        atoms_to_batch(water(), elements=committee.atomic_numbers, cutoff=committee.cutoff),
        dtype=torch.float64, device="cpu",
    )
    out = compute_outputs(committee, batch)
    assert out[keys.MEMBER_ENERGIES].shape == (3, 1)
    assert float(out[keys.ENERGY_STD][0]) > 0
    config = dataclasses.replace(committee.config, ensemble_size=1)
    for index, member in enumerate(committee.members):
        single = So3krates(config, reference_energies=TINY_SO3KRATES_REFERENCE).double()
        single.members[0].load_state_dict(member.state_dict())
        alone = compute_outputs(single, batch)
        assert float(alone[keys.TOTAL_ENERGY][0]) == pytest.approx(
            float(out[keys.MEMBER_ENERGIES][index, 0]), abs=1e-10)


def test_registry_and_config_round_trip() -> None:
    model_class, config_class = get_architecture("so3krates")
    assert model_class is So3krates and config_class is So3kratesConfig
    config = So3kratesConfig(degrees=(1, 3), num_features=24, num_heads=3, ensemble_size=2,
                             attention_normalization="avg_num_neighbors", avg_num_neighbors=11.5)
    assert So3kratesConfig.from_dict(config.to_dict()) == config
    model = build_model({"architecture": "so3krates", "config": config.to_dict(),
                         "reference_energies": {"H": -0.5}})
    assert isinstance(model, So3krates) and model.ensemble_size == 2
    with pytest.raises(ValueError, match="unknown So3kratesConfig keys"):
        So3kratesConfig.from_dict({**config.to_dict(), "r_max": 4.5})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_features": 30}, "divisible by 4"),
        ({"num_features": 20, "num_heads": 3}, "divisible by num_heads"),
        ({"num_features": 16, "num_heads": 4, "degrees": (1, 2, 3)},
         r"divisible by len\(degrees\)"),
        ({"degrees": (0, 1)}, "degrees"),
        ({"attention_normalization": "avg_num_neighbors"}, "needs avg_num_neighbors"),
        ({"radial_basis": "bessel"}, "radial_basis"),
        ({"cutoff_function": "tanh"}, "cutoff_function"),
        ({"qk_non_linearity": "relu6"}, "qk_non_linearity"),
        ({"elements": ("H", "H")}, "distinct"),
    ],
)
def test_config_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        So3kratesConfig(**overrides)  # type: ignore[arg-type]


def test_state_dict_has_only_weights_and_float64_constants_survive_casts() -> None:
    model = tiny_so3krates(seed=1, radial_basis="bernstein")
    assert all(value.is_floating_point() for value in model.state_dict().values())
    single = model.float()
    assert single.norm_matrix.dtype == torch.float64
    assert single.radial_basis.log_binomial.dtype == torch.float64


def test_torch_compile_matches_eager() -> None:
    """torch.compile of the network (dynamic shapes) reproduces eager energies and forces."""
    model = tiny_so3krates(seed=6).double().eval()
    compiled = torch.compile(model, dynamic=True)
    for atoms in (organic_molecule(), water()):
        batch = batch_to_device(
            atoms_to_batch(atoms, elements=model.atomic_numbers, cutoff=model.cutoff),
            dtype=torch.float64, device="cpu",
        )
        eager = compute_outputs(model, batch)
        fast = compute_outputs(compiled, batch)  # type: ignore[arg-type]
        assert float(fast[keys.TOTAL_ENERGY][0]) == pytest.approx(
            float(eager[keys.TOTAL_ENERGY][0]), abs=1e-10)
        torch.testing.assert_close(fast[keys.FORCES], eager[keys.FORCES], atol=1e-10, rtol=0)
