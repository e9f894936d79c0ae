"""Ensembles of finished runs: reading and checking run folders, blending them, and the board of runs and scores."""
