"""The classifier's own arithmetic: a small network (or logistic regression), Adam, and
Platt calibration, in plain numpy.

Hand-written so that training needs nothing beyond what ingest already installs and so that
the shipped file is byte-identical from run to run on one machine. What the network
computes at ingest time is `ingest.voice.model`'s; this module only fits its weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.voice.model import sigmoid

Layers = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class NetConfig:
    """Logistic regression (hidden=0, the shipped choice) or a one-hidden-layer ReLU network,
    trained with Adam on mini-batches.

    Heavy regularisation because 125 speakers are few: the classifier must learn age, not
    the training voices. A 64-unit network (dropout 0.3, 25 epochs, decay 0.01) matched but
    did not beat logistic regression in speaker-disjoint cross-validation, so the simpler
    model ships.
    """

    hidden: int = 0
    epochs: int = 60
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    dropout: float = 0.3  # hidden units only
    batch: int = 128
    members: int = 1  # networks averaged in logit space (useful for hidden > 0 only)
    # The last `ACOUSTIC_FEATURES` (pitch, formants, tilt) are multiplied by this after
    # standardisation, so the same weight decay holds them back less than the 1,312 encoder
    # and log-mel numbers: a dozen language-independent cues must not drown among them.
    acoustic_weight: float = 1.0


def fit_networks(x: np.ndarray, y: np.ndarray, config: NetConfig, seed: int = 0) -> list[Layers]:
    """`config.members` networks on standardised `x`, each from its own seed."""
    return [fit_network(x, y, config, seed * 1000 + member) for member in range(config.members)]


def fit_network(x: np.ndarray, y: np.ndarray, config: NetConfig, seed: int) -> Layers:
    rng = np.random.default_rng(seed)
    params = _initial_params(x.shape[1], config.hidden, rng)
    adam = _Adam(params, config.learning_rate)
    for _ in range(config.epochs):
        order = rng.permutation(len(x))
        for first in range(0, len(x), config.batch):
            rows = order[first : first + config.batch]
            adam.step(_gradients(params, x[rows], y[rows], config, rng))
    pairs = list(zip(params[::2], params[1::2], strict=True))
    return [(w.astype(np.float32), b.astype(np.float32)) for w, b in pairs]


def _initial_params(features: int, hidden: int, rng: np.random.Generator) -> list[np.ndarray]:
    if hidden == 0:
        return [np.zeros((features, 1)), np.zeros(1)]
    return [
        rng.standard_normal((features, hidden)) * np.sqrt(2 / features),  # He, for ReLU
        np.zeros(hidden),
        rng.standard_normal((hidden, 1)) * np.sqrt(1 / hidden),
        np.zeros(1),
    ]


def _gradients(
    params: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    config: NetConfig,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Cross-entropy gradients of one mini-batch, with dropout and L2 weight decay."""
    if len(params) == 2:
        error = (sigmoid(x @ params[0] + params[1]).ravel() - y)[:, None] / len(x)
        return [x.T @ error + config.weight_decay * params[0], error.sum(0)]
    w1, b1, w2, b2 = params
    pre = x @ w1 + b1
    keep = (rng.random(pre.shape) >= config.dropout) / (1 - config.dropout)
    hidden = np.maximum(pre, 0) * keep
    error = (sigmoid(hidden @ w2 + b2).ravel() - y)[:, None] / len(x)
    back = (error @ w2.T) * keep * (pre > 0)
    return [
        x.T @ back + config.weight_decay * w1,
        back.sum(0),
        hidden.T @ error + config.weight_decay * w2,
        error.sum(0),
    ]


class _Adam:
    """Adam (Kingma & Ba) updating the parameter arrays in place."""

    def __init__(self, params: list[np.ndarray], learning_rate: float) -> None:
        self.params, self.rate, self.t = params, learning_rate, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m += 0.1 * (g - m)
            v += 0.001 * (g * g - v)
            p -= self.rate * (m / (1 - 0.9**self.t)) / (np.sqrt(v / (1 - 0.999**self.t)) + 1e-8)


def fit_platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: slope and intercept maximising the likelihood of held-out logits.

    Newton's method on two parameters, with a tiny ridge so separable data stays finite.
    """
    design = np.stack([logits, np.ones_like(logits)], axis=1)
    coef = np.zeros(2)
    for _ in range(50):
        p = sigmoid(design @ coef)
        grad = design.T @ (p - y) + 1e-3 * coef
        hess = design.T @ (design * (p * (1 - p))[:, None]) + 1e-3 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        coef -= step
        if np.abs(step).max() < 1e-9:
            break
    return float(coef[0]), float(coef[1])
