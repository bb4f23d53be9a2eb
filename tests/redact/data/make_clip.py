"""Makes faces.mp4, the committed clip the redaction tests and `bench/redact.py` run on.

Two real faces from scikit-image's sample data (both public domain: NASA's portrait of
Eileen Collins, `astronaut`, and the MIT `camera` man) pasted over the `coffee` photo,
which holds no face. The astronaut is the face the tests hide: it moves across the
frame, grows from about 28 px to 130 px wide, turns partly away (a perspective squeeze
down to 55 % of its width) and is hidden by a passing pillar for a moment. The camera
man is the face left visible; he drifts slowly on the right. Speech (espeak-ng, two voices) says
a name and a street that the tests mute.

The truth the tests check against is written beside the clip (faces.json): per frame,
each face's box and whether the astronaut is visible. Needs, as dev tools only,
scikit-image and espeak-ng; the ffmpeg binary is imageio-ffmpeg's:

    apt-get install -y espeak-ng && pip install scikit-image
    .venv/bin/python tests/redact/data/make_clip.py
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import wave
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
from skimage import data

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 30, 10
RATE = 48_000
# Face boxes inside each source image (measured once with the CenterFace model).
ASTRONAUT_CROP, ASTRONAUT_FACE = (140, 15, 310, 220), (181, 58, 270, 178)
CAMERA_CROP, CAMERA_FACE = (175, 80, 285, 235), (202, 119, 258, 197)
LINES = [
    (0.8, "en+m3 -p 40", "My name is Daniel Cooper, and I live on Church Street."),
    (5.4, "en-us+f4 -p 85", "Thank you. Can I wait here with my mum?"),
]


def head(image: np.ndarray, crop: tuple[int, int, int, int], face: tuple[int, ...]):
    """The head cut out with a feathered oval mask, and the face box inside the cut."""
    x1, y1, x2, y2 = crop
    rgb = image if image.ndim == 3 else np.stack([image] * 3, axis=-1)
    cut = np.ascontiguousarray(rgb[y1:y2, x1:x2, ::-1])  # BGR for OpenCV
    mask = np.zeros(cut.shape[:2], np.float32)
    h, w = mask.shape
    cv2.ellipse(mask, (w // 2, h // 2), (w // 2 - 4, h // 2 - 4), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 5)
    box = np.array([face[0] - x1, face[1] - y1, face[2] - x1, face[3] - y1], np.float32)
    return cut, mask, box


def paste(frame: np.ndarray, cut, mask, box, centre, face_w: float, squeeze: float = 1.0):
    """Warps the head so its face is face_w wide (squeezed when turned) at `centre`."""
    scale = face_w / (box[2] - box[0])
    h, w = mask.shape
    lean = (1 - squeeze) * 0.25 * h  # the far side shrinks as the head turns away
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[0, 0], [w * squeeze, lean], [w * squeeze, h - lean], [0, h]]) * scale
    fx = (box[0] + box[2]) / 2 * squeeze * scale
    fy = (box[1] + box[3]) / 2 * scale
    dst += np.float32([centre[0] - fx, centre[1] - fy])
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(cut, matrix, (WIDTH, HEIGHT))
    alpha = cv2.warpPerspective(mask, matrix, (WIDTH, HEIGHT))[..., None]
    frame[:] = (frame * (1 - alpha) + warped * alpha).astype(np.uint8)
    pts = cv2.perspectiveTransform(
        np.float32([[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]])[None],
        matrix,
    )[0]
    return [
        float(pts[:, 0].min()),
        float(pts[:, 1].min()),
        float(pts[:, 0].max()),
        float(pts[:, 1].max()),
    ]


def astronaut_pose(t: float) -> tuple[tuple[float, float], float, float]:
    """Centre, face width and squeeze of the hidden face at time t."""
    grow = 28 + 102 * min(t / 6.0, 1.0) if t < 6 else 130 - 50 * (t - 6) / 4
    x = 70 + 330 * (t / SECONDS)
    y = 170 + 40 * np.sin(t * 1.3)
    turn = max(0.0, np.sin(np.pi * (t - 2.5) / 2.0)) if 2.5 <= t <= 4.5 else 0.0
    return (x, y), grow, 1.0 - 0.45 * turn


def pillar(t: float) -> tuple[int, int] | None:
    """The occluder's left and right edge: it sweeps across the face from 5.0 to 5.8 s."""
    if not 5.0 <= t <= 5.8:
        return None
    centre = astronaut_pose(t)[0][0] + 240 * (t - 5.4)
    return int(centre - 90), int(centre + 90)


