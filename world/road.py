"""The ground layer of a view: road surface, shoulders, cross road, markings, kerbs, and cast shadows.

Markings follow the country's :class:`~world.style.RoadStyle` (yellow or white centre line, dashed,
solid or double; white or yellow edge lines; striped kerbs in towns). Shadows are the props' footprints swept
away from the sun over the ground, so they show the sun's direction even in views that do not face it.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from world.biome import hex_rgb
from world.canvas import NEAR_M, Camera
from world.canvas import rgb8 as _c
from world.props import ROAD_HALF_LEN_M, Layout


def _strip(cam: Camera, draw: ImageDraw.ImageDraw, a0, a1, b0, b1, colour) -> None:
    poly = cam.polygon([(a0, b0, 0.0), (a1, b0, 0.0), (a1, b1, 0.0), (a0, b1, 0.0)])
    if poly:
        draw.polygon(poly, fill=colour)


def _line_strips(layout: Layout, cam: Camera, draw: ImageDraw.ImageDraw) -> None:
    """Centre and edge markings; dashes only where they can be seen."""
    L = ROAD_HALF_LEN_M
    lo, hi = layout.edges
    if layout.edge_colour:
        for b in (lo + 0.25, hi - 0.25):
            _strip(cam, draw, -L, L, b - 0.07, b + 0.07, _c(hex_rgb(layout.edge_colour)))
    if not layout.centre_colour:
        return
    col, c = _c(hex_rgb(layout.centre_colour)), layout.centre_b
    if layout.centre_pattern == "double":
        for off in (-0.12, 0.12):
            _strip(cam, draw, -L, L, c + off - 0.06, c + off + 0.06, col)
    elif layout.centre_pattern == "solid":
        _strip(cam, draw, -L, L, c - 0.07, c + 0.07, col)
    else:
        for a in np.arange(-120 + layout.dash_phase, 120, 12.0).tolist():
            x, z = cam.to_cam(a + 1.5, c)
            if z > NEAR_M - 3.0 and abs(x) < z * 3 + 6:
                _strip(cam, draw, a, a + 3.0, c - 0.07, c + 0.07, col)


def draw_ground_layer(img: Image.Image, cam: Camera, layout: Layout) -> None:
    """Road surface, shoulders, cross road, markings and kerbs."""
    draw = ImageDraw.Draw(img)
    L = ROAD_HALF_LEN_M
    lo, hi = layout.edges
    _strip(cam, draw, -L, L, lo - 1.2, hi + 1.2, _c(layout.shoulder))
    _strip(cam, draw, -L, L, lo, hi, _c(layout.surface))
    if layout.cross_road:
        a0, a1 = layout.cross_road
        _strip(cam, draw, a0, a1, -L, L, _c(layout.surface))
    if layout.paved:
        _line_strips(layout, cam, draw)
    if layout.kerb:
        c1, c2 = {
            "red_white": ("#c02020", "#f0f0f0"),
            "black_white": ("#202020", "#f0f0f0"),
            "yellow_black": ("#e8c020", "#202020"),
        }[layout.kerb]
        for b in (lo - 0.1, hi + 0.1):
            for i, a in enumerate(range(-60, 60)):
                x, z = cam.to_cam(a, b)
                if z > NEAR_M and abs(x) < z * 2 + 2:
                    _strip(cam, draw, a, a + 1.0, b - 0.15, b + 0.15, _c(hex_rgb(c1 if i % 2 else c2)))


def _shadow_dir(layout: Layout, look) -> tuple[float, float]:
    t = math.radians(look.sun_az_deg + 180.0 - layout.heading_deg)
    return math.cos(t), math.sin(t)


def apply_shadows(img: Image.Image, cam: Camera, layout: Layout, look) -> Image.Image:
    """Darken the ground where props cast shadows (none without direct sun)."""
    if not look.sun_visible or look.sun_el_deg < 3:
        return img
    strength = 0.45 if look.weather in ("clear", "haze") else 0.3
    length = min(1.0 / math.tan(math.radians(look.sun_el_deg)), 6.0)
    da, db = _shadow_dir(layout, look)
    mask = Image.new("L", (cam.size, cam.size), 0)
    draw = ImageDraw.Draw(mask)
    for p in layout.props:
        if p.kind == "bollard":
            continue
        x, z = cam.to_cam(p.a, p.b)
        if z < -40 or abs(x) > abs(z) * 2.5 + 40:
            continue
        reach = p.h * length
        if p.kind == "building":  # the facade's foot line swept away from the sun
            pts = [
                (p.a, p.b),
                (p.a + p.w, p.b),
                (p.a + p.w + da * reach, p.b + db * reach),
                (p.a + da * reach, p.b + db * reach),
            ]
        else:  # a band as wide as the object, as long as its shadow
            pa, pb = -db * p.w * 0.4, da * p.w * 0.4
            pts = [
                (p.a + pa, p.b + pb),
                (p.a - pa, p.b - pb),
                (p.a - pa + da * reach, p.b - pb + db * reach),
                (p.a + pa + da * reach, p.b + pb + db * reach),
            ]
        poly = cam.polygon([(a, b, 0.0) for a, b in pts])
        if poly:
            draw.polygon(poly, fill=255)
    box = mask.getbbox()
    if box is None:
        return img
    region = img.crop(box)  # darken only where shadows fall
    dark = region.point([int(x * (1.0 - strength)) for x in range(256)] * 3)
    img.paste(dark, box[:2], mask.crop(box))
    return img
