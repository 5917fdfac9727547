"""Signs with real place names and words in the country's script, and cars with country-style plates.

Signs stand on the driving side of the road: a direction sign ahead (the most populous nearby place, its
distance in the country's unit, and the word for "centre" in the local script, with an arrow towards the real
bearing of that place), sometimes a stop sign at a crossing, a town-name sign behind for the opposite
traffic, and a shop sign ("hotel" in the local language + the town) on a house front facing the side views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from world.biome import hex_rgb
from world.canvas import Camera, font
from world.canvas import rgb8 as _c
from world.style import PLATES, SHOP_WORDS
from world.trees import billboard


@dataclass(frozen=True)
class Sign:
    """A sign panel ``w`` x ``h`` m whose bottom edge is ``y0`` m above ground at travel-frame (a, b),
    readable from the side its normal (na, nb) points to."""

    kind: str  # direction | stop | town | shop
    a: float
    b: float
    w: float
    h: float
    y0: float
    na: float
    nb: float
    lines: tuple[tuple[str, str], ...]  # (text, ISO 15924 script)
    bg: str
    fg: str
    border: str
    arrow: str = ""  # "" | up | left | right
    shape: str = "rect"  # rect | octagon | triangle
    posts: int = 1


def _script_of(text: str, script: str) -> str:
    return "Latn" if all(ord(ch) < 0x250 for ch in text) else script


def _arrow(scene) -> str:
    """Arrow towards the real bearing of the sign's destination, relative to the road."""
    rel = (scene.town2_bearing_deg - scene.heading_deg + 180.0) % 360.0 - 180.0
    return "up" if abs(rel) < 35 else ("right" if rel > 0 else "left")


def make_signs(
    scene, edges: tuple[float, float], paved: bool, rng: np.random.Generator
) -> tuple[list[Sign], tuple[float, float] | None]:
    """Signs of one location and the optional cross road (a0, a1) at a stop sign."""
    st = scene.style
    s_d = 1 if scene.driving_side == "right" else -1  # the side traffic keeps to
    edge_d, edge_o = (edges[1], edges[0]) if s_d > 0 else (edges[0], edges[1])
    facing_us = dict(na=-1.0, nb=0.0)  # readable from the camera's side (smaller a)
    signs, cross = [], None
    if rng.random() < 0.8:
        dist = max(1, round(scene.town2_km * (0.621 if st.unit == "mi" else 1.0)))
        lines = ((f"{scene.town2}  {dist} {st.unit}", "Latn"),
                 (scene.centre_word, _script_of(scene.centre_word, scene.script)))
        signs.append(Sign("direction", rng.uniform(10, 18), edge_d + s_d * 1.8, w=3.4, h=1.8, y0=1.6,
                          **facing_us, lines=lines, bg=st.sign_bg, fg=st.sign_fg, border=st.sign_fg,
                          arrow=_arrow(scene), posts=2))
    if paved and rng.random() < 0.3:
        a, word = rng.uniform(8, 14), scene.stop_word
        signs.append(Sign("stop", a, edge_d + s_d * 1.1, w=0.9, h=0.9, y0=1.5, **facing_us,
                          lines=((word, _script_of(word, scene.script)),), bg="#c4161c", fg="#ffffff",
                          border="#ffffff", shape="triangle" if st.stop_shape == "triangle" else "octagon"))
        cross = (a + 2.0, a + 9.0)
    if rng.random() < 0.6 and scene.town:  # behind us, for the opposite traffic: seen in view 180
        signs.append(Sign("town", -rng.uniform(14, 30), edge_o - s_d * 1.4, w=2.2, h=1.0, y0=1.4, na=1.0,
                          nb=0.0, lines=((scene.town, "Latn"),), bg=st.town_bg, fg=st.town_fg,
                          border=st.town_border, posts=2))
    return signs, cross


