"""Body-worn augmentation: what a chest camera does to speech, applied to studio recordings.

Body-worn audio is far-field, noisy, gain-ridden and AAC-compressed while the training data
is close-talk studio speech, so training adds augmented copies of every utterance and
reports cross-validation with and without them. Each transform is seeded per utterance so
the frames of a condition, and so the cache, never change from run to run.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from ingest.encoder import SAMPLE_RATE


def augment_bodyworn(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random chain of what a chest camera does to speech: room, noise, gain, AAC."""
    if rng.random() < 0.5:
        audio = add_reverb(audio, rng, rt60_s=rng.uniform(0.2, 0.9))
    if rng.random() < 0.8:
        audio = add_noise(audio, rng, snr_db=rng.uniform(0.0, 20.0))
    if rng.random() < 0.4:
        audio = gain_and_clip(audio, gain_db=rng.uniform(-12.0, 18.0))
    if rng.random() < 0.7:
        audio = aac_round_trip(audio, bit_rate=int(rng.choice([16_000, 24_000, 32_000])))
    return audio


def add_noise(audio: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    """Adds white, pink, brown or hum-like noise at the given signal-to-noise ratio."""
    noise = _coloured_noise(len(audio), rng, exponent=rng.choice([0.0, 1.0, 2.0]))
    if rng.random() < 0.25:  # mains hum and its harmonics, common on vehicle audio
        t = np.arange(len(audio)) / SAMPLE_RATE
        base = rng.choice([50.0, 60.0])
        noise = noise + sum(np.sin(2 * np.pi * base * k * t) / k for k in (1, 2, 3))
    return _mix(audio, noise, snr_db)


def _coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n)
    return noise / (np.std(noise) + 1e-12)


