"""Per-patient anatomy: sample sizes, positions and rotations (mm, RAS) from a generator.

``sample_anatomy(rng)`` returns a plain nested dict (JSON-ready: the case's provenance) and
``draw.draw_anatomy`` paints it deterministically, so replaying the stored dict reproduces the
phantom. Drawing frame: x to the patient's Left, y Anterior, z Superior (LAS; the written
affine maps it to RAS+ by negating x); x = 0 is the midline,
the liver dome sits near z = +100 mm. Typical adult values: liver ~1.3-1.9 L, spleen ~150-300
mL, kidneys ~110-170 mL and 10-12 cm long, pancreas ~60-90 mL, aorta ~20-25 mm wide.
"""

from __future__ import annotations

import numpy as np

from synth_backend.phantom import shapes


def _r(x) -> list[float]:
    return [round(float(v), 2) for v in np.ravel(x)]


def _random_unit_perp(rng: np.random.Generator, d: np.ndarray) -> np.ndarray:
    v = rng.normal(size=3)
    v -= v.dot(d) * d
    return v / np.linalg.norm(v)


def _vessel_tree(
    rng: np.random.Generator,
    root: np.ndarray,
    direction: np.ndarray,
    length: float,
    radius: float,
    depth: int,
) -> list[list[float]]:
    """Binary branching tree of tube segments [x0, y0, z0, x1, y1, z1, r0, r1] (mm)."""
    segments: list[list[float]] = []
    stack = [(root, direction / np.linalg.norm(direction), length, radius, depth)]
    while stack:
        p, d, length_, r, level = stack.pop()
        end = p + d * length_
        r_end = r * 0.72
        segments.append(_r([*p, *end, r, r_end]))
        if level == 0:
            continue
        for sign in (1.0, -1.0):
            angle = np.deg2rad(rng.uniform(25.0, 45.0)) * sign
            axis = _random_unit_perp(rng, d)
            # rotate d by angle in the plane (d, axis)
            child = np.cos(angle) * d + np.sin(angle) * axis
            stack.append(
                (
                    end,
                    child / np.linalg.norm(child),
                    length_ * rng.uniform(0.65, 0.85),
                    r_end,
                    level - 1,
                )
            )
    return segments


def _random_walk(
    rng: np.random.Generator, start: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int, step: float
) -> list[list[float]]:
    """Smoothly turning walk of ``n`` points kept inside the box [lo, hi] (bowel loops)."""
    d = rng.normal(size=3)
    d /= np.linalg.norm(d)
    p = np.clip(start, lo, hi)
    pts = [p]
    for _ in range(n - 1):
        d = d + rng.normal(scale=0.7, size=3)
        d /= np.linalg.norm(d)
        nxt = p + d * step
        bounce = (nxt < lo) | (nxt > hi)
        d[bounce] *= -1.0
        p = np.clip(p + d * step, lo, hi)
        pts.append(p)
    return [_r(q) for q in pts]


