"""Drawing of vegetation, poles, bollards and buildings (billboards and projected quads) for one view."""

from __future__ import annotations

import math

import numpy as np
from PIL import ImageDraw

from world.biome import RGB, mix
from world.canvas import Camera
from world.canvas import rgb8 as _c

_TRUNK: RGB = (0.33, 0.26, 0.19)


def billboard(cam: Camera, a: float, b: float) -> tuple[float, float, float, float]:
    """(u of the foot, v of the foot, pixels per metre, depth z) of a vertical object at (a, b)."""
    x, z = cam.to_cam(float(a), float(b))
    k = cam.f / z
    return cam.cx + x * k, cam.horizon + cam.height_m * k, k, z


def _ellipse(draw: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float, fill) -> None:
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)


def _bare_tree(draw, u, v, k, h, lean, shade) -> None:
    col = _c(mix(_TRUNK, (0.45, 0.42, 0.4), 0.4), shade)
    top = (u + lean * h * k, v - h * k)
    draw.line([(u, v), top], fill=col, width=max(1, int(0.3 * k)))
    for t, ang in ((0.45, -0.9), (0.55, 0.8), (0.7, -0.5), (0.78, 0.55), (0.88, -0.2)):
        sx, sy = u + lean * h * k * t, v - h * k * t
        r = 0.3 * h * k * (1.1 - t)
        draw.line(
            [(sx, sy), (sx + math.sin(ang) * r, sy - math.cos(ang) * r)], fill=col, width=max(1, int(0.1 * k))
        )


def draw_tree(draw: ImageDraw.ImageDraw, cam: Camera, p, shade: float) -> None:
    """A tree, shrub or cactus of kind ``p.kind`` at (p.a, p.b), p.w wide and p.h tall."""
    u, v, k, z = billboard(cam, p.a, p.b)
    h, w, lean = p.h * k, p.w * k, p.extra.get("lean", 0.0)
    if h < 1.5 or w > 0.6 * cam.size:
        return  # too small to see, or so close it would hide the whole view
    crown, dark = _c(p.colour, shade), _c(p.colour, shade * 0.72)
    trunk = _c(_TRUNK, shade)
    kind = p.kind
    if p.extra.get("bare") and kind in ("broadleaf", "birch"):
        _bare_tree(draw, u, v, k, p.h, lean, shade)
        return
    if kind == "broadleaf":
        draw.rectangle([u - 0.15 * k, v - 0.5 * h, u + 0.15 * k, v], fill=trunk)
        cx = u + lean * h
        _ellipse(draw, cx, v - 0.62 * h, w / 2, 0.34 * h, dark)
        _ellipse(draw, cx - 0.12 * w, v - 0.7 * h, w * 0.36, 0.26 * h, crown)
        _ellipse(draw, cx + 0.15 * w, v - 0.58 * h, w * 0.3, 0.22 * h, crown)
    elif kind == "conifer":
        draw.rectangle([u - 0.12 * k, v - 0.25 * h, u + 0.12 * k, v], fill=trunk)
        for i in range(3):
            base, top = v - (0.12 + 0.26 * i) * h, v - min(1.0, 0.55 + 0.25 * i) * h
            half = w / 2 * (1.0 - 0.27 * i)
            draw.polygon([(u - half, base), (u + half, base), (u, top)], fill=dark if i == 0 else crown)
            if p.extra.get("snow", 0) > 0.5:
                draw.polygon(
                    [
                        (u - half * 0.35, top + 0.35 * (base - top)),
                        (u + half * 0.35, top + 0.35 * (base - top)),
                        (u, top),
                    ],
                    fill=_c((0.95, 0.96, 0.98), shade),
                )
    elif kind == "palm":
        top = (u + lean * h * 2, v - h)
        draw.line([(u, v), top], fill=_c((0.48, 0.40, 0.3), shade), width=max(1, int(0.28 * k)))
        green = _c(mix(p.colour, (0.2, 0.45, 0.15), 0.5), shade)
        for ang in np.linspace(0, 2 * math.pi, 8, endpoint=False):
            r = w / 2
            tip = (top[0] + math.cos(ang) * r, top[1] - math.sin(ang) * r * 0.35 + 0.45 * r)
            mid = (top[0] + math.cos(ang) * r * 0.5, top[1] - math.sin(ang) * r * 0.35 - 0.05 * r)
            draw.line([top, mid, tip], fill=green, width=max(1, int(0.22 * k)))
    elif kind == "acacia":
        draw.line([(u, v), (u + lean * h, v - 0.85 * h)], fill=trunk, width=max(1, int(0.2 * k)))
        _ellipse(draw, u + lean * h, v - 0.88 * h, w / 2, max(1.0, 0.12 * w), dark)
        _ellipse(draw, u + lean * h, v - 0.92 * h, w * 0.42, max(1.0, 0.08 * w), crown)
    elif kind == "shrub":
        _ellipse(draw, u, v - h * 0.5, w / 2, h * 0.5, dark)
        _ellipse(draw, u - w * 0.1, v - h * 0.6, w * 0.3, h * 0.35, crown)
    elif kind == "cactus":
        col = _c((0.33, 0.48, 0.3), shade)
        draw.rounded_rectangle([u - 0.22 * k, v - h, u + 0.22 * k, v], radius=max(0.0, 0.2 * k), fill=col)
        if h > 6:
            draw.rectangle([u - 0.7 * k, v - 0.6 * h, u - 0.22 * k, v - 0.5 * h], fill=col)
            draw.rectangle([u - 0.7 * k, v - 0.8 * h, u - 0.5 * k, v - 0.5 * h], fill=col)
    elif kind == "birch":
        draw.rectangle([u - 0.12 * k, v - 0.8 * h, u + 0.12 * k, v], fill=_c((0.9, 0.9, 0.86), shade))
        for t in (0.2, 0.45, 0.7):
            draw.line([(u - 0.12 * k, v - t * h), (u + 0.05 * k, v - t * h)], fill=(30, 30, 30), width=1)
        _ellipse(draw, u, v - 0.72 * h, w / 2, 0.26 * h, _c(mix(p.colour, (0.5, 0.7, 0.3), 0.3), shade))
    else:  # cypress
        _ellipse(draw, u, v - 0.55 * h, w / 2, 0.5 * h, _c(mix(p.colour, (0.08, 0.2, 0.08), 0.4), shade))