def frames(truth: list[dict]):
    background = cv2.resize(np.ascontiguousarray(data.coffee()[..., ::-1]), (WIDTH, HEIGHT))
    background = (background * 0.8).astype(np.uint8)
    astronaut = head(data.astronaut(), ASTRONAUT_CROP, ASTRONAUT_FACE)
    camera = head(data.camera(), CAMERA_CROP, CAMERA_FACE)
    for n in range(FPS * SECONDS):
        t = n / FPS
        frame = background.copy()
        officer = paste(frame, *camera, (560 + 15 * np.sin(t), 110 + 8 * np.cos(t)), 62)
        centre, width, squeeze = astronaut_pose(t)
        child = paste(frame, *astronaut, centre, width, squeeze)
        edges = pillar(t)
        covered = 0.0
        if edges:
            frame[:, max(edges[0], 0) : max(edges[1], 0)] = (70, 70, 80)
            overlap = max(0.0, min(edges[1], child[2]) - max(edges[0], child[0]))
            covered = overlap / (child[2] - child[0])
        truth.append(
            {
                "frame": n,
                "t": round(t, 4),
                "child": [round(v, 1) for v in child],
                "child_visible": covered < 0.5,
                "child_covered": round(covered, 2),
                "officer": [round(v, 1) for v in officer],
            }
        )
        yield frame


def speech(tmp: Path) -> Path:
    rng = np.random.default_rng(13)
    track = rng.standard_normal(RATE * SECONDS) * 10 ** (-42 / 20)
    for start, voice, text in LINES:
        raw = tmp / "tts.wav"
        subprocess.run(
            ["espeak-ng", "-v", *voice.split(), "-s", "140", "-w", str(raw), text], check=True
        )
        pcm = subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-loglevel",
                "error",
                "-i",
                str(raw),
                "-ac",
                "1",
                "-ar",
                str(RATE),
                "-f",
                "f32le",
                "-",
            ],
            capture_output=True,
            check=True,
        ).stdout
        x = np.frombuffer(pcm, np.float32)
        x = x * (0.5 / np.abs(x).max())
        i = int(start * RATE)
        track[i : i + len(x)] += x[: len(track) - i]
    path = tmp / "speech.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(track, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def main() -> None:
    truth: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = speech(Path(tmp))
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "bgr24",
            "-s",
            f"{WIDTH}x{HEIGHT}",
            "-r",
            str(FPS),
            "-i",
            "-",
            "-i",
            str(wav),
            "-c:v",
            "libx264",
            "-preset",
            "medium",
            "-crf",
            "26",
            "-threads",
            "1",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "60",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-shortest",
            "-movflags",
            "+faststart",
            str(HERE / "faces.mp4"),
        ]
        with subprocess.Popen(command, stdin=subprocess.PIPE) as encoder:
            assert encoder.stdin is not None
            for frame in frames(truth):
                encoder.stdin.write(frame.tobytes())
            encoder.stdin.close()
    spoken = [{"start_s": s, "voice": v, "text": x} for s, v, x in LINES]
    write_truth(HERE / "faces.json", spoken, truth)


def write_truth(path: Path, spoken: list[dict], truth: list[dict]) -> None:
    """The truth as JSON with one frame a line, so a diff shows which frames changed."""
    head = json.dumps({"width": WIDTH, "height": HEIGHT, "fps": FPS, "speech": spoken})
    frames = ",\n".join(json.dumps(frame) for frame in truth)
    path.write_text(f'{head[:-1]}, "frames": [\n{frames}\n]}}\n')


if __name__ == "__main__":
    main()
