"""The physics mixin suite for a tiny random-weight ANI ensemble."""

from __future__ import annotations

from ase_mlpot.models.ani import ANIEnsemble
from ase_mlpot.testing import ModelTests, tiny_ani_model


class TestTinyANI(ModelTests):
    def make_model(self) -> ANIEnsemble:
        return tiny_ani_model(seed=0)
