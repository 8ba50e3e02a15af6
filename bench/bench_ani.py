"""ANI-1ccx energy + forces: ase_mlpot versus TorchANI 2.9 with the same weights, in one run.

Cases: aspirin (21 atoms), a batch of 64 small molecules, a periodic water box (~3,000 atoms).
Peers: TorchANI's default path (``ANI1ccx().ase()``) and its fastest CPU path
(``to_infer_model(use_mnp=False)`` then ``torch.jit.script``, in ``torchani.ase.Calculator``);
for the water box TorchANI uses its ``cell_list`` neighbour list (``all_pairs`` is quadratic).
Timing: median wall time of repeated calls after warm-up, one intra-op thread by default
(``--threads``), float32 and float64. Prints a table and the ratios (TorchANI / ours).

Usage: python bench/bench_ani.py [--shared ../shared/data] [--threads 1] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule

from ase_mlpot.calculator import MLPotCalculator
from ase_mlpot.models.ani.convert import model_from_published, read_published_ani
from ase_mlpot.testing import periodic_water_box


def aspirin() -> Atoms:
    """Aspirin (21 atoms) embedded by RDKit ETKDG and relaxed with MMFF (deterministic seed)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)OC1=CC=CC=C1C(=O)O"))
    AllChem.EmbedMolecule(mol, randomSeed=42)
    AllChem.MMFFOptimizeMolecule(mol)
    return Atoms(
        [a.GetSymbol() for a in mol.GetAtoms()], positions=mol.GetConformer().GetPositions()
    )


def timed(function: Callable[[], object], repeats: int) -> float:
    function()
    function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def call_energy_forces(atoms: Atoms, calc: object) -> Callable[[], object]:
    """One full ASE call (the positions change slightly so nothing is cached)."""
    atoms = atoms.copy()
    atoms.calc = calc
    rng = np.random.default_rng(0)

    def run() -> object:
        atoms.positions += rng.normal(scale=1e-4, size=atoms.positions.shape)
        return atoms.get_forces()

    return run


def torchani_models(shared: Path, dtype: torch.dtype) -> dict[str, object]:
    import torchani

    data_dir = Path(tempfile.mkdtemp())
    (data_dir / "StateDicts").mkdir()
    (data_dir / "StateDicts" / "ani1ccx_state_dict.pt").symlink_to(
        shared / "torchani-statedicts" / "StateDicts" / "ani1ccx_state_dict.pt"
    )
    os.environ["TORCHANI_DATA_DIR"] = str(data_dir)  # a benchmark script, not library code
    os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
    default = torchani.models.ANI1ccx(dtype=dtype)
    fastest = torchani.models.ANI1ccx(dtype=dtype).to_infer_model(use_mnp=False)
    cell_list = torchani.models.ANI1ccx(dtype=dtype, neighborlist="cell_list")
    fastest_cell = torchani.models.ANI1ccx(dtype=dtype, neighborlist="cell_list").to_infer_model(
        use_mnp=False
    )
    return {
        "default": default.ase(),
        "fastest": torchani.ase.Calculator(torch.jit.script(fastest)),
        "default_pbc": cell_list.ase(),
        "fastest_pbc": torchani.ase.Calculator(torch.jit.script(fastest_cell)),
        "module": default,
    }


def batch_of_small_molecules() -> list[Atoms]:
    names = [
        "H2O",
        "CH4",
        "NH3",
        "CH3OH",
        "C2H6",
        "HCOOH",
        "CH3CHO",
        "C2H4",
        "HCN",
        "H3CNH2",
        "H2CO",
        "C2H2",
        "CH3CN",
        "N2H4",
        "C3H8",
        "CH3COOH",
    ]
    structures = []
    rng = np.random.default_rng(1)
    for k in range(64):
        atoms = molecule(names[k % len(names)])
        atoms.positions += rng.normal(scale=0.02, size=atoms.positions.shape)
        structures.append(atoms)
    return structures


def torchani_batch(module: object, structures: list[Atoms], dtype: torch.dtype) -> Callable:
    n_max = max(len(a) for a in structures)
    species = torch.full((len(structures), n_max), -1, dtype=torch.int64)
    coordinates = torch.zeros((len(structures), n_max, 3), dtype=dtype)
    for k, atoms in enumerate(structures):
        species[k, : len(atoms)] = torch.tensor(atoms.numbers)
        coordinates[k, : len(atoms)] = torch.tensor(atoms.positions, dtype=dtype)

    def run() -> object:
        positions = coordinates.clone().requires_grad_(True)
        energies = module((species, positions)).energies
        return torch.autograd.grad(energies.sum(), positions)[0]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--box-waters", type=int, default=1000, help="waters in the PBC box")
    parser.add_argument("--dtypes", default="float32,float64")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # a benchmark script, not library code
    published = read_published_ani(args.shared / "ani-neurochem-weights" / "ani-1ccx_8x.info")
    side = round(args.box_waters ** (1 / 3))
    box = periodic_water_box(n_side=side, spacing=3.1, seed=0)
    small = batch_of_small_molecules()
    drug = aspirin()
    print(f"threads={args.threads}, torch {torch.__version__}, water box {len(box)} atoms")
    print(
        f"{'case':<28}{'dtype':<9}{'ours ms':>10}{'TA default':>12}{'TA fastest':>12}"
        f"{'ratio def':>11}{'ratio fast':>12}"
    )
    for name in args.dtypes.split(","):
        dtype = getattr(torch, name)
        ours = MLPotCalculator(model_from_published(published), device="cpu", dtype=dtype)
        peers = torchani_models(args.shared, dtype)
        cases = [
            (
                "aspirin (21 atoms)",
                call_energy_forces(drug, ours),
                call_energy_forces(drug, peers["default"]),
                call_energy_forces(drug, peers["fastest"]),
                args.repeats,
            ),
            (
                "64 small molecules, batch",
                lambda calc=ours: calc.calculate_batch(small),
                torchani_batch(peers["module"], small, dtype),
                None,
                max(3, args.repeats // 4),
            ),
            (
                f"water box PBC ({len(box)})",
                call_energy_forces(box, ours),
                call_energy_forces(box, peers["default_pbc"]),
                call_energy_forces(box, peers["fastest_pbc"]),
                3,
            ),
        ]
        for label, our_run, default_run, fast_run, repeats in cases:
            t_ours = timed(our_run, repeats)
            t_default = timed(default_run, repeats)
            t_fast = timed(fast_run, repeats) if fast_run else float("nan")
            print(
                f"{label:<28}{name:<9}{1e3 * t_ours:>10.2f}{1e3 * t_default:>12.2f}"
                f"{1e3 * t_fast:>12.2f}{t_default / t_ours:>10.2f}x{t_fast / t_ours:>11.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
