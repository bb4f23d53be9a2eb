"""Grouping a clip's speech segments by speaker, so that age is judged per voice.

One transcript segment of a few seconds is a weak witness of its speaker's age: about one
adult segment in six scores above 0.5, so a two-minute conversation between two adults
almost always holds 2 s of "child" speech when segments are judged alone. Judged over all
a speaker said, the classifier is far surer (speaker AUC 0.977 against 0.920 per
utterance). So a clip's segments are grouped by voice before deciding: each segment is
placed in a small speaker-discriminant space (an LDA learned on the training speakers,
shipped with the classifier), grouped by average-linkage clustering on cosine distance
with a fixed stopping distance (the number of speakers is unknown), groups under a few
seconds join their nearest group, and every segment of a group gets the group's pooled
probability: the duration-weighted mean of its calibrated logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

DIMENSIONS = 32
MAX_DISTANCE = 0.9  # cosine distance at which average-linkage merging stops
MIN_GROUP_S = 4.0  # a group with less speech joins its nearest group


@dataclass(frozen=True)
class SpeakerSpace:
    """Where segments of one voice fall close together, whatever they say."""

    centre: np.ndarray  # [features], in the classifier's standardised features
    projection: np.ndarray  # [features, DIMENSIONS]
    max_distance: float = MAX_DISTANCE
    min_group_s: float = MIN_GROUP_S

    def project(self, standardised: np.ndarray) -> np.ndarray:
        return np.asarray((standardised - self.centre) @ self.projection, np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "centre": np.asarray(self.centre, np.float64).round(6).tolist(),
            "projection": np.asarray(self.projection, np.float64).round(6).tolist(),
            "max_distance": self.max_distance,
            "min_group_s": self.min_group_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeakerSpace:
        return cls(
            centre=np.asarray(data["centre"], np.float32),
            projection=np.asarray(data["projection"], np.float32),
            max_distance=float(data["max_distance"]),
            min_group_s=float(data["min_group_s"]),
        )


def fit_speaker_space(standardised: np.ndarray, speakers: np.ndarray) -> SpeakerSpace:
    """Speaker LDA: whiten (PCA to 200 axes), whiten the within-speaker scatter, and keep
    the axes along which speakers' means spread most."""
    x = np.asarray(standardised, np.float64)
    centre = x.mean(axis=0)
    centred = x - centre
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    keep = min(200, len(singular))
    pca = axes[:keep].T / singular[:keep] * np.sqrt(len(x))
    y = centred @ pca
    names, index = np.unique(speakers, return_inverse=True)
    means = np.stack([y[index == i].mean(axis=0) for i in range(len(names))])
    within = y - means[index]
    values, vectors = np.linalg.eigh(within.T @ within / len(y) + 1e-3 * np.eye(keep))
    whiten = vectors / np.sqrt(values)
    spread = means - means.mean(axis=0)
    _, between = np.linalg.eigh(whiten.T @ (spread.T @ spread / len(names)) @ whiten)
    projection = pca @ whiten @ between[:, ::-1][:, :DIMENSIONS]
    return SpeakerSpace(centre.astype(np.float32), projection.astype(np.float32))


def group_speakers(points: np.ndarray, seconds: np.ndarray, space: SpeakerSpace) -> np.ndarray:
    """A speaker label per segment (0, 1, ... in order of first appearance)."""
    if len(points) == 0:
        return np.zeros(0, np.int64)
    distance = _cosine_distances(points)
    labels = _average_linkage(distance.copy(), space.max_distance)
    labels = _absorb_small(distance, labels, np.asarray(seconds, np.float64), space.min_group_s)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return np.asarray(order[inverse], np.int64)


