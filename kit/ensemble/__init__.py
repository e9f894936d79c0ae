"""Ensembles of finished runs: reading and checking run folders, blending them, and the board of runs and scores."""

METHODS = ("mean", "rank", "hill", "stack")  # here, not in `blend`: `kit blend --help` needs no library import
