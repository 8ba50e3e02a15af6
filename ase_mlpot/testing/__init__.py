"""Reusable physics tests for every architecture, and tiny random-weight model factories.

Subclass :class:`ModelTests` in a test module and implement ``make_model``::

    class TestTinyANI(ModelTests):
        def make_model(self):
            return tiny_ani_model(seed=0)
"""

from ase_mlpot.testing.factories import tiny_ani_model, tiny_so3krates
from ase_mlpot.testing.mixins import TOLERANCES, ModelTests
from ase_mlpot.testing.structures import (
    aspirin,
    dimer,
    isolated_atom,
    organic_molecule,
    periodic_water_box,
    water,
)

__all__ = [
    "TOLERANCES",
    "ModelTests",
    "aspirin",
    "dimer",
    "isolated_atom",
    "organic_molecule",
    "periodic_water_box",
    "tiny_ani_model",
    "tiny_so3krates",
    "water",
]
