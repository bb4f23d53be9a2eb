"""Voice cues that do not depend on the language: pitch, formants, spectral tilt.

The Whisper encoder states that the classifier was first built on encode pronunciation and
content as well as the voice. The training corpus (speechocean762) is learners reading
English, and its children read less fluently than its adults, so a classifier on those
states alone can learn "reads like a learner" instead of "sounds like a child", and it
failed on fluent native children. Children's voices differ physically: a higher
fundamental frequency (F0) and formants 20-40% higher, because the vocal folds and the
vocal tract are shorter. Those cues mean the same in any language and any sentence.

Everything is numpy on the 16 kHz audio ingest already decodes, one row per 20 ms so that
row i lines up with encoder frame i of the same window; a segment pools the rows under it
(`segment_acoustics`). Pitch is the normalised autocorrelation peak (Boersma 1993, with the
window's own autocorrelation divided out); formants are the roots of a 14th-order LPC
polynomial of the pre-emphasised frame; tilt is the slope of the log spectrum against log
frequency. A few ms per second of audio: small beside the encoder.
"""

from __future__ import annotations

import itertools

import numpy as np

SAMPLE_RATE = 16_000
HOP = 320  # 20 ms: one row per Whisper encoder frame
WINDOW = 640  # 40 ms analysis window: two periods of a 50 Hz voice
FFT = 1024
F0_RANGE = (70.0, 600.0)  # Hz: deep adult voices to a young child's raised voice
LPC_ORDER = 14  # 16 kHz: about one pole pair per kHz plus a few for the glottal shape
VOICED = 0.45  # normalised autocorrelation peak above which a frame counts as voiced
QUIET_DB = 35.0  # frames this far below the segment's loudest are background, not voice
ROW = ("log_energy", "voicing", "log_f0", "log_f1", "log_f2", "log_f3", "tilt", "log_centroid")
# Segment statistics (`segment_acoustics`), and what stands in when a segment has no voiced
# frame at all (whispering, noise): mid-range values, so the classifier sees "no evidence".
STATS = (
    "voiced_share", "f0_p10", "f0_p50", "f0_p90", "f0_spread",
    "f1", "f2", "f3", "formant_spacing", "tilt_voiced", "tilt_all", "centroid",
)  # fmt: skip
UNVOICED_DEFAULTS = np.log([150.0, 190.0, 250.0, 1.0, 600.0, 1700.0, 2800.0, 1100.0])