def shop_sign(scene, building, rng: np.random.Generator) -> Sign:
    """A shop-front sign on ``building`` (a Prop), facing the road."""
    side = building.extra["side"]
    word = SHOP_WORDS.get(scene.language, "Hotel")
    bg = rng.choice(["#b01818", "#183c8c", "#f2f2f2", "#1a6a2a", "#f0c020", "#202020"])
    fg = "#111111" if bg in ("#f2f2f2", "#f0c020") else "#ffffff"
    w = min(building.w * 0.85, 7.0)
    return Sign(
        "shop",
        building.a + building.w / 2,
        building.b - side * 0.15,
        w,
        1.6,
        2.5,
        0.0,
        -float(side),
        ((word, _script_of(word, scene.script)), (scene.town, "Latn")),
        bg,
        fg,
        fg,
    )


def _panel(cam: Camera, s: Sign) -> list[tuple[float, float]] | None:
    ta, tb = -s.nb * s.w / 2, s.na * s.w / 2  # half the panel, along it
    y0, y1 = s.y0, s.y0 + s.h
    return cam.polygon(
        [
            (s.a - ta, s.b - tb, y0),
            (s.a + ta, s.b + tb, y0),
            (s.a + ta, s.b + tb, y1),
            (s.a - ta, s.b - tb, y1),
        ]
    )


def _text_block(draw: ImageDraw.ImageDraw, box, lines, fg, arrow: str) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    shares = (0.58, 0.42) if len(lines) == 2 else (1.0 / len(lines),) * len(lines)  # first line biggest
    line_h = h * shares[0]
    arrow_w = line_h * 0.8 if arrow else 0.0
    top = y0
    for (text, script), share in zip(lines, shares):
        lh = h * share
        size = int(lh * 0.72)
        cy = top + lh / 2
        top += lh
        if size < 5:  # unreadable at this distance: draw the grey smudge that text becomes
            half = max(0.5, lh * 0.15)
            if x1 - w * 0.1 - arrow_w > x0 + w * 0.1:
                draw.rectangle([x0 + w * 0.1, cy - half, x1 - w * 0.1 - arrow_w, cy + half], fill=fg)
            continue
        f = font(script, size)
        tw = f.getlength(text)
        avail = w * 0.92 - arrow_w
        if tw > avail and tw > 0:
            f = font(script, max(4, int(size * avail / tw)))
            tw = f.getlength(text)
        draw.text((x0 + (w - arrow_w - tw) / 2, cy), text, font=f, fill=fg, anchor="lm")
    if arrow and line_h > 4:
        ax, ay, r = x1 - arrow_w * 0.65, y0 + line_h * 0.5, line_h * 0.3
        pts = {
            "up": [(ax - r, ay + r * 0.3), (ax + r, ay + r * 0.3), (ax, ay - r)],
            "left": [(ax + r * 0.3, ay - r), (ax + r * 0.3, ay + r), (ax - r, ay)],
            "right": [(ax - r * 0.3, ay - r), (ax - r * 0.3, ay + r), (ax + r, ay)],
        }[arrow]
        draw.polygon(pts, fill=fg)


def _posts(draw, cam: Camera, s: Sign, shade: float) -> None:
    offsets = (0.0,) if s.posts == 1 else (-s.w * 0.35, s.w * 0.35)
    for off in offsets:
        u, v, k, z = billboard(cam, s.a - s.nb * off, s.b + s.na * off)
        if z <= 0.5:
            continue
        half = max(0.5, 0.05 * k)
        draw.rectangle([u - half, v - (s.y0 + 0.05) * k, u + half, v], fill=_c((0.55, 0.56, 0.58), shade))


