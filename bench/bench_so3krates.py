"""So3krates speed: ase_mlpot vs so3krates-torch, same hyperparameters and weights, same run.

Measures, in float32 on the CPU (``--threads`` intra-op threads, default 1):

1. energy + forces per call through each ASE calculator (neighbour list and batching included)
   and through the bare model (prebuilt graph), on aspirin (21 atoms) and a periodic water box of
   343 molecules (1,029 atoms, L = 21.7 Å);
2. MD throughput (ns/day) of aspirin with velocity Verlet (0.5 fs) through each calculator.

Both models are so3krates-torch's README defaults (T = 3, F = 128, H = 4, 𝓛 = {1, 2, 3, 4},
r_c = 4.5 Å, 32 Bernstein functions, cosine cutoff, n̄ = 13.17) with the same random weights
(so3krates-torch's are mapped into ours). Results go to stdout (a Markdown table).

Usage::

    python bench/bench_so3krates.py [--threads 1] [--repeats 20] [--md-steps 200] [--compile]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from ase import Atoms, units
from ase.md.verlet import VelocityVerlet

from ase_mlpot import keys
from ase_mlpot.calculator import MLPotCalculator
from ase_mlpot.data.batch import atoms_to_batch, batch_to_device
from ase_mlpot.models.outputs import compute_outputs
from ase_mlpot.models.so3krates.convert import from_so3krates_torch, so3krates_torch_inputs
from ase_mlpot.testing import aspirin, periodic_water_box

SETTINGS: dict[str, Any] = dict(
    r_max=4.5, num_radial_basis_fn=32, degrees=[1, 2, 3, 4], num_features=128, num_heads=4,
    num_layers=3, energy_regression_dim=128, radial_basis_fn="bernstein", avg_num_neighbors=13.17,
)


def water_box() -> Atoms:
    """343 waters on a sheared 7 × 7 × 7 lattice, 3.1 Å apart (L = 21.7 Å, ~1 g/cm³)."""
    return periodic_water_box(n_side=7, spacing=3.1, seed=5)


@contextlib.contextmanager
def keep_default_dtype() -> Iterator[None]:
    """so3krates-torch sets torch's default dtype in its constructors and calculator."""
    default = torch.get_default_dtype()
    try:
        yield
    finally:
        torch.set_default_dtype(default)


def timed(function: Callable[[], object], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median and minimum wall time and mean process CPU time per call, in ms."""
    for _ in range(warmup):
        function()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"median": 1e3 * statistics.median(walls), "min": 1e3 * min(walls),
            "cpu": 1e3 * statistics.fmean(cpus)}


def ase_call(calc: Any, atoms: Atoms) -> Callable[[], object]:
    """A full ASE energy + forces call on a fresh structure (no result caching)."""
    def call() -> object:
        moved = atoms.copy()
        moved.calc = calc
        calc.reset()
        return moved.get_forces()
    return call


def md_throughput(calc: Any, steps: int) -> float:
    """ns/day of aspirin NVE (from rest), 0.5 fs steps, through ``calc``."""
    atoms = aspirin()
    atoms.calc = calc
    # Starts at rest: random weights do not bind the molecule, a thermal start would let atoms
    # fly through each other. Every step is still one full energy + forces call.
    dynamics = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dynamics.run(5)
    start = time.perf_counter()
    dynamics.run(steps)
    seconds = time.perf_counter() - start
    return steps * 0.5e-6 / seconds * 86400.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--water-repeats", type=int, default=5)
    parser.add_argument("--md-steps", type=int, default=200, help="0 skips the MD run")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # benchmark process only

    from so3krates_torch.calculator.so3 import TorchkratesCalculator
    from so3krates_torch.modules.models import So3krates as ReferenceSo3krates

    torch.manual_seed(0)
    with keep_default_dtype():
        reference = ReferenceSo3krates(dtype=torch.float32, **SETTINGS).eval()
        reference_calc = TorchkratesCalculator(models=[reference], model_type="so3krates",
                                               device="cpu", default_dtype="float32")
    with torch.no_grad():  # weak random forces: the MD run stays a free-flight-like trajectory
        reference.atomic_energy_output_block.final_layer.weight.mul_(1e-3)
    ours = from_so3krates_torch(reference, ("H", "C", "N", "O"))
    our_calc = MLPotCalculator(ours, device="cpu", dtype=torch.float32)
    n_parameters = sum(p.numel() for p in ours.parameters())
    print(f"# So3krates bench: torch {torch.__version__}, {args.threads} thread(s), float32,"
          f" {n_parameters:,} parameters\n")
    print("| system (atoms / edges) | path | so3krates-torch ms (median / min / CPU) |"
          " ase_mlpot ms (median / min / CPU) | speed-up (median) |")
    print("|---|---|---|---|---|")
    for name, atoms, repeats in (("aspirin", aspirin(), args.repeats),
                                 ("water box", water_box(), args.water_repeats)):
        batch = batch_to_device(
            atoms_to_batch(atoms, elements=ours.atomic_numbers, cutoff=ours.cutoff),
            dtype=torch.float32, device="cpu",
        )
        n_edges = batch[keys.EDGE_INDEX].shape[1]
        inputs = so3krates_torch_inputs(atoms, SETTINGS["r_max"], dtype=torch.float32)

        def reference_model(inputs: dict[str, Any] = inputs) -> object:
            return reference({k: v.clone() if torch.is_tensor(v) else v
                              for k, v in inputs.items()})["forces"]

        def our_model(batch: dict[str, torch.Tensor] = batch) -> object:
            return compute_outputs(ours, batch)[keys.FORCES]

        with keep_default_dtype():
            rows = [("ASE call", timed(ase_call(reference_calc, atoms), repeats),
                     timed(ase_call(our_calc, atoms), repeats)),
                    ("model only", timed(reference_model, repeats), timed(our_model, repeats))]
        if args.compile:
            compiled = torch.compile(ours, dynamic=True)
            rows.append(("model only, torch.compile", rows[1][1],
                         timed(lambda c=compiled, b=batch: compute_outputs(c, b)[keys.FORCES],
                               repeats, warmup=3)))
        for path, theirs, mine in rows:
            print(f"| {name} ({len(atoms)} / {n_edges}) | {path} |"
                  f" {theirs['median']:.1f} / {theirs['min']:.1f} / {theirs['cpu']:.1f} |"
                  f" {mine['median']:.1f} / {mine['min']:.1f} / {mine['cpu']:.1f} |"
                  f" {theirs['median'] / mine['median']:.2f}× |")
    if args.md_steps <= 0:
        return
    with keep_default_dtype():
        theirs_md = md_throughput(reference_calc, args.md_steps)
        mine_md = md_throughput(our_calc, args.md_steps)
    print(f"\nAspirin NVE (0.5 fs), ns/day: so3krates-torch {theirs_md:.2f},"
          f" ase_mlpot {mine_md:.2f} ({mine_md / theirs_md:.2f}×)")


if __name__ == "__main__":
    main()
