"""Render one location of the synthetic street world as views at headings 0/90/180/270 (Pillow + numpy).

Per view: a sky gradient with clouds and the sun, the real terrain skyline around the point (mountains scaled
by the elevation profile, snow caps above the snow line, sea where the coast is near), ground and vegetation
from the biome, then the road, shadows and roadside objects (``world.props``), then light, haze
and rain.
All randomness comes from ``numpy.random.default_rng([seed, index])``, so a location renders the same bytes
whatever process draws it.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from world.biome import RGB, Biome, make_biome, mix
from world.canvas import Camera, make_camera, noise_1d, noise_crop
from world.config import RenderConfig
from world.props import Layout, draw_objects, make_layout
from world.road import apply_shadows, draw_ground_layer
from world.scene import Scene, day_of_year, sun_position

WEATHERS = ("clear", "cloudy", "overcast", "haze", "rain")
_SKYLINE_SAMPLES = 720  # 0.5 degree steps around the panorama


@dataclass(frozen=True)
class Look:
    """Per-location appearance shared by all views (so the panorama is consistent)."""

    weather: str
    cloud_cover: float
    haze: float
    fov_deg: float
    pitch_deg: float
    height_m: float
    sun_az_deg: float
    sun_el_deg: float
    sun_visible: bool  # not hidden by overcast/rain
    light: float  # global brightness multiplier
    tint: RGB  # colour of the light
    zenith: RGB
    horizon: RGB
    skyline: np.ndarray  # (720,) noise for mountain detail
    hills: np.ndarray  # (720,) noise for the near hill layer
    hill_deg: float
    treeline: np.ndarray  # (720,) forest band height in degrees (0 = none)


def _weather(scene: Scene, cfg: RenderConfig, rng: np.random.Generator) -> str:
    w = np.array(cfg.weather, np.float64)
    kg = scene.koppen[:1]
    if kg == "B":
        w *= (1.3, 0.7, 0.3, 2.0, 0.15)  # dry: dust haze, little rain
    elif scene.koppen in ("Af", "Am"):
        w *= (0.7, 1.6, 1.0, 1.0, 1.8)
    elif scene.koppen in ("Cfb", "Cfc", "Dfc", "ET"):
        w *= (0.7, 1.3, 1.8, 0.6, 1.4)  # oceanic/boreal: grey skies
    return WEATHERS[int(rng.choice(5, p=w / w.sum()))]


def _sky_colours(scene: Scene, weather: str, sun_el: float) -> tuple[RGB, RGB]:
    if weather == "overcast":
        return (0.60, 0.62, 0.65), (0.78, 0.79, 0.80)
    if weather == "rain":
        return (0.40, 0.42, 0.45), (0.58, 0.59, 0.60)
    zenith = mix((0.22, 0.44, 0.80), (0.12, 0.30, 0.72), float(np.clip(scene.elevation_m / 4000.0, 0, 1)))
    horizon = (0.70, 0.80, 0.90)
    if scene.koppen[:1] == "A":
        horizon = (0.80, 0.85, 0.89)  # humid, milky
    elif scene.koppen[:1] == "B":
        horizon = (0.86, 0.84, 0.78)  # dusty
    if weather == "haze":
        zenith, horizon = mix(zenith, (0.75, 0.76, 0.74), 0.5), mix(horizon, (0.86, 0.84, 0.80), 0.6)
    low = float(np.clip(1.0 - sun_el / 15.0, 0.0, 1.0))
    return mix(zenith, (0.30, 0.38, 0.62), 0.4 * low), mix(horizon, (0.96, 0.74, 0.52), 0.7 * low)


def make_look(scene: Scene, cfg: RenderConfig, biome: Biome, rng: np.random.Generator) -> Look:
    """Weather, camera jitter, sun and skyline noise for one location."""
    weather = _weather(scene, cfg, rng)
    cover = {
        "clear": rng.uniform(0, 0.2),
        "cloudy": rng.uniform(0.35, 0.7),
        "overcast": 1.0,
        "haze": rng.uniform(0, 0.2),
        "rain": 1.0,
    }[weather]
    haze = {"clear": 0.08, "cloudy": 0.12, "overcast": 0.25, "haze": rng.uniform(0.45, 0.7), "rain": 0.4}[
        weather
    ]
    az, el = sun_position(scene.lat, day_of_year(scene.month), scene.hour)
    az, el = float(az), float(el)
    dim = {"overcast": 0.82, "rain": 0.68, "haze": 0.9}.get(weather, 1.0)
    # street-view cameras expose automatically: low sun dims and warms the picture only a little
    light = (0.74 + 0.26 * float(np.clip(math.sin(math.radians(max(el, 0.0))) / 0.5, 0, 1))) * dim
    low = float(np.clip(1.0 - el / 20.0, 0.0, 1.0)) * (0.3 if weather in ("overcast", "rain") else 1.0)
    zenith, horizon = _sky_colours(scene, weather, el)
    relief = float(np.mean(scene.horizon_deg))
    flat = biome.crops or scene.koppen.startswith("BW")
    hill_deg = rng.uniform(0.2, 1.2) * (0.4 if flat else 1.0) * float(np.clip(0.5 + relief, 0.5, 3.0))
    band = 0.0
    if rng.random() < biome.treeline and biome.snow < 0.9:
        band = rng.uniform(0.8, 2.5)
    conifer = any(k == "conifer" and w > 0.5 for k, w in biome.trees)
    tl = noise_1d(_SKYLINE_SAMPLES, rng)
    if conifer:  # jagged spruce tops
        tl = tl + 0.6 * np.abs(np.sin(np.arange(_SKYLINE_SAMPLES) * rng.uniform(2.5, 4.0)))
    treeline = np.clip(band * (0.7 + 0.5 * tl), 0.0, None) if band > 0 else np.zeros(_SKYLINE_SAMPLES)
    return Look(
        weather=weather,
        cloud_cover=float(cover),
        haze=float(haze),
        fov_deg=cfg.fov_deg + rng.uniform(-1, 1) * cfg.fov_jitter_deg,
        pitch_deg=float(
            np.clip(rng.normal(0, cfg.pitch_jitter_deg / 2), -cfg.pitch_jitter_deg, cfg.pitch_jitter_deg)
        ),
        height_m=cfg.camera_height_m * rng.uniform(0.92, 1.08),
        sun_az_deg=az,
        sun_el_deg=el,
        sun_visible=weather not in ("overcast", "rain") and el > -1.0,
        light=light,
        tint=mix((1.0, 1.0, 1.0), (1.0, 0.93, 0.84), low),
        zenith=zenith,
        horizon=horizon,
        skyline=noise_1d(_SKYLINE_SAMPLES, rng),
        hills=noise_1d(_SKYLINE_SAMPLES, rng),
        hill_deg=hill_deg,
        treeline=treeline,
    )


def _around(values, az_deg: np.ndarray) -> np.ndarray:
    """Periodic interpolation of per-azimuth-bin values at compass azimuths ``az_deg``."""
    v = np.asarray(values, np.float64)
    step = 360.0 / len(v)
    x = np.arange(len(v) + 1) * step
    return np.interp(az_deg % 360.0, x, np.append(v, v[0]))


def _sample(noise: np.ndarray, az_deg: np.ndarray) -> np.ndarray:
    return noise[(az_deg * len(noise) / 360.0).astype(np.int64) % len(noise)]


def snowline_m(lat_deg: float) -> float:
    """Rough altitude of the permanent snow line (about 5 km in the tropics, sea level near the poles)."""
    return float(np.interp(abs(lat_deg), (0, 20, 30, 45, 60, 70, 90), (5000, 5000, 4300, 3000, 1500, 500, 0)))


def _col(rgb) -> np.ndarray:
    """An RGB colour as a (3, 1, 1) float32 array, for channels-first images."""
    return np.asarray(rgb, np.float32).reshape(3, 1, 1)


def _paint(img: np.ndarray, mask: np.ndarray, rgb) -> None:
    """Set the pixels of a (3, H, W) image where ``mask`` (H, W) holds to ``rgb``."""
    for c in range(3):
        np.copyto(img[c], np.float32(rgb[c]), where=mask)


# Images are channels-first float32 (3, S, S) in [0, 1] while in numpy: broadcasting over a trailing axis of
# length 3 is about ten times slower than over whole contiguous planes.


def draw_sky(cam: Camera, look: Look, tex: np.ndarray) -> np.ndarray:
    """(3, S, S) sky with clouds, sun glow and brightening towards the sun."""
    s = cam.size
    # rows below the horizon are always painted over by ground or sea: only the rows above are computed
    end = int(min(s, max(0, math.ceil(cam.horizon) + 1)))
    full = np.zeros((3, s, s), np.float32)
    rows = np.arange(end, dtype=np.float32)[:, None]
    t = np.clip((cam.horizon - rows) / max(cam.horizon, 1.0), 0.0, 1.0) ** 0.6  # (R, 1)
    grad = _col(look.horizon) * (1 - t) + _col(look.zenith) * t  # (3, R, 1)
    if look.sun_visible:  # the sky is brighter on the sun's side, in every view
        toward = (0.07 * np.cos(np.radians(cam.column_azimuth() - look.sun_az_deg))).astype(np.float32)
        sky = grad + toward[None, :] * (1 - 0.5 * t)
    else:
        sky = np.repeat(grad, s, axis=2)
    if look.cloud_cover >= 1.0:
        sky *= 0.93 + 0.14 * tex[0][:end]
    elif look.cloud_cover > 0:
        alpha = np.clip((tex[0][:end] - (1.0 - look.cloud_cover)) * 4.0, 0.0, 1.0) * (t > 0.02)
        sky += alpha * ((0.85 + 0.13 * tex[1][:end]) - sky)
    full[:, :end] = sky
    sky = full
    rel = (look.sun_az_deg - cam.heading_deg + 180.0) % 360.0 - 180.0
    if look.sun_visible and abs(rel) < 75 and look.sun_el_deg > -1:
        us = cam.cx + cam.f * math.tan(math.radians(rel))
        vs = cam.horizon - cam.f * math.tan(math.radians(look.sun_el_deg)) / math.cos(math.radians(rel))
        r = 0.45 * s  # glow radius: only this window is touched
        x0, x1 = int(max(0, us - r)), int(min(s, us + r))
        y0, y1 = int(max(0, vs - r)), int(min(s, vs + r))
        if x1 > x0 and y1 > y0:
            yy = ((np.arange(y0, y1, dtype=np.float32) - vs) / s) ** 2
            xx = ((np.arange(x0, x1, dtype=np.float32) - us) / s) ** 2
            d2 = yy[:, None] + xx[None, :]
            strength = 0.5 if look.weather == "haze" else 1.0
            glow = (0.55 * np.exp(-d2 / 0.02) + 1.5 * (d2 < 0.0009)) * strength
            sky[:, y0:y1, x0:x1] += glow[None] * _col((1.0, 0.95, 0.8))
    return sky


def draw_terrain(img: np.ndarray, cam: Camera, scene: Scene, biome: Biome, look: Look) -> np.ndarray:
    """Paint far mountains (real profile + noise), sea sectors, near hills and forest band; returns the
    per-column row where the ground starts (below the sea in sea sectors), shape (S,)."""
    s = cam.size
    az = cam.column_azimuth()
    rows = np.arange(s, dtype=np.float32)[:, None]
    below = rows < cam.horizon
    base = _around(scene.horizon_deg, az)
    sea = _around(np.asarray(scene.water, np.float64), az) > 0.5
    detail = _sample(look.skyline, az)
    # x1.5: the ~9 km elevation grid flattens real relief
    mount = np.where(sea, 0.0, 1.5 * base * (0.75 + 0.35 * detail) + 0.25 * np.clip(base, 0, 2) * detail)
    top = cam.horizon - cam.f * np.tan(np.radians(np.clip(mount, 0, 40)))
    in_mount = (rows >= top[None, :]) & below
    if in_mount.any():
        far_rock = mix((0.30, 0.31, 0.32), biome.evergreen if biome.tree_density > 0.3 else biome.grass, 0.35)
        _paint(img, in_mount, mix(far_rock, look.horizon, 0.38))
        snowy = (_around(scene.peak_m, az) > snowline_m(scene.lat)) | ((biome.snow > 0.5) & (mount > 1.0))
        cap = (rows < top[None, :] + 0.35 * (cam.horizon - top[None, :])) & in_mount & snowy[None, :]
        _paint(img, cap, mix((0.95, 0.96, 0.98), look.horizon, 0.25))
    hills = np.where(sea, 0.0, look.hill_deg * (0.5 + 0.5 * _sample(look.hills, az)))
    hill_top = cam.horizon - cam.f * np.tan(np.radians(np.clip(hills, 0, 20)))
    snow_hill = mix((0.92, 0.93, 0.95), look.horizon, 0.3)
    _paint(
        img,
        (rows >= hill_top[None, :]) & below,
        snow_hill if biome.snow >= 0.5 else mix(biome.grass, look.horizon, 0.45),
    )
    band = np.where(sea, 0.0, _sample(look.treeline, az))
    if band.any():
        tl_top = cam.horizon - cam.f * np.tan(np.radians(band))
        crown = mix(biome.crown, (0.1, 0.16, 0.1), 0.45)
        _paint(
            img,
            (rows >= tl_top[None, :]) & (rows < cam.horizon + 1) & (band[None, :] > 0),
            mix(crown, look.horizon, 0.35),
        )
    shore = np.where(sea, cam.horizon + cam.f * look.height_m / 40.0, cam.horizon)
    water = (rows >= cam.horizon) & (rows < shore[None, :])
    if water.any():
        _paint(img, water, mix((0.16, 0.32, 0.46), look.zenith, 0.35))
    return shore


def draw_ground(
    img: np.ndarray,
    cam: Camera,
    biome: Biome,
    look: Look,
    tex: np.ndarray,
    shore: np.ndarray,
    crop_angle: float,
) -> None:
    """Ground below the horizon: grass/soil patches, crop rows in perspective, snow."""
    s = cam.size
    v0 = int(max(0, math.floor(cam.horizon)))
    if v0 >= s:
        return
    n0, n1, n2 = tex[0][v0:], tex[1][v0:], tex[2][v0:]
    g0, g1 = _col(biome.grass), _col(biome.grass2)
    ground = g0 + n1 * (g1 - g0)
    if biome.soil_share > 0:
        soil_w = np.clip((n0 - (1.0 - biome.soil_share)) * 2.5, 0.0, 0.85)
        ground += soil_w * (_col(biome.soil) - ground)
    if biome.crops:
        rows = np.arange(v0, s, dtype=np.float32)[:, None] + 0.5
        z = cam.f * look.height_m / np.maximum(rows - cam.horizon, 0.5)
        x = (np.arange(s, dtype=np.float32)[None, :] + 0.5 - cam.cx) * (z / cam.f)
        a, b = cam.to_travel(x, z)
        phase = (b * math.cos(crop_angle) + a * math.sin(crop_angle)) * (1 / 1.6)
        stripe = ((phase % 1.0) < 0.5) * np.clip(1.0 - z / 60.0, 0.0, 1.0)
        c0, c1 = (_col(c) for c in biome.crop_colours)
        field = c0 + stripe * (c1 - c0)
        ground = np.where(np.abs(b) > 6.0, field, ground)
    if biome.snow > 0:
        cover = np.clip(biome.snow * 1.3 + 0.5 * (n2 - 0.5) - 0.15, 0.0, 1.0)
        ground += cover * (_col((0.93, 0.95, 0.98)) - ground)
    amp = 0.3 * (1.0 - 0.75 * biome.snow)  # fresh snow is smooth
    ground *= (1.0 - amp / 2) + amp * n2
    mask = (np.arange(v0, s, dtype=np.float32)[:, None] + 0.5) >= shore[None, :]
    np.copyto(img[:, v0:], ground, where=mask[None])


def postprocess(arr255: np.ndarray, cam: Camera, look: Look, tex: np.ndarray) -> np.ndarray:
    """Light, tint, haze towards the horizon, rain streaks and grain, as one affine map per row and channel:
    (3, S, S) float in 0..255 -> (3, S, S) uint8."""
    s = cam.size
    rows = np.arange(s, dtype=np.float32)
    h = (look.haze * np.exp(-np.abs(rows - cam.horizon) / (0.18 * s))).astype(np.float32)[:, None]  # (S, 1)
    haze_col = _col(mix(look.horizon, (0.85, 0.85, 0.85), 0.3)) * (255.0 * min(1.0, look.light + 0.1))
    out = arr255 * ((1 - h) * (look.light * _col(look.tint)))
    out += h * haze_col + 0.5
    if look.weather in ("overcast", "rain"):  # washed-out colours
        out = 0.7 * out + 0.3 * out.mean(axis=0)
    if look.weather == "rain":
        out *= 0.92
    out += (tex[1] - 0.5) * 6.0  # film grain
    np.clip(out, 0.0, 255.0, out=out)
    return out.astype(np.uint8)


def draw_rain(img: Image.Image, rng: np.random.Generator) -> None:
    """Thin, slightly slanted streaks of falling rain over the whole view."""
    s = img.size[0]
    n = int(0.6 * s)
    x, y = rng.uniform(0, s, n), rng.uniform(0, s, n)
    length = rng.uniform(0.03, 0.08, n) * s
    slant = rng.uniform(-0.25, 0.05)
    draw = ImageDraw.Draw(img)
    for x0, y0, dy in zip(x.tolist(), y.tolist(), length.tolist()):
        draw.line([(x0, y0), (x0 + slant * dy, y0 + dy)], fill=(188, 192, 198), width=1)


def to_image(arr_u8: np.ndarray) -> Image.Image:
    """(3, S, S) uint8 -> RGB image (merging planes beats transposing)."""
    return Image.merge("RGB", [Image.fromarray(plane) for plane in arr_u8])


def render_location(scene: Scene, cfg: RenderConfig, size: int | None = None) -> list[Image.Image]:
    """One RGB image per ``cfg.views`` heading, deterministic for (scene.seed, scene.index)."""
    size = int(size or cfg.image_size)
    rng = np.random.default_rng([scene.seed, scene.index])
    biome = make_biome(
        scene.koppen,
        scene.land_cover,
        scene.month,
        scene.lat,
        scene.temp_avg_c,
        scene.temp_range_c,
        scene.prec_avg_mm,
        scene.town_km,
        rng,
        scene.style.region,
    )
    look = make_look(scene, cfg, biome, rng)
    layout: Layout = make_layout(scene, biome, look, rng)
    crop_angle = float(rng.uniform(-0.3, 0.3)) if rng.random() < 0.5 else float(rng.uniform(1.2, 1.9))
    images = []
    for yaw in cfg.views:
        cam = make_camera(size, look.fov_deg, look.pitch_deg, look.height_m, float(yaw), scene.heading_deg)
        tex = noise_crop(size, rng)
        arr = draw_sky(cam, look, tex)
        shore = draw_terrain(arr, cam, scene, biome, look)
        draw_ground(arr, cam, biome, look, tex, shore, crop_angle)
        img = to_image((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8))
        draw_ground_layer(img, cam, layout)
        img = apply_shadows(img, cam, layout, look)
        draw_objects(img, cam, layout, look)
        if look.weather == "rain":
            draw_rain(img, rng)
        planes = np.asarray(img).transpose(2, 0, 1).astype(np.float32)
        images.append(to_image(postprocess(planes, cam, look, tex)))
    return images


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    """JPEG bytes without metadata (deterministic for identical pixels)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality), optimize=False, subsampling=2)
    return buf.getvalue()