def draw_sign(draw: ImageDraw.ImageDraw, cam: Camera, s: Sign, shade: float) -> None:
    """Posts, panel (front or grey back) and text of a sign."""
    view_a, view_b = math.cos(math.radians(cam.yaw_deg)), math.sin(math.radians(cam.yaw_deg))
    facing = -(view_a * s.na + view_b * s.nb)  # 1 = panel faces the camera
    if s.kind != "shop":
        _posts(draw, cam, s, shade)
    if abs(facing) < 0.35:
        return  # edge-on
    poly = _panel(cam, s)
    if not poly:
        return
    if facing < 0:
        if s.kind != "shop":
            draw.polygon(poly, fill=_c((0.55, 0.56, 0.58), shade))
        return
    us, vs = [p[0] for p in poly], [p[1] for p in poly]
    box = (min(us), min(vs), max(us), max(vs))
    bg, fg, border = (_c(hex_rgb(c), min(shade, 1.1)) for c in (s.bg, s.fg, s.border))
    if s.shape == "octagon":
        cx, cy, r = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, (box[2] - box[0]) / 2
        draw.regular_polygon((cx, cy, r), 8, rotation=22.5, fill=border)
        draw.regular_polygon((cx, cy, r * 0.88), 8, rotation=22.5, fill=bg)
    elif s.shape == "triangle":  # Japanese stop sign: inverted red triangle
        cx, cy, r = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, (box[2] - box[0]) / 2
        draw.regular_polygon((cx, cy, r), 3, rotation=180, fill=border)
        draw.regular_polygon((cx, cy, r * 0.85), 3, rotation=180, fill=bg)
        box = (cx - r * 0.6, cy - r * 0.45, cx + r * 0.6, cy + r * 0.05)
    else:
        draw.polygon(poly, fill=border)
        inset = max(1.0, (box[2] - box[0]) * 0.04)
        box = (box[0] + inset, box[1] + inset, box[2] - inset, box[3] - inset)
        if box[2] > box[0] and box[3] > box[1]:
            draw.rectangle(box, fill=bg)
    if box[2] - box[0] > 3:
        pad = (box[2] - box[0]) * 0.06 if s.shape == "rect" else 0.0
        _text_block(draw, (box[0] + pad, box[1], box[2] - pad, box[3]), s.lines, fg, s.arrow)


# --- cars -----------------------------------------------------------------------------------------------

_CAR_COLOURS = ("#f0f0f0", "#b8bcc0", "#202224", "#8a1c1c", "#1c3a78", "#6a6e72", "#e8e4d8", "#2a4a2a")


def make_cars(
    scene,
    centre_b: float,
    lane: float,
    edges: tuple[float, float],
    paved: bool,
    parked: float,
    rng: np.random.Generator,
) -> list[dict]:
    """Oncoming, leading, following and parked cars as dicts (a, b, w, h, colour, front +1/-1, plate)."""
    s_d = 1 if scene.driving_side == "right" else -1
    own, other = centre_b + s_d * lane / 2, centre_b - s_d * lane / 2
    plate = PLATES[scene.style.plate]
    traffic = 1.0 if paved else 0.4
    cars = []
    for prob, a_range, b, front in (
        (0.55, (12, 70), other, -1),
        (0.25, (14, 60), own, 1),
        (0.2, (-50, -12), own, 1),
        (0.2, (-60, -14), other, -1),
    ):
        if rng.random() < prob * traffic:
            cars.append({"a": rng.uniform(*a_range), "b": b + rng.uniform(-0.3, 0.3), "front": front})
    for side in (-1, 1):  # parked at the kerb, seen side-on from the side views
        if rng.random() < parked:
            b = (edges[1] if side > 0 else edges[0]) + side * 1.1
            cars.append({"a": rng.uniform(-10, 10), "b": b, "front": 1 if rng.random() < 0.5 else -1})
    for c in cars:
        c.update(
            w=1.8,
            h=1.5,
            length=4.3,
            colour=hex_rgb(rng.choice(_CAR_COLOURS)),
            plate=plate,
            uk=scene.style.plate == "uk",
        )
    return cars


