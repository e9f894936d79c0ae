"""Competition modules: one package per competition, each exposing `COMPETITION`."""