def add_reverb(audio: np.ndarray, rng: np.random.Generator, rt60_s: float) -> np.ndarray:
    """Convolves with a synthetic room: a direct path plus exponentially decaying noise."""
    length = int(rt60_s * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
    tail[: int(0.003 * SAMPLE_RATE)] = 0.0  # first reflections arrive a few ms late
    response = tail * rng.uniform(0.1, 0.6) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    response[0] = 1.0
    wet = np.fft.irfft(
        np.fft.rfft(audio, len(audio) + length) * np.fft.rfft(response, len(audio) + length)
    )[: len(audio)]
    return (wet * np.max(np.abs(audio)) / (np.max(np.abs(wet)) + 1e-12)).astype(np.float32)


def gain_and_clip(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """A gain change, clipped at full scale as an overdriven camera microphone would."""
    return np.clip(audio * 10 ** (gain_db / 20), -1.0, 1.0).astype(np.float32)


def aac_round_trip(audio: np.ndarray, bit_rate: int) -> np.ndarray:
    """Encodes to AAC with PyAV at `bit_rate` and decodes back, aligned to the input."""
    import av
    from faster_whisper.audio import decode_audio

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="adts") as out:
        stream = out.add_stream("aac", rate=SAMPLE_RATE)
        stream.bit_rate = bit_rate
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    buffer.seek(0)
    decoded = decode_audio(buffer, sampling_rate=SAMPLE_RATE)
    delay = 1024  # the AAC encoder's priming samples
    decoded = decoded[delay : delay + len(audio)]
    return np.pad(decoded, (0, len(audio) - len(decoded))).astype(np.float32)


def augment_hard(
    audio: np.ndarray, rng: np.random.Generator, voices: list[np.ndarray]
) -> np.ndarray:
    """What makes body-worn audio hard, beyond `augment_bodyworn`: another adult talking
    over the speaker, a television or radio (an adult voice and music, band-limited),
    reverberant rooms, clothing rubbing the microphone, wind, and muffled or band-limited
    sound. `voices` are adult recordings of speakers the scoring model never heard."""
    if voices and rng.random() < 0.5:
        audio = add_speech(audio, rng, voices[0], relative_db=rng.uniform(-12.0, -3.0))
    if len(voices) > 1 and rng.random() < 0.5:
        audio = add_broadcast(audio, rng, voices[1], snr_db=rng.uniform(3.0, 15.0))
    if rng.random() < 0.6:
        audio = add_reverb(audio, rng, rt60_s=rng.uniform(0.3, 1.2))
    if rng.random() < 0.3:
        audio = add_bursts(
            audio, rng, _coloured_noise(len(audio), rng, 2.0), snr_db=rng.uniform(-5.0, 10.0)
        )
    if rng.random() < 0.3:
        wind = band_limit(_coloured_noise(len(audio), rng, 1.0), 0.0, 500.0)
        audio = add_bursts(audio, rng, wind, snr_db=rng.uniform(0.0, 12.0))
    if rng.random() < 0.4:
        low, high = (300.0, 3400.0) if rng.random() < 0.5 else (0.0, rng.uniform(2000.0, 4000.0))
        audio = band_limit(audio, low, high)
    if rng.random() < 0.7:
        audio = aac_round_trip(audio, bit_rate=int(rng.choice([16_000, 24_000, 32_000])))
    return audio


def add_speech(
    audio: np.ndarray, rng: np.random.Generator, voice: np.ndarray, relative_db: float
) -> np.ndarray:
    """Another voice `relative_db` below the speaker's, starting anywhere in the utterance."""
    other = np.zeros_like(audio)
    start = int(rng.integers(0, max(1, len(audio) // 2)))
    piece = voice[: len(audio) - start]
    other[start : start + len(piece)] = piece
    level = np.sqrt(np.mean(audio**2) / (np.mean(piece**2) + 1e-12)) * 10 ** (relative_db / 20)
    return (audio + level * other).astype(np.float32)


def add_broadcast(
    audio: np.ndarray, rng: np.random.Generator, voice: np.ndarray, snr_db: float
) -> np.ndarray:
    """A television or radio in the room: a band-limited voice over a few held notes."""
    t = np.arange(len(audio)) / SAMPLE_RATE
    notes = sum(np.sin(2 * np.pi * f * t) / (k + 1) for k, f in enumerate(rng.uniform(110, 880, 3)))
    speech = np.resize(voice, len(audio)) / (np.std(voice) + 1e-9)
    broadcast = band_limit(speech + 0.5 * notes / (np.std(notes) + 1e-9), 150.0, 6000.0)
    return _mix(audio, broadcast, snr_db)


def add_bursts(
    audio: np.ndarray, rng: np.random.Generator, noise: np.ndarray, snr_db: float
) -> np.ndarray:
    """Noise in bursts of 0.1 to 0.6 s (rubbing, gusts), `snr_db` over the bursts."""
    envelope = np.zeros(len(audio))
    for _ in range(int(rng.integers(1, 5))):
        length = int(rng.uniform(0.1, 0.6) * SAMPLE_RATE)
        start = int(rng.integers(0, max(1, len(audio) - length)))
        envelope[start : start + length] = np.hanning(length)[: len(envelope) - start]
    return _mix(audio, noise * envelope, snr_db)


def band_limit(audio: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """Keeps only `low_hz` to `high_hz` (a telephone-like or muffled channel)."""
    spectrum = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0.0
    return np.fft.irfft(spectrum, len(audio)).astype(np.float32)


def _mix(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    signal_power = float(np.mean(audio**2)) + 1e-12
    noise_power = float(np.mean(noise**2)) + 1e-12
    scale = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (audio + scale * noise).astype(np.float32)


Transform = Callable[[np.ndarray, int], np.ndarray]


def augmenter(condition: str, voices: Callable[[int], list[np.ndarray]] | None = None) -> Transform:
    """The audio transform of a condition (`clean`, `reversed`, `bodyworn<seed>`,
    `hard<seed>`), seeded per utterance so the cached frames of a condition never change.
    `hard` needs `voices`: per utterance index, the interfering adult recordings
    (`data.interfering_voices`)."""
    if condition == "clean":
        return lambda audio, _index: audio
    if condition == "reversed":  # the voice kept, the words unintelligible (confound test)
        return lambda audio, _index: np.ascontiguousarray(audio[::-1])
    if condition.startswith("bodyworn"):
        seed = int(condition.removeprefix("bodyworn") or 0)
        return lambda audio, index: augment_bodyworn(audio, np.random.default_rng([seed, index]))
    if condition.startswith("hard") and voices is not None:
        seed = int(condition.removeprefix("hard") or 0)
        return lambda audio, index: augment_hard(
            audio, np.random.default_rng([seed, index, 1]), voices(index)
        )
    raise ValueError(f"unknown augmentation {condition!r}")
