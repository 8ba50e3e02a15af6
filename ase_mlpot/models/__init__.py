"""Architectures, the shared output head (energies, forces, stress) and the registry."""
