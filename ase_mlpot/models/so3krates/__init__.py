"""The So3krates family: Euclidean transformer with spherical-harmonic coordinates."""

from ase_mlpot.models.so3krates.config import So3kratesConfig
from ase_mlpot.models.so3krates.model import So3krates, So3kratesNetwork

__all__ = ["So3krates", "So3kratesConfig", "So3kratesNetwork"]
