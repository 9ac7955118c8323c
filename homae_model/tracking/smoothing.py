"""One-Euro filters (Casiez et al., CHI 2012) for point sets and rotations (pure numpy).

The One-Euro filter is a first-order low-pass filter whose cutoff rises with the speed of the
signal: slow motion is smoothed strongly (little jitter), fast motion weakly (little lag).
Per sample with time step dt:

    alpha(fc) = 1 / (1 + 1 / (2 pi fc dt))
    dx_hat    = lowpass(alpha(d_cutoff), (x - x_hat_prev) / dt)
    fc        = min_cutoff + beta * |dx_hat|
    x_hat     = lowpass(alpha(fc), x)

`PointFilter` filters (N, 3) points with one speed per point (metres/s). `RotationFilter`
filters a rotation in the tangent space of the previous estimate; its angular speed is turned
into a speed at `radius_m` from the centre so one `beta` serves points and rotations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ["OneEuroConfig", "PointFilter", "RotationFilter", "smoothing_factor"]


@dataclass(frozen=True)
class OneEuroConfig:
    """Constants of the One-Euro filter.

    Attributes:
        min_cutoff_hz: cutoff frequency at rest (Hz); lower = smoother, more lag when slow.
        beta: cutoff increase per unit speed (Hz per m/s); higher = less lag when fast.
        d_cutoff_hz: cutoff of the speed estimate (Hz).
        radius_m: rotations count as the motion of a point this far from the centre (m).
    """

    min_cutoff_hz: float = 1.0
    beta: float = 10.0
    d_cutoff_hz: float = 1.0
    radius_m: float = 0.1

    def __post_init__(self) -> None:
        for name in ("min_cutoff_hz", "d_cutoff_hz", "radius_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"smoothing {name} must be > 0, got {value}")
        if not (math.isfinite(self.beta) and self.beta >= 0.0):
            raise ValueError(f"smoothing beta must be >= 0, got {self.beta}")


def smoothing_factor(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray:
    """Alpha = 1 / (1 + tau / dt) with tau = 1 / (2 pi cutoff); in (0, 1] for dt > 0."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt_s)


class PointFilter:
    """One-Euro filter of an (N, 3) point set, one adaptive cutoff per point."""

    def __init__(self, config: OneEuroConfig) -> None:
        """Empty filter: the first sample passes unchanged."""
        self.config = config
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, x: np.ndarray, dt_s: float) -> np.ndarray:
        """Filter one sample.

        Args:
            x: (N, 3) points, metres.
            dt_s: time since the previous sample (s); ignored for the first sample; must be
                > 0 otherwise (the caller resets on a time jump).

        Returns:
            (N, 3) filtered points (a new array).
        """
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        cfg = self.config
        dx = (x - self._x) / dt_s
        a_d = smoothing_factor(cfg.d_cutoff_hz, dt_s)
        self._dx = a_d * dx + (1.0 - a_d) * self._dx
        speed = np.linalg.norm(self._dx, axis=-1, keepdims=True)
        a = smoothing_factor(cfg.min_cutoff_hz + cfg.beta * speed, dt_s)
        self._x = a * x + (1.0 - a) * self._x
        return self._x.copy()


class RotationFilter:
    """One-Euro filter of a rotation, stepped in the tangent space of the last estimate."""

    def __init__(self, config: OneEuroConfig) -> None:
        """Empty filter: the first sample passes unchanged."""
        self.config = config
        self._R: np.ndarray | None = None
        self._omega = np.zeros(3)

    def __call__(self, R: np.ndarray, dt_s: float) -> np.ndarray:
        """Filter one (3, 3) rotation matrix; `dt_s` as in `PointFilter`. Returns (3, 3)."""
        R = np.asarray(R, dtype=np.float64)
        if self._R is None:
            self._R, self._omega = R.copy(), np.zeros(3)
            return R.copy()
        cfg = self.config
        delta = Rotation.from_matrix(self._R.T @ R).as_rotvec()  # body-frame step, rad
        a_d = float(smoothing_factor(cfg.d_cutoff_hz, dt_s))
        self._omega = a_d * delta / dt_s + (1.0 - a_d) * self._omega
        speed = float(np.linalg.norm(self._omega)) * cfg.radius_m
        a = float(smoothing_factor(cfg.min_cutoff_hz + cfg.beta * speed, dt_s))
        self._R = self._R @ Rotation.from_rotvec(a * delta).as_matrix()
        return self._R.copy()
