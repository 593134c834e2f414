"""Deterministic randomness: one seed per run, one independent stream per model.

Contract
--------
* :func:`model_rng` derives a model's :class:`random.Random` from ``(seed, model)``
  through SHA-256, never through :func:`hash` (which is salted per process for ``str``),
  so the same seed gives the same draws on every run, every machine, every Python.
* Streams are independent by construction: adding a model, or a model drawing more or
  fewer numbers, never changes another model's draws.
"""

from __future__ import annotations

import hashlib
import random


def model_rng(seed: int, model: str) -> random.Random:
    """The random stream of ``model`` (e.g. ``"fuser"``) in the run seeded ``seed``."""
    digest = hashlib.sha256(f"printer-emu/{seed}/{model}".encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))
