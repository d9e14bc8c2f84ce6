"""Config keys that moved, old name → new: a command line that still sets the old one is told
the new one (cli.runner), and a run saved before the move resumes under the new names
(training.resume reads its stored config with them). No torch import here."""

from __future__ import annotations

from typing import Any

MOVED = {"decay_norm_and_bias": "optimizer.decay_norm_and_bias", "nonfinite": "callbacks.nonfinite"}


def moved(key: str) -> str | None:
    """The key's new name, when it or a key above it moved (`nonfinite.policy` → its new home)."""
    for old, new in MOVED.items():
        if key == old or key.startswith(f"{old}."):
            return new + key[len(old) :]
    return None


def renamed(flat: dict[str, Any]) -> dict[str, Any]:
    """A flattened config (dotted keys) with every moved key under its new name."""
    return {moved(key) or key: value for key, value in flat.items()}
