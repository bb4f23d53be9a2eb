"""Bulk in-memory work without the cyclic garbage collector.

Linking and reporting build millions of small objects with no reference cycles. Each
full collection walks every live object, so its cost grew with the catalogue and came
to dominate a force-sized report; the collector is paused for such work and restored
afterwards (reference counting still frees everything as usual).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
