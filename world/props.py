"""The road and the roadside of one location, laid out once in the travel frame and drawn in every view.

The camera car drives in its lane: on the right half of the road where traffic keeps right, on the left half
where it keeps left, so the centre line, the oncoming car and the roadside signs swap sides with the driving
side. Objects are vertical billboards or 3-D quads (building facades and roofs, guard rails, hedges) drawn
far to near; shadows fall away from the sun, so they show its direction even in views that do not face it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from world.biome import BARE_BRANCHES, RGB, Biome, hex_rgb, mix
from world.canvas import NEAR_M, Camera
from world.canvas import rgb8 as _c
from world.scene import Scene
from world.signs import draw_car, draw_sign, make_cars, make_signs, shop_sign
from world.style import BOLLARDS, BUILDINGS
from world.trees import draw_building, draw_pole_or_bollard, draw_tree

ROAD_HALF_LEN_M = 300.0


@dataclass
class Prop:
    """A roadside object at travel-frame (a, b): tree, pole, bollard, building, car or sign."""

    kind: str
    a: float
    b: float
    w: float
    h: float
    colour: RGB = (0.5, 0.5, 0.5)
    extra: dict = field(default_factory=dict)


@dataclass
class Layout:
    """Road geometry and props of one location (travel frame, metres)."""

    centre_b: float  # lateral position of the road centre (camera at 0)
    lane_m: float
    paved: bool
    surface: RGB
    shoulder: RGB
    centre_colour: str
    centre_pattern: str
    edge_colour: str
    kerb: str
    dash_phase: float
    cross_road: tuple[float, float] | None
    props: list[Prop]
    pole_lines: list[list[tuple[float, float, float]]]  # per side: pole tops (a, b, h) for wires
    wires: int
    heading_deg: float
    quads: list[tuple[list, RGB]] = field(default_factory=list)  # hedges, guard rails, forest: [(a, b, y)]

    @property
    def edges(self) -> tuple[float, float]:
        return self.centre_b - self.lane_m, self.centre_b + self.lane_m


def _pick(rng: np.random.Generator, kinds: tuple[tuple[str, float], ...]) -> str:
    w = np.array([k[1] for k in kinds], np.float64)
    return kinds[int(rng.choice(len(kinds), p=w / w.sum()))][0]


_TREE_SIZES = {
    "broadleaf": (5, 12, 3, 7),
    "conifer": (7, 20, 2.5, 5),
    "palm": (6, 13, 4, 6),
    "acacia": (4, 7, 5, 9),
    "shrub": (0.6, 1.8, 0.8, 2.5),
    "cactus": (1.5, 4, 0.5, 1.2),
    "birch": (8, 15, 2.5, 4),
    "cypress": (7, 14, 1.2, 2),
}
_EVERGREEN = ("conifer", "cypress", "palm")


def _trees(
    biome: Biome,
    edges: tuple[float, float],
    rng,
    built: list[tuple[float, float, int]],
    max_b: dict[int, float],
) -> list[Prop]:
    """Scattered trees on both sides, off the road, outside houses, and in front of forest walls."""
    n = int(rng.poisson(biome.tree_density * 46))
    out = []
    for _ in range(n):
        side = 1 if rng.random() < 0.5 else -1
        a = rng.uniform(-160, 160)
        off = 4.0 + rng.exponential(14.0)
        if off > max_b.get(side, 1e9):
            continue
        b = (edges[1] if side > 0 else edges[0]) + side * off
        if any(lo - 2 < a < hi + 2 and s == side for lo, hi, s in built):
            continue  # no tree inside a house
        kind = _pick(rng, biome.trees)
        lo_h, hi_h, lo_w, hi_w = _TREE_SIZES[kind]
        h, w = rng.uniform(lo_h, hi_h), rng.uniform(lo_w, hi_w)
        leaf = biome.evergreen if kind in _EVERGREEN else biome.crown
        crown = mix(leaf, (rng.random() * 0.2, rng.random() * 0.25, rng.random() * 0.1), 0.15)
        extra = {"lean": rng.uniform(-0.15, 0.15), "snow": biome.snow, "bare": leaf == BARE_BRANCHES}
        out.append(Prop(kind, a, b, w, h, crown, extra))
    return out


def _forest_wall(biome: Biome, b: float, rng) -> tuple[list, RGB]:
    """A wall of canopy along the road at lateral ``b``: a vertical polygon with a ragged top."""
    conifer = any(k == "conifer" and w > 0.5 for k, w in biome.trees)
    a_knots = np.arange(-250.0, 251.0, 2.5)
    top = rng.uniform(10, 22) + 3.0 * rng.standard_normal(len(a_knots)).cumsum() * 0.15
    if conifer:  # spruce spires: every other knot sticks up by a random amount
        top = top + np.where(np.arange(len(a_knots)) % 2 == 0, rng.uniform(1.0, 4.0, len(a_knots)), -1.5)
    else:  # rounded broadleaf crowns, a few metres across
        top = top + 2.0 * np.abs(np.sin(a_knots / rng.uniform(2.0, 3.5) + rng.uniform(0, 3)))
    top = np.clip(top, 5, 30)
    pts = [(-250.0, b, 0.0)] + [(float(a), b, float(t)) for a, t in zip(a_knots, top)] + [(250.0, b, 0.0)]
    # a closed canopy seen from outside is mostly shade: darker than single trees, mixed with evergreens
    leaf = biome.evergreen if conifer else mix(biome.crown, biome.evergreen, 0.4)
    return pts, mix(leaf, (0.05, 0.1, 0.05), 0.35)


def _buildings(scene: Scene, biome: Biome, edges, rng) -> tuple[list[Prop], list[tuple[float, float, int]]]:
    walls, roofs, roof_kind, (s_lo, s_hi) = BUILDINGS[scene.style.buildings]
    dense = biome.settlement > 0.6 and scene.land_cover == 13
    props, spans = [], []
    for side in (-1, 1):
        if rng.random() > biome.settlement:
            continue
        a = rng.uniform(-170, -140)
        setback = rng.uniform(1.5, 4.0) if dense else rng.uniform(4.0, 14.0)
        while a < 150:
            width = rng.uniform(7, 16) if dense else rng.uniform(7, 13)
            if rng.random() < (0.95 if dense else 0.6):
                storeys = int(rng.integers(s_lo, (s_hi if dense else max(s_lo, min(s_hi, 2))) + 1))
                b = (edges[1] if side > 0 else edges[0]) + side * (setback + rng.uniform(0, 1.5))
                props.append(
                    Prop(
                        "building",
                        a,
                        b,
                        width,
                        storeys * 3.0 + 0.3,
                        hex_rgb(rng.choice(walls)),
                        {
                            "roof": hex_rgb(rng.choice(roofs)),
                            "roof_kind": roof_kind,
                            "side": side,
                            "depth": rng.uniform(7, 12),
                            "storeys": storeys,
                        },
                    )
                )
                spans.append((a, a + width, side))
            a += width + (rng.uniform(0, 2) if dense else rng.uniform(4, 20))
    return props, spans


def _poles_and_bollards(scene: Scene, edges, urban: bool, rng) -> tuple[list[Prop], list[list]]:
    style = scene.style
    props, lines = [], []
    if style.pole and rng.random() < 0.85:
        side = 1 if rng.random() < 0.5 else -1
        b = (edges[1] if side > 0 else edges[0]) + side * rng.uniform(1.0, 2.5)
        gap, h = rng.uniform(32, 48), rng.uniform(7.5, 10.0)
        tops = []
        for a in np.arange(-150 + rng.uniform(0, gap), 150, gap).tolist():
            props.append(
                Prop(
                    "pole",
                    float(a),
                    b,
                    0.28,
                    h,
                    (0.42, 0.32, 0.22) if style.pole == "wood" else (0.62, 0.62, 0.6),
                    {"style": style.pole},
                )
            )
            tops.append((float(a), b, h))
        lines.append(tops)
    if style.bollard and not urban:
        body, band, refl = (hex_rgb(c) for c in BOLLARDS[style.bollard])
        phase = rng.uniform(0, 50)
        for side in (-1, 1):
            b = (edges[1] if side > 0 else edges[0]) + side * 0.9
            for a in np.arange(-150 + phase, 150, 50.0).tolist():
                props.append(Prop("bollard", float(a), b, 0.14, 1.0, body, {"band": band, "refl": refl}))
    return props, lines


def make_layout(scene: Scene, biome: Biome, look, rng: np.random.Generator) -> Layout:
    """Road, markings and props of one location, consistent across its views."""
    style = scene.style
    lane = style.lane_m * rng.uniform(0.93, 1.07)
    centre_b = (-lane / 2 if scene.driving_side == "right" else lane / 2) + rng.uniform(-0.25, 0.25)
    urban = biome.settlement > 0.6
    paved = urban or rng.random() >= style.unpaved
    edges = (centre_b - lane, centre_b + lane)
    buildings, spans = _buildings(scene, biome, edges, rng)
    poles, pole_lines = _poles_and_bollards(scene, edges, urban, rng)
    quads, max_b = _roadside_walls(scene, biome, edges, spans, paved, rng)
    props = buildings + poles + _trees(biome, edges, rng, spans, max_b)
    signs, cross = make_signs(scene, edges, paved, rng)
    for side in (-1, 1):  # a shop front facing the side view, when a house stands there
        near = [p for p in buildings if p.extra["side"] == side and abs(p.a + p.w / 2) < 8 and p.w > 6]
        if near and rng.random() < 0.8:
            signs.append(shop_sign(scene, near[0], rng))
    props += [Prop("sign", s.a, s.b, s.w, s.h, extra={"sign": s}) for s in signs]
    cars = make_cars(scene, centre_b, lane, edges, paved, 0.6 * biome.settlement, rng)
    props += [Prop("car", c["a"], c["b"], c["w"], c["h"], c["colour"], c) for c in cars]
    asphalt = mix(hex_rgb(style.asphalt), (0.6, 0.6, 0.6), rng.uniform(0, 0.25))
    if look.weather == "rain":
        asphalt = mix(asphalt, (0.1, 0.1, 0.12), 0.35)
    surface = asphalt if paved else mix(hex_rgb(style.dirt), biome.soil, 0.3)
    shoulder = mix(surface, biome.soil, 0.5) if paved else surface
    if biome.snow > 0.5:  # packed snow on the road, white shoulders
        surface = mix(surface, (0.82, 0.84, 0.88), 0.25 * biome.snow)
        shoulder = mix(shoulder, (0.92, 0.94, 0.97), 0.8)
    return Layout(centre_b=centre_b, lane_m=lane, paved=paved, surface=surface, shoulder=shoulder,
                  centre_colour=style.centre if paved else "", centre_pattern=style.centre_pattern,
                  edge_colour=style.edge if paved and rng.random() < 0.9 else "",
                  kerb=style.kerb if urban and paved else "", dash_phase=rng.uniform(0, 12), cross_road=cross,
                  props=props, pole_lines=pole_lines, wires=style.wires, heading_deg=scene.heading_deg,
                  quads=quads)


def _roadside_walls(scene: Scene, biome: Biome, edges, spans, paved: bool, rng) -> tuple[list, dict]:
    """Per side without houses: a forest wall, a hedgerow or a guard rail (or nothing). Returns the quads
    and, per side with a forest wall, how far from the road edge scattered trees may stand."""
    style = scene.style
    quads, max_b = [], {}
    for side in (-1, 1):
        edge = edges[1] if side > 0 else edges[0]
        built = any(sd == side for _, _, sd in spans)
        if biome.forest and not built and rng.random() < 0.85:
            off = rng.uniform(4.0, 14.0)
            quads.append(_forest_wall(biome, edge + side * off, rng))
            max_b[side] = off - 0.5
        elif rng.random() < style.hedge and not built:
            hedge = _vquad(-200, 200, edge + side * 1.4, 0.0, rng.uniform(1.4, 2.4))
            quads.append((hedge, mix(biome.evergreen, biome.grass, 0.4)))
        elif paved and rng.random() < style.guardrail:
            a0 = rng.uniform(-120, 0)
            colour = (0.92, 0.92, 0.9) if style.region == "eas" else (0.66, 0.68, 0.7)  # white in Japan
            quads.append((_vquad(a0, a0 + rng.uniform(40, 160), edge + side * 0.6, 0.45, 0.8), colour))
    return quads, max_b


def _vquad(a0: float, a1: float, b: float, y0: float, y1: float) -> list[tuple[float, float, float]]:
    return [(a0, b, y0), (a1, b, y0), (a1, b, y1), (a0, b, y1)]


def _face_shade(look, normal_compass_deg: float) -> float:
    if not look.sun_visible:
        return 0.9
    lam = max(0.0, math.cos(math.radians(normal_compass_deg - look.sun_az_deg))) * math.cos(
        math.radians(max(look.sun_el_deg, 0))
    )
    return 0.7 + 0.45 * lam


def draw_objects(img: Image.Image, cam: Camera, layout: Layout, look) -> None:
    """Props and quads far to near, then overhead wires."""
    draw = ImageDraw.Draw(img)
    half_fov = cam.size / 2.0 / cam.f
    items = []
    for p in layout.props:
        x, z = cam.to_cam(p.a + (p.w / 2 if p.kind == "building" else 0.0), p.b)
        reach = p.w if p.kind != "building" else p.w / 2 + 3
        if p.kind == "building" and (z + reach > NEAR_M):
            items.append((max(z, NEAR_M), p))
        elif z > NEAR_M and abs(x) - reach < z * half_fov + 1:
            items.append((z, p))
    for quad, colour in layout.quads:
        zs = sorted(cam.to_cam(a, b)[1] for a, b, _ in quad)
        items.append((zs[len(zs) // 2] + 50.0, Prop("quad", 0, 0, 0, 0, colour, {"quad": quad})))
    items.sort(key=lambda t: -t[0])
    toward_cam = cam.heading_deg + 180.0
    for _, p in items:
        if p.kind == "quad":
            q = p.extra["quad"]
            poly = cam.polygon(q)
            if poly:
                draw.polygon(poly, fill=_c(p.colour, 0.85))
        elif p.kind == "building":
            draw_building(draw, cam, p, look, _face_shade(look, layout.heading_deg - 90.0 * p.extra["side"]))
        elif p.kind == "sign":
            draw_sign(draw, cam, p.extra["sign"], _face_shade(look, toward_cam))
        elif p.kind == "car":
            draw_car(draw, cam, p.extra, _face_shade(look, toward_cam))
        elif p.kind in ("pole", "bollard"):
            draw_pole_or_bollard(draw, cam, p, _face_shade(look, toward_cam))
        else:
            draw_tree(draw, cam, p, _face_shade(look, toward_cam))
    _draw_wires(draw, cam, layout)


def _draw_wires(draw: ImageDraw.ImageDraw, cam: Camera, layout: Layout) -> None:
    """Sagging-free straight wires between consecutive pole tops, clipped at the near plane."""
    for tops in layout.pole_lines:
        for (a0, b0, h0), (a1, b1, h1) in zip(tops[:-1], tops[1:]):
            x0, z0 = cam.to_cam(a0, b0)
            x1, z1 = cam.to_cam(a1, b1)
            if z0 < NEAR_M and z1 < NEAR_M:
                continue
            if z0 < NEAR_M or z1 < NEAR_M:  # move the end behind the camera onto the near plane
                t = (NEAR_M - z0) / (z1 - z0)
                xn = x0 + t * (x1 - x0)
                if z0 < NEAR_M:
                    x0, z0 = xn, NEAR_M
                else:
                    x1, z1 = xn, NEAR_M
            for k in range(layout.wires):
                y0, y1 = h0 - 0.35 * k - 0.2, h1 - 0.35 * k - 0.2
                u, v = cam.project_xz(np.array([x0, x1]), np.array([z0, z1]), np.array([y0, y1]))
                draw.line(list(zip(u.tolist(), v.tolist())), fill=(30, 30, 32), width=1)
