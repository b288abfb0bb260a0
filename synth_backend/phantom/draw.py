"""Paint a sampled anatomy (``anatomy.sample_anatomy``) onto a :class:`Canvas`.

Deterministic: the same anatomy dict gives the same noiseless image and labels. Painting order
is the occlusion order (later structures cover earlier ones): body wall, lungs, muscles, bowel,
stomach, spine, liver and its vessels, spleen, kidneys, pancreas, great vessels.
"""

from __future__ import annotations

import numpy as np

from synth_backend.phantom import shapes
from synth_backend.phantom.canvas import Box, Canvas
from synth_backend.phantom.noise import smooth_field


def _sphere_box(canvas: Canvas, center, radius: float) -> Box | None:
    c = np.asarray(center, dtype=float)
    return canvas.box(c - radius, c + radius)


def _points_box(canvas: Canvas, points, radius: float) -> Box | None:
    p = np.asarray(points, dtype=float)
    return canvas.box(p.min(axis=0) - radius, p.max(axis=0) + radius)


def _cavity(canvas: Canvas, box: Box, body: dict) -> np.ndarray:
    """Inside of the abdominal wall muscles (where organs may be), on ``box``."""
    X, Y, _ = canvas.grid(box)
    t = body["fat"] + body["muscle"]
    return shapes.superellipse(X, Y, body["center"], body["a"] - t, body["b"] - t, body["power"])


def _curve(points, radii, per_segment: int = 6) -> tuple[np.ndarray, np.ndarray]:
    pts = shapes.catmull_rom(points, per_segment)
    return pts, shapes.resample_radii(radii, len(pts))


def draw_body(canvas: Canvas, body: dict) -> np.ndarray:
    """Skin, subcutaneous fat, muscle wall and visceral fat; returns the body mask (x, y, z)."""
    box = canvas.full_box()
    X, Y, _ = canvas.grid(box)
    layers = [
        (0.0, "skin"),
        (body["skin"], "subcutaneous_fat"),
        (body["fat"], "muscle"),
        (body["fat"] + body["muscle"], "visceral_fat"),
    ]
    outline = None
    for inset, tissue in layers:
        f = shapes.superellipse(
            X, Y, body["center"], body["a"] - inset, body["b"] - inset, body["power"]
        )
        outline = f if outline is None else outline
        canvas.paint(box, f, tissue, None)
    assert outline is not None  # layers is non-empty
    return np.broadcast_to(outline <= 0, canvas.shape).copy()


def draw_spine_and_muscles(canvas: Canvas, a: dict) -> None:
    sp = a["spine"]
    vb, vr, canal = sp["body_center"], sp["body_radii"], sp["canal_center"]
    for c in a["paraspinal"]["centers"]:
        box = _sphere_box(canvas, [*c, 0.0], max(a["paraspinal"]["radii"]) + 5)
        box = (box[0], box[1], slice(0, canvas.shape[2])) if box else None
        if box:
            X, Y, _ = canvas.grid(box)
            ra, rb = a["paraspinal"]["radii"]
            canvas.paint(box, shapes.superellipse(X, Y, c, ra, rb, 2.0), "muscle", None)
    for ps in a["psoas"]:
        box = _points_box(canvas, [ps["top"], ps["bottom"]], ps["r_bottom"] + 4)
        if box:
            pts = np.array([ps["top"], ps["bottom"]])
            canvas.paint(box, canvas.tube(box, pts, [ps["r_top"], ps["r_bottom"]]), "muscle", None)
    box = canvas.box([vb[0] - 40, canal[1] - 45, -1e4], [vb[0] + 40, vb[1] + vr[1] + 5, 1e4])
    if box is None:
        return
    X, Y, Z = canvas.grid(box)
    vbody = shapes.superellipse(X, Y, vb, vr[0], vr[1], 2.2)
    arch = shapes.superellipse(X, Y, canal, sp["canal_radius"] + 6, sp["canal_radius"] + 5, 2.0)
    spinous = shapes.superellipse(X, Y, [canal[0], canal[1] - 24], 5.0, 16.0, 2.0)
    transverse = shapes.superellipse(X, Y, [canal[0], canal[1] + 2], 34.0, 5.0, 2.5)
    bone = shapes.union(vbody, arch, spinous, transverse)
    canvas.paint(box, bone, "cortical_bone", "vertebrae")
    inner = shapes.superellipse(X, Y, vb, vr[0] - sp["cortex"], vr[1] - sp["cortex"], 2.2)
    canvas.paint(box, inner, "cancellous_bone", "vertebrae")
    discs = shapes.intersect(
        vbody, shapes.periodic_slabs_z(Z, sp["disc_period"], sp["disc_thickness"], sp["disc_phase"])
    )
    canvas.paint(box, discs, "disc", None)
    canvas.paint(
        box,
        shapes.superellipse(X, Y, canal, sp["canal_radius"], sp["canal_radius"], 2.0),
        "csf",
        None,
    )


