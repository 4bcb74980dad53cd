"""Indexing: people resolution (identity.py), chunking (chunker.py), the build in phases (build.py),
the per-index abstention calibration (calibration.py) and `forget` (forget.py)."""
