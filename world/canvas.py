"""Camera geometry and per-process caches (noise textures, fonts) shared by the world renderer.

Coordinates: the *travel frame* has its origin on the ground below the camera, ``a`` metres forward along
the road (the heading of view 0) and ``b`` metres to the right, ``y`` metres up. A view looks ``yaw_deg``
clockwise from the travel direction; in camera space ``z`` is depth and ``x`` is to the right. A pinhole
camera with focal length ``f`` pixels maps ground points to ``u = cx + f x / z``,
``v = horizon + f (camera_height - y) / z``. Small pitch only moves the horizon row.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFont

from world.style import FALLBACK_FONT, FONT_DIRS, SCRIPT_FONTS

log = logging.getLogger(__name__)
NEAR_M = 0.4


@dataclass(frozen=True)
class Camera:
    """One view of a location: pixel size, focal length, horizon row, height and direction."""

    size: int
    f: float
    horizon: float
    height_m: float
    yaw_deg: float  # clockwise from the direction of travel
    heading_deg: float  # compass heading of the view's centre
    cos_yaw: float = 1.0
    sin_yaw: float = 0.0

    @property
    def cx(self) -> float:
        return self.size / 2.0

    def to_cam(self, a, b):
        """Travel-frame ground coordinates -> camera (x, z); scalars or arrays."""
        c, s = self.cos_yaw, self.sin_yaw
        return -a * s + b * c, a * c + b * s

    def to_travel(self, x, z):
        """Camera (x, z) -> travel-frame (a, b)."""
        c, s = self.cos_yaw, self.sin_yaw
        return z * c - x * s, z * s + x * c

    def project_xz(self, x, z, y):
        """Camera-space points (z > 0) -> pixel (u, v); numpy arrays."""
        z = np.maximum(z, 1e-6)
        return self.cx + self.f * x / z, self.horizon + self.f * (self.height_m - y) / z

    def column_azimuth(self) -> np.ndarray:
        """Compass azimuth (deg) of each pixel column, shape (size,)."""
        u = np.arange(self.size) + 0.5
        return (self.heading_deg + np.degrees(np.arctan((u - self.cx) / self.f))) % 360.0

    def polygon(self, pts) -> list[tuple[float, float]] | None:
        """Project a planar travel-frame polygon [(a, b, y), ...], clipped at the near plane.

        Pure Python on purpose: for 4-8 vertices it is several times faster than numpy."""
        c, s = self.cos_yaw, self.sin_yaw
        cam = [(-a * s + b * c, y, a * c + b * s) for a, b, y in pts]
        if any(p[2] < NEAR_M for p in cam):
            cam = clip_near(cam)
            if cam is None:
                return None
        f, cx, hz, hm = self.f, self.size / 2.0, self.horizon, self.height_m
        lim = 50.0 * self.size  # keep coordinates sane for PIL
        out = []
        for x, y, z in cam:
            u, v = cx + f * x / z, hz + f * (hm - y) / z
            out.append((min(max(u, -lim), lim), min(max(v, -lim), lim)))
        return out


def clip_near(pts, near: float = NEAR_M):
    """Sutherland-Hodgman clip of a polygon [(x, y, z), ...] against z >= near; None if under 3 vertices."""
    out = []
    k = len(pts)
    for i in range(k):
        p, q = pts[i], pts[(i + 1) % k]
        pin, qin = p[2] >= near, q[2] >= near
        if pin:
            out.append(p)
        if pin != qin:
            t = (near - p[2]) / (q[2] - p[2])
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]), near))
    return out if len(out) >= 3 else None


def rgb8(rgb, shade: float = 1.0) -> tuple[int, int, int]:
    """Float RGB in [0, 1] times ``shade`` -> 8-bit tuple (clipped)."""
    return tuple(int(min(max(x * shade, 0.0), 1.0) * 255 + 0.5) for x in rgb)  # type: ignore[return-value]


def make_camera(
    size: int, fov_deg: float, pitch_deg: float, height_m: float, yaw_deg: float, heading_deg: float
) -> Camera:
    f = (size / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    horizon = size / 2.0 + f * math.tan(math.radians(pitch_deg))
    t = math.radians(yaw_deg)
    return Camera(
        size, f, horizon, height_m, yaw_deg, (heading_deg + yaw_deg) % 360.0, math.cos(t), math.sin(t)
    )


# --- per-process caches -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def noise_bank(size: int) -> np.ndarray:
    """Three fixed value-noise textures in [0, 1], shape (3, N, N) with N = max(512, 2 size); built once."""
    n = max(512, 2 * size)
    rng = np.random.default_rng(20240517)  # fixed: textures are part of the renderer, not of a location
    out = np.zeros((3, n, n), np.float32)
    recipes = (
        ((4, 1.0), (8, 0.6), (16, 0.4), (32, 0.25), (64, 0.15), (128, 0.1)),  # clouds, soil patches
        ((8, 0.6), (16, 0.6), (32, 0.5), (64, 0.35), (128, 0.25), (256, 0.15)),  # tones, cloud shading
        ((16, 0.4), (32, 0.5), (64, 0.5), (128, 0.45), (256, 0.35)),
    )  # grain, snow, rain
    for ch in range(3):
        total = 0.0
        for octave, amp in recipes[ch]:
            grid = rng.random((octave, octave)).astype(np.float32)
            img = Image.fromarray(grid, mode="F").resize((n, n), Image.BICUBIC)
            out[ch] += amp * np.asarray(img, np.float32)
            total += amp
        out[ch] /= total
        lo, hi = np.percentile(out[ch], [1, 99])
        out[ch] = np.clip((out[ch] - lo) / (hi - lo), 0.0, 1.0)
    return out


def noise_crop(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random (3, size, size) window of the noise bank."""
    bank = noise_bank(size)
    n = bank.shape[1]
    i, j = rng.integers(0, n - size, size=2)
    return bank[:, i : i + size, j : j + size]


def noise_1d(
    n: int, rng: np.random.Generator, octaves=((6, 1.0), (18, 0.5), (54, 0.25), (160, 0.12))
) -> np.ndarray:
    """Periodic 1-D fractal noise in about [-1, 1], shape (n,) (skylines around a panorama)."""
    x = np.arange(n) / n
    out = np.zeros(n)
    for k, amp in octaves:
        knots = rng.uniform(-1, 1, size=k + 1)
        knots[-1] = knots[0]
        out += amp * np.interp(x * k, np.arange(k + 1), knots)
    return out / sum(a for _, a in octaves)


@functools.lru_cache(maxsize=None)
def _font_path(script: str) -> tuple[str, int] | None:
    name, index = SCRIPT_FONTS.get(script, SCRIPT_FONTS["Latn"])
    for fname, idx in ((name, index), FALLBACK_FONT):
        for d in FONT_DIRS:
            p = Path(d) / fname
            if p.is_file():
                return str(p), idx
    log.warning("no font found for script %s; using Pillow's built-in font", script)
    return None


@functools.lru_cache(maxsize=512)
def font(script: str, size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A cached font for ``script`` (ISO 15924) at ``size_px`` pixels."""
    found = _font_path(script)
    size_px = max(4, int(size_px))
    if found is None:
        return ImageFont.load_default(size_px)
    path, index = found
    return ImageFont.truetype(path, size_px, index=index)