def sample_anatomy(rng: np.random.Generator) -> dict:
    """Draw one patient's anatomy (all lengths in mm, angles in degrees)."""
    u = rng.uniform
    a: dict = {}
    # body outline: superellipse prism, patient supine (flatter back)
    body: dict = {
        "center": _r([0.0, u(-5, 8)]),
        "a": u(140, 165),
        "b": u(100, 120),
        "power": u(2.3, 2.8),
        "skin": 2.0,
        "fat": u(12, 32),
        "muscle": u(8, 13),
    }
    a["body"] = body
    inner_a = body["a"] - body["fat"] - body["muscle"]
    inner_b = body["b"] - body["fat"] - body["muscle"]
    back = body["center"][1] - body["b"]
    front = body["center"][1] + inner_b  # inner anterior wall of the cavity

    vb = np.array([u(-4, 4), back + body["fat"] + u(58, 66)])
    vb_r = np.array([u(20, 24), u(15, 18)])
    canal = np.array([vb[0], vb[1] - vb_r[1] - 10.0])
    a["spine"] = {
        "body_center": _r(vb),
        "body_radii": _r(vb_r),
        "canal_center": _r(canal),
        "canal_radius": 8.0,
        "disc_period": u(30, 34),
        "disc_thickness": u(8, 10),
        "disc_phase": u(0, 30),
        "cortex": 2.0,
    }
    a["paraspinal"] = {
        "centers": [
            _r([canal[0] - u(30, 36), canal[1] - u(16, 22)]),
            _r([canal[0] + u(30, 36), canal[1] - u(16, 22)]),
        ],
        "radii": _r([u(24, 30), u(20, 26)]),
    }
    a["psoas"] = [
        {
            "top": _r([vb[0] + s * (vb_r[0] + 10), vb[1] + 2, 40.0]),
            "bottom": _r([vb[0] + s * (vb_r[0] + 18), vb[1] + 10, -130.0]),
            "r_top": 6.0,
            "r_bottom": u(18, 24),
        }
        for s in (-1.0, 1.0)
    ]

    aorta_r = u(10, 12.5)
    aorta = np.array([vb[0] + u(12, 20), vb[1] + vb_r[1] + aorta_r + u(2, 5)])
    a["aorta"] = {
        "top": _r([*aorta, 130.0]),
        "bottom": _r([aorta[0] + u(-3, 3), aorta[1] + u(0, 6), -130.0]),
        "radius": aorta_r,
    }
    ivc = np.array([vb[0] - u(22, 28), vb[1] + vb_r[1] + u(6, 12)])
    dome = 100.0 + u(-8, 8)
    a["ivc"] = {
        "top": _r([ivc[0] - 5, ivc[1] + 8, dome - 5]),
        "mid": _r([*ivc, 20.0]),
        "bottom": _r([ivc[0] + u(-3, 3), ivc[1], -130.0]),
        "radius": u(10, 12),
    }

    # liver: right lobe + left lobe, smooth union, clipped to the abdominal cavity
    rl = {"radii": _r([u(72, 82), u(80, 92), u(74, 86)])}
    rl["center"] = _r([u(-80, -68), vb[1] + u(28, 40), dome - rl["radii"][2]])
    rl["rot"] = _r([u(-5, 5), u(-5, 5), u(-8, 8)])
    ll = {
        "radii": _r([u(58, 70), u(32, 40), u(32, 40)]),
        "center": _r([u(5, 22), rl["center"][1] + u(35, 45), dome - u(32, 40)]),
        "rot": _r([0.0, 0.0, u(-20, -5)]),
    }
    a["liver"] = {"right_lobe": rl, "left_lobe": ll, "blend": 20.0, "dome": dome}
    rc, rr = np.array(rl["center"]), np.array(rl["radii"])
    hilum = rc + np.array([0.5 * rr[0], -0.05 * rr[1], -0.3 * rr[2]])
    portal_tree = _vessel_tree(
        rng, hilum, rc + [-20, 0, 15] - hilum, u(30, 38), u(5.5, 7), 3
    ) + _vessel_tree(rng, hilum, np.array(ll["center"]) - hilum, u(28, 34), u(4.5, 6), 3)
    entry = np.array([ivc[0] - 3, ivc[1] + 8, dome - 22])
    hepatic_tree: list[list[float]] = []
    for direction in ([-0.8, 0.35, -0.45], [-0.15, 0.9, -0.4], [0.55, 0.75, -0.3]):
        hepatic_tree += _vessel_tree(rng, entry, np.array(direction), u(38, 48), u(5, 6.5), 2)
    a["liver_vessels"] = {
        "hilum": _r(hilum),
        "portal": portal_tree,
        "hepatic": hepatic_tree,
        "capsule_gap": 4.0,
    }

    spleen_radii = np.array([u(22, 28), u(45, 56), u(40, 50)])
    spleen_c = np.array([u(88, 100), vb[1] + u(-10, 8), dome - u(55, 70)])
    spleen_rot = [0.0, 0.0, u(-45, -30)]
    a["spleen"] = {
        "center": _r(spleen_c),
        "radii": _r(spleen_radii),
        "rot": _r(spleen_rot),
        "hilum_bite": 1.3,
    }
    spleen_hilum = spleen_c + shapes.rotation(*spleen_rot) @ [-spleen_radii[0], 0, 0]

    kidneys = {}
    z_left = u(-30, -15)
    for side, s, z in (("left", 1.0, z_left), ("right", -1.0, z_left - u(8, 20))):
        c = np.array([vb[0] + s * u(62, 72), vb[1] + u(-8, 6), z])
        radii = np.array([u(25, 30), u(22, 27), u(50, 58)])
        rz = -u(22, 35) if s > 0 else 180.0 + u(22, 35)
        # tilt about y: upper poles medial (the sign works for both sides after rz)
        rot = [0.0, -u(4, 12), rz]
        kidneys[side] = {"center": _r(c), "radii": _r(radii), "rot": _r(rot)}
        hil = c + shapes.rotation(*rot) @ [-radii[0], 0, 0]
        kidneys[side]["hilum"] = _r(hil)
    a["kidneys"] = kidneys
    aorta_front = [aorta[0], aorta[1] + aorta_r + 7.0]
    a["renal_veins"] = [
        {
            "points": [
                kidneys["left"]["hilum"],
                _r([*aorta_front, z_left + 3]),
                _r([*ivc, z_left]),
            ],
            "radius": u(4, 5.5),
        },
        {
            "points": [kidneys["right"]["hilum"], _r([*ivc, kidneys["right"]["center"][2] + 5])],
            "radius": u(4, 5.5),
        },
    ]

    zp = z_left + u(22, 35)
    neck_y = aorta[1] + u(38, 46)
    pancreas_pts = [
        [vb[0] - u(35, 45), aorta[1] + u(25, 35), zp - u(15, 25)],
        [vb[0] - 8, neck_y, zp - 3],
        [vb[0] + 30, aorta[1] + u(28, 36), zp + 3],
        [vb[0] + 62, kidneys["left"]["center"][1] + u(28, 36), zp + 10],
        [spleen_hilum[0] - 18, spleen_hilum[1] + 8, zp + u(12, 22)],
    ]
    pancreas_r = [u(16, 20), u(10, 12), u(11, 13), u(10, 12), u(7, 9)]
    a["pancreas"] = {
        "points": [_r(p) for p in pancreas_pts],
        "radii": _r(pancreas_r),
        "lobulation": u(1.0, 2.0),
        "noise_seed": int(rng.integers(2**31)),
    }
    confluence = np.array([vb[0] - 10, neck_y - 14, zp - 3])
    splenic = [confluence] + [
        np.array(p) + [0, -(r + 4.0), 2.0]
        for p, r in zip(pancreas_pts[2:4], pancreas_r[2:4], strict=True)
    ]
    splenic.append(spleen_hilum)
    a["portal_vein"] = {
        "portal": [_r(confluence), _r(confluence + [-15, -2, 20]), _r(hilum)],
        "portal_radius": u(6, 7.5),
        "splenic": [_r(p) for p in splenic],
        "splenic_radius": u(4, 5),
        "smv": [_r(confluence), _r(confluence + [3, 6, -45]), _r(confluence + [0, 12, -150])],
        "smv_radius": u(4.5, 6),
    }

    stomach_pts = [
        [vb[0] + u(45, 60), vb[1] + u(40, 55), dome - u(15, 25)],
        [vb[0] + u(55, 70), vb[1] + u(80, 92), dome - u(55, 65)],
        [vb[0] + u(30, 45), vb[1] + u(95, 108), dome - u(90, 100)],
        [vb[0] - u(0, 10), vb[1] + u(92, 102), dome - u(98, 106)],
        [vb[0] - u(25, 35), vb[1] + u(80, 90), dome - u(92, 100)],
    ]
    a["stomach"] = {
        "points": [_r(p) for p in stomach_pts],
        "radii": _r([u(30, 38), u(26, 32), u(20, 26), u(15, 19), u(9, 11)]),
        "wall": u(3.5, 5.0),
        "gas_depth": u(8, 30),
    }

    colon_r = u(17, 23)
    xa = inner_a - u(22, 32)
    flex_z = u(-55, -35)
    colon = [
        [-xa, vb[1] + u(25, 40), -135.0],
        [-xa, vb[1] + u(30, 45), flex_z],
        [-55.0, front - u(28, 36), flex_z - u(10, 25)],
        [0.0, front - u(22, 30), u(-85, -65)],
        [55.0, front - u(28, 36), flex_z],
        [xa, vb[1] + u(30, 40), u(-35, -20)],
        [xa + u(-5, 5), vb[1] + u(10, 25), -135.0],
    ]
    a["colon"] = {
        "points": [_r(p) for p in colon],
        "radius": colon_r,
        "wall": 3.0,
        "gas_depth": u(5, 20),
    }
    lo = np.array([-inner_a + 50, vb[1] + 30, -135.0])
    hi = np.array([inner_a - 50, front - 20, -60.0])
    loops = [
        {
            "points": _random_walk(
                rng, rng.uniform(lo, hi), lo, hi, int(rng.integers(6, 10)), 24.0
            ),
            "radius": u(10, 13),
            "gas_depth": u(0, 12) if rng.random() < 0.4 else 0.0,
        }
        for _ in range(int(rng.integers(4, 8)))
    ]
    a["small_bowel"] = {"loops": loops, "wall": 2.5}

    a["lungs"] = [
        {
            "center": _r([s * u(85, 100), vb[1] + u(25, 40), dome + u(105, 125)]),
            "radii": _r([u(75, 90), u(85, 100), 130.0]),
        }
        for s in (-1.0, 1.0)
    ]
    return a
