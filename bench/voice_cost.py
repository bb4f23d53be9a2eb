"""What child-voice attribution adds to transcription, per 30 s window, in the same run.

`bench/ingest.py` times whole ingests, where this shared machine's noise (a third between
runs) hides a few per cent. This times the parts on the same windows, interleaved, so both
see the same machine: transcription of a 30 s window (log-mel, encoder, greedy decoding;
ingest's `_transcribe_batch`, the baseline), and what attribution adds to it: the pitch,
formant and tilt rows of the window's audio (`ingest.voice.acoustic.acoustic_frames`) and
the pooled embeddings of its segments. Speech is the sample clips' audio, repeated to fill
the windows. Usage:

    .venv/bin/python bench/voice_cost.py [--windows 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
CLIP = ROOT / "sample_media" / "X60390007_20240116_072330.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from ingest.encoder import SAMPLE_RATE, Piece, pack_windows
    from ingest.transcribe import _transcribe_batch, load_transcriber
    from ingest.voice.acoustic import acoustic_frames
    from ingest.voice.training.data import load_audio

    transcriber = load_transcriber("tiny.en", "en", threads=1, child_voice=False)
    speech = np.resize(load_audio(CLIP), SAMPLE_RATE * 30 * args.windows)
    pieces = [Piece(30.0 * i, 30.0 * (i + 1)) for i in range(args.windows)]
    windows = pack_windows(speech, pieces)
    base, extra = [], []
    for _ in range(args.rounds):
        for window in windows:
            started = time.perf_counter()
            _transcribe_batch(transcriber, [window])
            base.append(time.perf_counter() - started)
            started = time.perf_counter()
            acoustic_frames(window.audio)
            extra.append(time.perf_counter() - started)
    transcription, acoustics = statistics.median(base), statistics.median(extra)
    print(f"windows timed: {len(base)} (one thread, 30 s each)")
    print(f"transcription per window (baseline): {transcription * 1000:.0f} ms (median)")
    print(f"acoustic rows per window: {acoustics * 1000:.1f} ms (median)")
    print(f"acoustic rows add {acoustics / transcription:.1%} to transcription")


if __name__ == "__main__":
    main()