def draw_gi(canvas: Canvas, a: dict) -> None:
    """Colon, small-bowel loops (label ``bowel``) and stomach, each wall + contents + gas."""
    body = a["body"]
    col = a["colon"]
    tubes = [
        (
            col["points"],
            [col["radius"]] * len(col["points"]),
            col["wall"],
            "stool",
            col["gas_depth"],
            "bowel",
        )
    ]
    for loop in a["small_bowel"]["loops"]:
        tubes.append(
            (
                loop["points"],
                [loop["radius"]] * len(loop["points"]),
                a["small_bowel"]["wall"],
                "gi_fluid",
                loop["gas_depth"],
                "bowel",
            )
        )
    st = a["stomach"]
    tubes.append((st["points"], st["radii"], st["wall"], "gi_fluid", st["gas_depth"], "stomach"))
    for points, radii, wall, content, gas_depth, label in tubes:
        pts, rad = _curve(points, radii)
        box = _points_box(canvas, pts, max(rad) + 4)
        if box is None:
            continue
        cavity = _cavity(canvas, box, body)
        outer = shapes.intersect(canvas.tube(box, pts, rad), cavity)
        canvas.paint(box, outer, "gi_wall", label)
        lumen = shapes.intersect(canvas.tube(box, pts, np.maximum(rad - wall, 1.0)), cavity + wall)
        canvas.paint(box, lumen, content, label)
        if gas_depth > 0:
            # gas floats to the non-dependent (anterior, +y) side of a supine patient
            level = float(np.max(pts[:, 1] + rad)) - wall - gas_depth
            _, Y, _ = canvas.grid(box)
            canvas.paint(box, shapes.intersect(lumen, level - Y), "gi_gas", label)


def draw_liver(canvas: Canvas, a: dict) -> None:
    lv, ves = a["liver"], a["liver_vessels"]
    rl, ll = lv["right_lobe"], lv["left_lobe"]
    lo = np.minimum(
        np.subtract(rl["center"], max(rl["radii"])), np.subtract(ll["center"], max(ll["radii"]))
    )
    hi = np.maximum(np.add(rl["center"], max(rl["radii"])), np.add(ll["center"], max(ll["radii"])))
    box = canvas.box(lo, hi)
    if box is None:
        return
    X, Y, Z = canvas.grid(box)
    right = shapes.ellipsoid(X, Y, Z, rl["center"], rl["radii"], shapes.rotation(*rl["rot"]))
    left = shapes.ellipsoid(X, Y, Z, ll["center"], ll["radii"], shapes.rotation(*ll["rot"]))
    liver = shapes.intersect(
        shapes.smooth_union(right, left, lv["blend"]), _cavity(canvas, box, a["body"])
    )
    canvas.paint(box, liver, "liver", "liver", keep="liver")
    # intrahepatic portal and hepatic veins: bright (>= 160 HU), labelled liver, kept a few mm
    # inside the capsule as in real livers
    field = np.full(liver.shape, canvas.cap, dtype=np.float32)
    for seg in ves["portal"] + ves["hepatic"]:
        pts = np.array([seg[:3], seg[3:6]])
        field = np.minimum(field, canvas.tube(box, pts, seg[6:8]))
    vessels = shapes.intersect(field, liver + ves["capsule_gap"])
    canvas.paint(box, vessels, "hepatic_vessel", "liver")


def draw_spleen(canvas: Canvas, a: dict) -> None:
    sp = a["spleen"]
    box = _sphere_box(canvas, sp["center"], max(sp["radii"]))
    if box is None:
        return
    X, Y, Z = canvas.grid(box)
    rot = shapes.rotation(*sp["rot"])
    r = np.asarray(sp["radii"])
    organ = shapes.ellipsoid(X, Y, Z, sp["center"], r, rot)
    bite_c = np.asarray(sp["center"]) + rot @ [-r[0] * sp["hilum_bite"], 0.0, 0.0]
    bite = shapes.ellipsoid(X, Y, Z, bite_c, [r[0] * 0.8, r[1] * 0.5, r[2] * 0.5], rot)
    spleen = shapes.intersect(shapes.subtract(organ, bite), _cavity(canvas, box, a["body"]))
    canvas.paint(box, spleen, "spleen", "spleen")


