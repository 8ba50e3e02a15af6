"""Importing the package and using the default model leave torch and the environment unchanged.

The in-process mixin test (:meth:`ase_mlpot.testing.ModelTests.test_no_global_side_effects`)
cannot see what an *import* changes, because the test process imported the package long before.
Here a fresh interpreter records the settings first (non-default thread counts and matmul
precision, so that a package resetting them to "its" values would show), then imports every
module of the package, loads the bundled default model and evaluates energy, forces and stress in
float32 and float64, and records them again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ase_mlpot.testing.global_state

SCRIPT = r"""
import importlib, importlib.util, json, pkgutil, sys
import torch

torch.set_num_threads(3)
torch.set_num_interop_threads(3)
torch.set_float32_matmul_precision("medium")
spec = importlib.util.spec_from_file_location("global_state", sys.argv[1])
state = importlib.util.module_from_spec(spec)
spec.loader.exec_module(state)
before = state.global_torch_state()

import ase_mlpot
from ase.build import bulk, molecule

modules = [m.name for m in pkgutil.walk_packages(ase_mlpot.__path__, "ase_mlpot.")
           # pyiron-base touches ~/pyiron.db when imported (tests/pyiron runs it in subprocesses)
           if m.name != "ase_mlpot.pyiron"]
for name in modules:
    importlib.import_module(name)
for dtype in ("float32", "float64"):
    atoms = molecule("CH3CH2OH")
    atoms.calc = ase_mlpot.load("ccx-general", device="cpu", dtype=dtype)
    atoms.get_forces()
    box = bulk("C", "diamond", a=3.57, cubic=True)
    box.calc = atoms.calc
    box.get_stress()
print(json.dumps({"before": before, "after": state.global_torch_state(),
                  "modules": len(modules)}))
"""


def test_import_and_default_model_leave_global_state_unchanged() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, ase_mlpot.testing.global_state.__file__],
        capture_output=True, text=True, check=True, timeout=600,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"] > 20  # the whole package was imported
    assert report["before"]["num_threads"] == 3
    assert report["after"] == report["before"]


def test_state_module_imports_only_torch() -> None:
    """The subprocess above loads it by path before the package: it must not import the package."""
    source = Path(ase_mlpot.testing.global_state.__file__).read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["from __future__ import annotations", "import os",
                       "from typing import Any", "import torch"]
