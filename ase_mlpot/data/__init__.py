"""Structures to batches: validation, neighbour lists and collation."""

from ase_mlpot.data.batch import atoms_to_batch, batch_to_device, collate
from ase_mlpot.data.neighborlist import NEIGHBOR_BACKENDS, neighbor_list

__all__ = ["NEIGHBOR_BACKENDS", "atoms_to_batch", "batch_to_device", "collate", "neighbor_list"]