def _trapezoid(draw: ImageDraw.ImageDraw, x0: float, x1: float, y0: float, y1: float, inset0: float,
               inset1: float, fill) -> None:
    """Quad from the segment x0..x1 at row y0 (inset by inset0) to x0..x1 at row y1 (inset by inset1)."""
    draw.polygon([(x0 + inset0, y0), (x1 - inset0, y0), (x1 - inset1, y1), (x0 + inset1, y1)], fill=fill)


def _car_end(draw, u: float, v: float, k: float, car: dict, front: bool, body, glass, shade: float) -> None:
    """A car from the front (white lights) or the back (red lights); its plate in the country's colours."""
    hw, tyre = 0.9 * k, (20, 20, 20)
    draw.rectangle([u - hw * 0.9, v - 0.3 * k, u - hw * 0.5, v], fill=tyre)
    draw.rectangle([u + hw * 0.5, v - 0.3 * k, u + hw * 0.9, v], fill=tyre)
    draw.rectangle([u - hw, v - 0.95 * k, u + hw, v - 0.22 * k], fill=body)
    _trapezoid(draw, u - hw, u + hw, v - 0.95 * k, v - 1.45 * k, hw * 0.15, hw * 0.35, body)
    _trapezoid(draw, u - hw, u + hw, v - 1.0 * k, v - 1.38 * k, hw * 0.25, hw * 0.4, glass)
    light = (250, 250, 235) if front else (200, 20, 20)
    draw.rectangle([u - hw * 0.92, v - 0.82 * k, u - hw * 0.62, v - 0.68 * k], fill=light)
    draw.rectangle([u + hw * 0.62, v - 0.82 * k, u + hw * 0.92, v - 0.68 * k], fill=light)
    bg, strip, _ = car["plate"]
    if car.get("uk") and front:
        bg = "#f4f4f0"  # UK: white front plate, yellow rear
    pw, ph, py = 0.26 * k, 0.06 * k, v - 0.5 * k
    draw.rectangle([u - pw, py - ph, u + pw, py + ph], fill=_c(hex_rgb(bg), min(shade, 1.05)))
    if strip:
        draw.rectangle([u - pw, py - ph, u - pw * 0.8, py + ph], fill=_c(hex_rgb(strip)))


def draw_car(draw: ImageDraw.ImageDraw, cam: Camera, car: dict, shade: float) -> None:
    """A car seen from the front or back (forward/backward views) or from the side (side views)."""
    view_a = math.cos(math.radians(cam.yaw_deg))
    u, v, k, z = billboard(cam, car["a"], car["b"])
    if car["h"] * k < 2:
        return
    body, glass = _c(car["colour"], shade), _c((0.15, 0.18, 0.2), shade)
    if abs(view_a) > 0.6:
        _car_end(draw, u, v, k, car, view_a * car["front"] < 0, body, glass, shade)
        return
    x0, z0 = cam.to_cam(car["a"] - 2.15, car["b"])  # side view: the car's length runs across the image
    x1, z1 = cam.to_cam(car["a"] + 2.15, car["b"])
    if min(z0, z1) < 0.5:
        return
    ua, ub = sorted([cam.cx + cam.f * x0 / z0, cam.cx + cam.f * x1 / z1])
    n = ub - ua
    draw.rectangle([ua, v - 0.95 * k, ub, v - 0.25 * k], fill=body)
    draw.polygon([(ua + n * 0.2, v - 0.95 * k), (ub - n * 0.15, v - 0.95 * k), (ub - n * 0.3, v - 1.45 * k),
                  (ua + n * 0.32, v - 1.45 * k)], fill=body)
    draw.polygon([(ua + n * 0.25, v - 1.0 * k), (ub - n * 0.2, v - 1.0 * k), (ub - n * 0.32, v - 1.38 * k),
                  (ua + n * 0.35, v - 1.38 * k)], fill=glass)
    for t in (0.2, 0.8):
        cx = ua + n * t
        draw.ellipse([cx - 0.33 * k, v - 0.62 * k, cx + 0.33 * k, v + 0.02 * k], fill=(20, 20, 20))