def acoustic_frames(audio: np.ndarray, rows: int | None = None) -> np.ndarray:
    """Per 20 ms of `audio` (16 kHz mono): the cues named in `ROW`; NaN where a cue does not
    exist (no pitch in silence, no formant found). `rows` pads or cuts to that many.

    The analysis itself runs every 40 ms and each result stands for both 20 ms rows: the
    statistics a segment takes are medians over many frames, which halving does not move,
    and it halves the cost."""
    audio = np.asarray(audio, np.float32)
    count = rows if rows is not None else max(1, int(np.ceil(len(audio) / HOP)))
    # float64 on purpose: numpy's float32 FFT is several times slower.
    spectrum = np.fft.rfft(_frames(audio, (count + 1) // 2) * _HANN, FFT)
    power = spectrum.real**2 + spectrum.imag**2 + 1e-10
    voicing, f0 = _pitch(power)
    energy = 10 * np.log10(power.sum(axis=1) / FFT)
    tilt, centroid = _tilt_and_centroid(power)
    log_f0 = np.where(voicing >= VOICED, np.log(f0), np.nan)
    table = np.column_stack(
        [energy, voicing, log_f0, np.log(_formants(power)), tilt, np.log(centroid)]
    ).astype(np.float32)
    return np.repeat(table, 2, axis=0)[:count]


_HANN = np.hanning(WINDOW)
_FREQS = np.fft.rfftfreq(FFT, 1 / SAMPLE_RATE)
_LAGS = np.arange(int(SAMPLE_RATE / F0_RANGE[1]), int(SAMPLE_RATE / F0_RANGE[0]))
_WINDOW_ACF = np.fft.irfft(np.abs(np.fft.rfft(np.hanning(WINDOW), FFT)) ** 2, FFT)
# A slight preference for shorter lags avoids halving the pitch (octave errors).
_OCTAVE_COST = 0.04 * np.log2(_LAGS / _LAGS[0])
# Pre-emphasis (1 - 0.97 z^-1) applied to the power spectrum, and the cosines that turn a
# power spectrum into its first LPC_ORDER + 1 autocorrelation lags (a small matrix product
# instead of a second inverse FFT).
_EMPHASIS = np.abs(1 - 0.97 * np.exp(-2j * np.pi * _FREQS / SAMPLE_RATE)) ** 2
_LPC_COSINES = (
    np.cos(2 * np.pi * np.outer(np.arange(FFT // 2 + 1), np.arange(LPC_ORDER + 1)) / FFT)
    * np.r_[1.0, np.full(FFT // 2 - 1, 2.0), 1.0][:, None]
    * _EMPHASIS[:, None]
    / FFT
)
_ENVELOPE = 512  # points of the LPC envelope: 31 Hz apart
_ENVELOPE_HZ = np.fft.rfftfreq(_ENVELOPE, 1 / SAMPLE_RATE)[1:-1]
_FORMANT_BAND = (_ENVELOPE_HZ > 150.0) & (_ENVELOPE_HZ < 5500.0)
# Tilt and centroid from 18 bands a third of an octave wide (100 Hz to 5 kHz): the same
# slope as every FFT bin, at a fraction of the logarithms.
_BAND_EDGES = 100.0 * 2.0 ** (np.arange(19) / 3.4)
_BANDS = np.stack(
    [(lo <= _FREQS) & (hi > _FREQS) for lo, hi in itertools.pairwise(_BAND_EDGES)]
).astype(np.float64)
_BANDS /= _BANDS.sum(axis=1, keepdims=True)  # mean power per band, not its sum
_BAND_OCTAVES = np.log2(np.sqrt(_BAND_EDGES[:-1] * _BAND_EDGES[1:]))
_SLOPE = (_BAND_OCTAVES - _BAND_OCTAVES.mean()) / np.sum(
    (_BAND_OCTAVES - _BAND_OCTAVES.mean()) ** 2
)


def _frames(audio: np.ndarray, count: int) -> np.ndarray:
    """[count, WINDOW] frames centred every 40 ms (on every other 20 ms row), zero-padded."""
    step = 2 * HOP
    pad = (WINDOW - HOP) // 2
    padded = np.zeros(count * step + WINDOW, np.float32)
    usable = audio[: count * step]
    padded[pad : pad + len(usable)] = usable
    view = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::step]
    return np.asarray(view[:count])


def _pitch(power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised autocorrelation peak strength and its frequency, per frame."""
    acf = np.fft.irfft(power, FFT)[:, : _LAGS[-1] + 1]
    band = acf[:, _LAGS] / acf[:, :1] / (_WINDOW_ACF[_LAGS] / _WINDOW_ACF[0])
    best = np.argmax(band - _OCTAVE_COST, axis=1)
    strength = np.clip(band[np.arange(len(band)), best], 0.0, 1.0)
    return strength, SAMPLE_RATE / _LAGS[best]


def _formants(power: np.ndarray) -> np.ndarray:
    """The three lowest peaks of the LPC envelope (Hz) per frame, NaN where fewer exist."""
    acf = power @ _LPC_COSINES
    acf[:, 0] = acf[:, 0] * (1.0 + 1e-4) + 1e-12  # a noise floor keeps silence well posed
    inverse = np.abs(np.fft.rfft(_levinson(acf), _ENVELOPE)) ** 2
    inner = inverse[:, 1:-1]
    peak = (inner < inverse[:, :-2]) & (inner <= inverse[:, 2:]) & _FORMANT_BAND
    first = np.argsort(~peak, axis=1, kind="stable")[:, :3]
    found = np.take_along_axis(peak, first, axis=1)
    return np.where(found, _ENVELOPE_HZ[first], np.nan)


def _levinson(acf: np.ndarray) -> np.ndarray:
    """LPC polynomial coefficients [frames, order + 1] (a[0] = 1), all frames at once."""
    count = len(acf)
    a = np.zeros((count, LPC_ORDER + 1))
    a[:, 0] = 1.0
    error = acf[:, 0].copy()
    for i in range(1, LPC_ORDER + 1):
        k = -(a[:, :i] * acf[:, i:0:-1]).sum(axis=1) / error
        a[:, 1 : i + 1] = a[:, 1 : i + 1] + k[:, None] * a[:, i - 1 :: -1][:, :i]
        error = error * (1.0 - k * k)
    return a


def _tilt_and_centroid(power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope (dB per octave) of the spectrum from 100 Hz to 5 kHz, and its centroid (Hz)."""
    bands = power @ _BANDS.T + 1e-10
    tilt = (10 * np.log10(bands)) @ _SLOPE
    centroid = (bands @ np.exp2(_BAND_OCTAVES)) / bands.sum(axis=1)
    return tilt, centroid


def segment_acoustics(rows: np.ndarray) -> np.ndarray:
    """The statistics named in `STATS` over one segment's rows of `acoustic_frames`.

    Pitch and formants are read from voiced frames near the segment's loudest (the nearest
    voice, usually the speaker the segment belongs to), as medians and percentiles, which a
    few wrong frames do not move.
    """
    rows = np.asarray(rows, np.float64)
    loud = rows[:, 0] >= np.max(rows[:, 0]) - QUIET_DB if len(rows) else np.zeros(0, bool)
    voiced = loud & np.isfinite(rows[:, 2])
    tilt_all = float(np.mean(rows[loud, 6])) if loud.any() else -6.0
    centroid = float(np.mean(rows[loud, 7])) if loud.any() else float(UNVOICED_DEFAULTS[7])
    share = float(voiced.sum() / max(loud.sum(), 1))
    if voiced.sum() < 3:
        f0 = UNVOICED_DEFAULTS[[0, 1, 2]]
        return np.array([share, *f0, 0.1, *UNVOICED_DEFAULTS[4:7], 7.0, -6.0, tilt_all, centroid])
    pitch = rows[voiced, 2]
    f0 = np.percentile(pitch, [10, 50, 90])
    formants = [
        _median_or(rows[voiced, c], UNVOICED_DEFAULTS[4 + i]) for i, c in enumerate((3, 4, 5))
    ]
    spacing = np.log(np.mean([np.exp(f) / (i + 0.5) for i, f in enumerate(formants)]))
    tilt_voiced = float(np.mean(rows[voiced, 6]))
    return np.array(
        [share, *f0, float(np.std(pitch)), *formants, spacing, tilt_voiced, tilt_all, centroid]
    )


def _median_or(values: np.ndarray, default: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else float(default)
