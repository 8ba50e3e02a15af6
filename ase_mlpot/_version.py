"""Version of the ase_mlpot package."""

__version__ = "0.1.0"