def pooled_logits(logits: np.ndarray, seconds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per segment, the duration-weighted mean logit of its speaker group."""
    weights = np.maximum(np.asarray(seconds, np.float64), 1e-3)
    total = np.bincount(labels, weights=weights * logits)
    return np.asarray((total / np.bincount(labels, weights=weights))[labels], np.float64)


def pooled_features(embeddings: np.ndarray, seconds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per speaker group (row = label), the duration-weighted mean of its segments' features:
    averaging over all a speaker said removes much of what varies between their segments."""
    weights = np.maximum(np.asarray(seconds, np.float64), 1e-3)
    count = int(labels.max()) + 1
    total = np.zeros((count, embeddings.shape[1]))
    np.add.at(total, labels, weights[:, None] * np.asarray(embeddings, np.float64))
    return np.asarray(total / np.bincount(labels, weights=weights, minlength=count)[:, None])


def _cosine_distances(points: np.ndarray) -> np.ndarray:
    unit = points / (np.linalg.norm(points, axis=1, keepdims=True) + 1e-9)
    return np.asarray(1.0 - unit @ unit.T, np.float64)


def _average_linkage(distance: np.ndarray, max_distance: float) -> np.ndarray:
    """Merge the two closest groups (mean pairwise distance) until none are that close."""
    count = len(distance)
    np.fill_diagonal(distance, np.inf)
    sizes = np.ones(count)
    labels = np.arange(count)
    for _ in range(count - 1):
        i, j = divmod(int(np.argmin(distance)), count)
        if distance[i, j] > max_distance:
            break
        merged = (sizes[i] * distance[i] + sizes[j] * distance[j]) / (sizes[i] + sizes[j])
        distance[i, :], distance[:, i] = merged, merged
        distance[i, i] = np.inf
        distance[j, :], distance[:, j] = np.inf, np.inf
        sizes[i] += sizes[j]
        labels[labels == j] = i
    return labels


def _absorb_small(
    distance: np.ndarray, labels: np.ndarray, seconds: np.ndarray, min_group_s: float
) -> np.ndarray:
    """Groups with under `min_group_s` of speech join the nearest group (mean distance):
    a few stray seconds are more likely a noisy segment than another speaker."""
    labels = labels.copy()
    while len(groups := np.unique(labels)) > 1:
        speech = np.array([seconds[labels == g].sum() for g in groups])
        smallest = groups[int(np.argmin(speech))]
        if speech.min() >= min_group_s:
            break
        rows = distance[labels == smallest]
        nearest = min(groups[groups != smallest], key=lambda g: rows[:, labels == g].mean())
        labels[labels == smallest] = nearest
    return labels


WEARER_MIN_SHARE = 0.2  # a group with less of the clip's speech is a passer-by, not the wearer


def wearer_group(
    labels: np.ndarray, seconds: np.ndarray, levels_db: np.ndarray, child: np.ndarray
) -> int | None:
    """The speaker group of the camera's wearer, or None when no group qualifies.

    The camera is on the officer's chest: their voice is near-field, so the loudest, and
    they talk throughout. Of the groups holding at least `WEARER_MIN_SHARE` of the clip's
    speech and not judged a child (`child`, per segment), the one with the highest median
    segment level (dBFS) is the wearer; a median, so one shout does not decide.
    """
    labels = np.asarray(labels)
    seconds = np.asarray(seconds, np.float64)
    if len(labels) == 0 or seconds.sum() <= 0:
        return None
    best: tuple[float, int] | None = None
    for group in np.unique(labels):
        chosen = labels == group
        share = seconds[chosen].sum() / seconds.sum()
        if share < WEARER_MIN_SHARE or np.any(np.asarray(child)[chosen]):
            continue
        level = float(np.median(np.asarray(levels_db, np.float64)[chosen]))
        if best is None or level > best[0]:
            best = (level, int(group))
    return None if best is None else best[1]


def level_db(samples: np.ndarray) -> float:
    """RMS level of `samples` in dBFS (-120 for silence)."""
    power = float(np.mean(np.square(samples, dtype=np.float64))) if len(samples) else 0.0
    return round(10 * np.log10(max(power, 1e-12)), 1)
