"""The synthetic universe: department files as they would land, with a known ground truth."""

from simulate.universe import SimConfig, simulate

__all__ = ["SimConfig", "simulate"]