def draw_pole_or_bollard(draw: ImageDraw.ImageDraw, cam: Camera, p, shade: float) -> None:
    """Utility pole (wood with cross-arm, tapered concrete, metal street light) or roadside bollard."""
    u, v, k, _ = billboard(cam, p.a, p.b)
    h = p.h * k
    if h < 2:
        return
    half = max(0.5, p.w * k / 2)
    if p.kind == "bollard":
        body, band, refl = p.colour, p.extra["band"], p.extra["refl"]
        draw.rectangle([u - half, v - h, u + half, v], fill=_c(body, shade))
        draw.rectangle([u - half, v - h, u + half, v - 0.72 * h], fill=_c(band, shade))
        draw.rectangle([u - half * 0.6, v - 0.93 * h, u + half * 0.6, v - 0.8 * h], fill=_c(refl, 1.1))
        return
    style = p.extra.get("style", "wood")
    col = _c(p.colour, shade)
    if style == "concrete":
        draw.polygon(
            [(u - half * 1.2, v), (u + half * 1.2, v), (u + half * 0.7, v - h), (u - half * 0.7, v - h)],
            fill=col,
        )
        draw.rectangle([u - 0.6 * k, v - 0.93 * h, u + 0.6 * k, v - 0.91 * h], fill=col)
    elif style == "metal":
        draw.rectangle([u - half * 0.6, v - h, u + half * 0.6, v], fill=col)
        draw.line([(u, v - h), (u - 1.8 * k, v - h - 0.3 * k)], fill=col, width=max(1, int(0.12 * k)))
        draw.rectangle(
            [u - 2.1 * k, v - h - 0.35 * k, u - 1.5 * k, v - h - 0.15 * k], fill=_c((0.85, 0.85, 0.8), shade)
        )
    else:
        draw.rectangle([u - half, v - h, u + half, v], fill=col)
        draw.rectangle([u - 0.9 * k, v - 0.95 * h, u + 0.9 * k, v - 0.95 * h + max(1.0, 0.14 * k)], fill=col)


def _quad(cam: Camera, draw, pts: list[tuple[float, float, float]], fill) -> None:
    poly = cam.polygon(pts)
    if poly:
        draw.polygon(poly, fill=fill)


