"""2 ps NVE of a random-weight So3krates on a small molecule, float64: energy is conserved."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from ase import units
from ase.calculators.mixing import SumCalculator
from ase.calculators.morse import MorsePotential
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from ase_mlpot.calculator import MLPotCalculator
from ase_mlpot.models.so3krates import So3krates, So3kratesConfig
from ase_mlpot.testing import organic_molecule

logger = logging.getLogger(__name__)


@pytest.mark.slow
def test_two_picoseconds_nve_conserve_energy() -> None:
    """Velocity Verlet, 0.5 fs × 4,000 steps at 300 K, on acetaldehyde.

    A random-weight network does not bind a molecule, so an all-pair Morse term (ASE's,
    smoothly cut off; ε = 0.3 eV, its wall keeps the random network from collapsing atoms)
    keeps the 7 atoms together; they keep crossing each other's So3krates
    cutoff (3.5 Å) for the whole run. The So3krates forces are of the same order as the Morse
    ones (checked), so a non-conservative or non-smooth So3krates would show up as drift.
    """
    config = So3kratesConfig(num_features=32, num_heads=2, num_layers=2, degrees=(1, 2, 3, 4),
                             num_radial_basis=16, energy_regression_dim=32, cutoff=3.5)
    model = So3krates(config)
    model.reset_parameters(torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.members[0].head.scale.fill_(100.0)  # forces of ~1 eV/Å from the network
    atoms = organic_molecule()
    network = MLPotCalculator(model, device="cpu", dtype=torch.float64)
    morse = MorsePotential(epsilon=0.3, r0=1.2, rho0=3.0, rcut1=2.5, rcut2=3.5)
    probe = atoms.copy()
    probe.calc = network
    network_forces = np.abs(probe.get_forces()).max()
    probe.calc = morse
    assert network_forces > 0.1 * np.abs(probe.get_forces()).max() and network_forces > 0.3
    atoms.calc = SumCalculator([network, morse])
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(1))
    Stationary(atoms)
    ZeroRotation(atoms)
    dynamics = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    totals: list[float] = []
    pairs_in_range: list[int] = []  # atom pairs within the So3krates cutoff

    def record() -> None:
        totals.append(atoms.get_total_energy())
        distances = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
        pairs_in_range.append(int(np.count_nonzero(distances < config.cutoff)))

    dynamics.attach(record, interval=20)  # every 10 fs
    dynamics.run(4000)
    # Velocity Verlet's total energy oscillates about a conserved shadow energy with an offset set
    # in the first steps; the drift is the fitted slope after 0.1 ps, times 2 ps.
    totals_array = np.array(totals)[10:]  # every 10 fs, from 0.1 ps
    times = np.arange(totals_array.size) * 0.01  # ps
    drift = float(np.polyfit(times, totals_array, 1)[0] * 2.0)
    spread = float(totals_array.max() - totals_array.min())
    kinetic = atoms.get_kinetic_energy()
    logger.info("2 ps NVE: drift %.2e eV, max-min %.2e eV, final Ekin %.3f eV", drift, spread,
                kinetic)
    print(f"2 ps NVE drift {drift:.2e} eV, total-energy spread {spread:.2e} eV")
    assert kinetic > 0.01  # still moving
    # pairs enter and leave the cutoff during the run: the energy crosses it many times
    assert len(set(pairs_in_range)) > 1
    assert np.count_nonzero(np.diff(pairs_in_range)) >= 10
    # Verlet's bounded oscillation about the shadow energy (H atoms against the Morse wall at
    # 0.5 fs) is a few 1e-2 eV; a cutoff discontinuity or non-conservative force shows as jumps
    # or as the drift below
    assert spread < 5e-2, f"total energy spread {spread:.2e} eV over 2 ps"
    assert abs(drift) < 1e-3, f"NVE energy drift {drift:.2e} eV over 2 ps"