def draw_kidneys(canvas: Canvas, a: dict) -> None:
    for side, k in a["kidneys"].items():
        label = f"kidney_{side}"
        box = _sphere_box(canvas, k["center"], max(k["radii"]) + 2)
        if box is None:
            continue
        X, Y, Z = canvas.grid(box)
        rot = shapes.rotation(*k["rot"])
        c, (ra, rb, rc) = np.asarray(k["center"]), k["radii"]
        cortex = shapes.ellipsoid(X, Y, Z, c, k["radii"], rot)
        canvas.paint(box, cortex, "kidney_cortex", label)
        pyramids = []
        for phi in np.deg2rad(np.linspace(-70, 70, 7)):
            pc = c + rot @ [-0.15 * ra + 0.5 * ra * np.cos(phi), 0.0, 0.62 * rc * np.sin(phi)]
            pyramids.append(shapes.ellipsoid(X, Y, Z, pc, [0.28 * ra, 0.45 * rb, 0.16 * rc], rot))
        canvas.paint(
            box, shapes.intersect(shapes.union(*pyramids), cortex + 2.0), "kidney_medulla", label
        )
        sinus = shapes.ellipsoid(
            X, Y, Z, c + rot @ [-0.6 * ra, 0, 0], [0.55 * ra, 0.35 * rb, 0.5 * rc], rot
        )
        canvas.paint(box, sinus, "renal_sinus_fat", None)
    for rv in a["renal_veins"]:
        pts = np.asarray(rv["points"], dtype=float)
        box = _points_box(canvas, pts, rv["radius"] + 3)
        if box is not None:
            canvas.paint(box, canvas.tube(box, pts, [rv["radius"]] * len(pts)), "renal_vein", None)


def draw_pancreas(canvas: Canvas, a: dict) -> None:
    pa = a["pancreas"]
    pts, rad = _curve(pa["points"], pa["radii"], per_segment=8)
    box = _points_box(canvas, pts, max(rad) + pa["lobulation"] + 3)
    if box is None:
        return
    field = canvas.tube(box, pts, rad)
    size = field.shape
    lob = smooth_field(np.random.default_rng(pa["noise_seed"]), size, canvas.spacing, 3.0)
    # lobulated contour: displace the surface by a smooth random field of ~1-2 mm
    field = shapes.intersect(field + pa["lobulation"] * lob, _cavity(canvas, box, a["body"]))
    canvas.paint(box, field, "pancreas", "pancreas")


def draw_great_vessels(canvas: Canvas, a: dict) -> None:
    ao, ivc, pv = a["aorta"], a["ivc"], a["portal_vein"]
    items = [
        ([ao["top"], ao["bottom"]], ao["radius"], "aorta", "aorta"),
        ([ivc["top"], ivc["mid"], ivc["bottom"]], ivc["radius"], "ivc", "postcava"),
        (pv["portal"], pv["portal_radius"], "portal_vein", "portal_vein_and_splenic_vein"),
        (pv["splenic"], pv["splenic_radius"], "portal_vein", "portal_vein_and_splenic_vein"),
        (pv["smv"], pv["smv_radius"], "portal_vein", "portal_vein_and_splenic_vein"),
    ]
    for points, radius, tissue, label in items:
        pts, rad = _curve(points, [radius] * len(points))
        box = _points_box(canvas, pts, radius + 3)
        if box is not None:
            canvas.paint(box, canvas.tube(box, pts, rad), tissue, label)


def draw_anatomy(canvas: Canvas, a: dict) -> np.ndarray:
    """Paint everything; returns the body mask (the ``body`` segmentation)."""
    body_mask = draw_body(canvas, a["body"])
    for lung in a["lungs"]:
        box = _sphere_box(canvas, lung["center"], max(lung["radii"]))
        if box is not None:
            X, Y, Z = canvas.grid(box)
            f = shapes.intersect(
                shapes.ellipsoid(X, Y, Z, lung["center"], lung["radii"]),
                _cavity(canvas, box, a["body"]) + 4.0,
            )
            canvas.paint(box, f, "lung", None)
    draw_gi(canvas, a)
    draw_spine_and_muscles(canvas, a)
    draw_liver(canvas, a)
    draw_spleen(canvas, a)
    draw_kidneys(canvas, a)
    draw_pancreas(canvas, a)
    draw_great_vessels(canvas, a)
    return body_mask