def _roof(cam: Camera, draw, p, wall_shade: float) -> None:
    side, depth, h = p.extra["side"], p.extra["depth"], p.h
    a0, a1, b = p.a, p.a + p.w, p.b
    kind = p.extra["roof_kind"]
    roof = _c(p.extra["roof"], wall_shade * 0.95)
    if kind == "flat":
        _quad(
            cam,
            draw,
            [(a0, b, h), (a1, b, h), (a1, b, h + 0.5), (a0, b, h + 0.5)],
            _c(p.colour, wall_shade * 0.8),
        )
        return
    if kind == "shed":
        _quad(
            cam,
            draw,
            [(a0, b, h), (a1, b, h), (a1, b + side * depth, h + 0.9), (a0, b + side * depth, h + 0.9)],
            roof,
        )
        return
    rise = depth / 2 * 0.7
    inset = depth / 2 * 0.8 if kind == "hip" else 0.0
    inset = min(inset, p.w / 2 - 0.5)
    _quad(
        cam,
        draw,
        [
            (a0 - 0.3, b - side * 0.3, h),
            (a1 + 0.3, b - side * 0.3, h),
            (a1 - inset, b + side * depth / 2, h + rise),
            (a0 + inset, b + side * depth / 2, h + rise),
        ],
        roof,
    )


def draw_building(draw: ImageDraw.ImageDraw, cam: Camera, p, look, shade: float) -> None:
    """A house: facade along the road, the end wall that faces the camera, roof, windows and a door."""
    side, depth, h = p.extra["side"], p.extra["depth"], p.h
    a0, a1, b = p.a, p.a + p.w, p.b
    facade = cam.polygon([(a0, b, 0.0), (a1, b, 0.0), (a1, b, h), (a0, b, h)])
    if facade is None:
        return
    us = [q[0] for q in facade]
    if max(us) < -cam.size * 0.5 or min(us) > cam.size * 1.5:
        return
    wall = p.colour
    end = a0 if cam.cos_yaw > 0.3 and a0 > 0 else a1 if cam.cos_yaw < -0.3 and a1 < 0 else None
    if end is not None:
        _quad(
            cam,
            draw,
            [(end, b, 0), (end, b + side * depth, 0), (end, b + side * depth, h), (end, b, h)],
            _c(wall, shade * 0.78),
        )
    draw.polygon(facade, fill=_c(wall, shade))
    _roof(cam, draw, p, shade)
    if max(us) - min(us) < 10:
        return  # too small for windows to matter
    _windows(
        draw,
        cam,
        p,
        _c((0.22, 0.26, 0.3), shade * (1.3 if look.sun_visible else 1.0)),
        _c((0.3, 0.2, 0.14), shade),
    )


def _windows(draw: ImageDraw.ImageDraw, cam: Camera, p, glass, door) -> None:
    """Window grid and door on a facade. The facade is a vertical plane: a column at ``a`` has one depth,
    so its pixel column and the scale of its heights are computed once per column, not per corner."""
    fb = p.b - p.extra["side"] * 0.02
    mid = p.a + p.w / 2
    left = np.arange(p.a + 1.0, p.a + p.w - 1.6, 2.8)
    edges = np.stack([left, left + 1.2], axis=1)  # (C, 2) a of each window's sides
    x, z = cam.to_cam(edges, fb)
    ok = (z > 0.5).all(axis=1)
    u = cam.cx + cam.f * x / np.maximum(z, 0.5)
    k = cam.f / np.maximum(z, 0.5)  # pixels per metre of height
    v0 = cam.horizon + cam.height_m * k  # ground row at each side
    for s in range(p.extra["storeys"]):
        top = s * 3.0 + 2.2
        for i in np.flatnonzero(ok).tolist():
            is_door = s == 0 and abs(left[i] + 0.6 - mid) < 1.5
            y0 = 0.0 if is_door else s * 3.0 + 0.9
            (ua, ub), (va, vb), (ka, kb) = u[i], v0[i], k[i]
            draw.polygon(
                [(ua, va - y0 * ka), (ub, vb - y0 * kb), (ub, vb - top * kb), (ua, va - top * ka)],
                fill=door if is_door else glass,
            )
