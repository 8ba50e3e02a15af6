"""The ANI family: AEVs, batched ensemble networks, readers of published weights."""

from ase_mlpot.models.ani.aev import AEVComputer
from ase_mlpot.models.ani.config import AEVConfig, ANIConfig
from ase_mlpot.models.ani.model import ANIEnsemble

__all__ = ["AEVComputer", "AEVConfig", "ANIConfig", "ANIEnsemble"]
