"""Assertions shared by the core property tests."""

from __future__ import annotations

import numpy as np


def snapshot(arrays):
    """Copies of the inputs (None stays None), to check later that a call did not modify them."""
    return [None if a is None else a.copy() for a in arrays]


def assert_unmutated(arrays, copies, what: str) -> None:
    for a, c in zip(arrays, copies, strict=True):
        assert (a is None and c is None) or np.array_equal(a, c), f"{what} mutated an input"
