"""The seed rule of a derived image: one rule for every platform.

* reroll: a new random seed (same prompt and style, a different picture);
* vary: the parent's seed plus a random step of 1..``VARIATION_SPREAD``: close to the parent,
  and random so that pressing Variations twice does not make the same image twice;
* restyle and remix: the parent's seed, so only the style (or nothing) changes.
"""

from __future__ import annotations

import random

from bot.domain import MAX_SEED, DeriveKind

VARIATION_SPREAD = 64  # a variation's seed is at most this far from its parent's


def derived_seed(kind: DeriveKind, parent_seed: int, rng: random.Random) -> int:
    """The seed of a ``kind`` derived from a job with ``parent_seed``."""
    match kind:
        case DeriveKind.REROLL:
            return rng.randint(0, MAX_SEED)
        case DeriveKind.VARY:
            return (parent_seed + rng.randint(1, VARIATION_SPREAD)) % (MAX_SEED + 1)
        case DeriveKind.RESTYLE | DeriveKind.REMIX:
            return parent_seed
