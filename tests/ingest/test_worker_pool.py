"""Ingest's process pools hold each process to its share of the cores.

`bwv ingest --workers N` and `bwv worker` give each of their N processes cores / N
threads for the model; without a limit, numpy's OpenBLAS, OpenMP and OpenCV would also
start a thread per core in every process, and N processes on N cores would run 2N busy
threads (measured: a one-thread worker used 1.15 cores, so two could not double one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ingest.config import load_config
from ingest.worker import NATIVE_THREAD_VARIABLES, IngestOptions, worker_pool


@pytest.fixture
def environment() -> Iterator[None]:
    """The pool sets the thread variables in this process for its children: put the
    environment back as it was, without them at the start."""
    saved = dict(os.environ)
    for name in NATIVE_THREAD_VARIABLES:
        os.environ.pop(name, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_each_pool_process_runs_its_numeric_libraries_on_its_share_of_threads(
    environment: None,
) -> None:
    import cv2

    options = IngestOptions(transcribe=False)
    with worker_pool(1, 1, options, load_config()) as pool:
        seen = [pool.submit(os.getenv, name).result() for name in NATIVE_THREAD_VARIABLES]
        assert seen == ["1"] * len(NATIVE_THREAD_VARIABLES)
        assert pool.submit(cv2.getNumThreads).result() == 1


def test_a_thread_limit_the_user_set_is_kept(environment: None) -> None:
    os.environ["OPENBLAS_NUM_THREADS"] = "3"
    with worker_pool(1, 1, IngestOptions(transcribe=False), load_config()) as pool:
        assert pool.submit(os.getenv, "OPENBLAS_NUM_THREADS").result() == "3"
