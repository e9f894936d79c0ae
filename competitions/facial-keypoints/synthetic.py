"""Facial Keypoints Detection format data with drawn faces: `python -m competitions.facial-keypoints.synthetic OUT`.

Kaggle's layout exactly:

    OUT/training.csv        30 keypoint columns (<name>_x, <name>_y in KEYPOINTS order), then Image
    OUT/test.csv            ImageId,Image                       (ImageId from 1)
    OUT/IdLookupTable.csv   RowId,ImageId,FeatureName,Location  (Location empty; RowId from 1)
    OUT/SampleSubmission.csv RowId,Location                     (Location 0)

and, with `--solution PATH`, `RowId,Location` with the true coordinates. Image is size*size space-separated gray
levels 0-255, row by row; coordinates are in pixels with pixel centres at integers (x = column, y = row).
As on Kaggle, about 30 % of the training rows carry all 15 keypoints and the others only FOUR (the other 22
columns empty), and the lookup table asks for all 30 coordinates of about 30 % of the test images and for the
8 of FOUR of the others. "Left" is the subject's left, on the image's right (left_eye_center_x ~ 66).

Each image is a synthetic grayscale face drawn at its keypoints: an egg-shaped face of varying skin tone with
sphere shading, ears, neck and (usually) hair, on a textured background; almond-shaped eyes with sclera, iris,
pupil, catch-light and lash line (eye_center = pupil centre, corners = the almond's ends), arched, tapering
eyebrow strokes (ends = the stroke's ends), a nose with tip highlight, nostrils and base shadow (nose_tip = the
tip), and lips, closed or open (dark gap, sometimes teeth), smiling or not (corners where the lips meet, top and
bottom lip keypoints on the lips' outer edges at the centre); 10 % wear glasses. Variation: head rotation
+-15 degrees, scale +-15 %, translation +-8 px (reduced where a keypoint would leave the image), inter-ocular
distance +-12 %, slight yaw, eye opening, gaze, eye tilt, brow height/arch, smile, mouth opening, lighting
gradient, contrast, blur and sensor noise. Faces are drawn in numpy batches (about 1,000 per second on one core).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from kit.errors import KitError
from kit.io import atomic_write_csv

from .layout import COLUMNS, FLIP_PAIRS, FOUR, KEYPOINTS  # noqa: F401  (re-exported for tests)

COMPLETE_FRACTION = 2140 / 7049  # Kaggle's training rows with all 15 keypoints
REF = 96  # geometry is defined at Kaggle's 96 px and scaled to `size`
CHUNK = 64  # faces drawn per numpy batch (small batches stay in the CPU cache)
DECIMALS = 4

# the local Kaggle sandbox (kit.sandbox.data): a small, fast copy
SANDBOX: dict = {"n_train": 120, "n_test": 30}


def sample_faces(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random face parameters, one value per face, in face units (96 px at scale 1, u right, v down)."""
    u = lambda lo, hi: rng.uniform(lo, hi, n)
    p: dict[str, np.ndarray] = {}
    # pose
    p["scale"], p["rot"] = u(0.85, 1.15), np.deg2rad(u(-15, 15))
    p["tx"], p["ty"] = u(-8, 8), u(-8, 8)
    p["yaw"] = np.clip(rng.normal(0, 1.2, n), -3, 3)  # nose and mouth shift sideways, the outline the other way
    # eyes: opening centres at (+-ih, ev); "left" (subject's) is u > 0, the image's right
    p["ih"] = 18 * u(0.88, 1.12)
    p["ev"] = -10 + rng.normal(0, 1.0, n)
    ew = p["ih"] * u(0.34, 0.41)
    p["ew_l"], p["ew_r"] = ew * u(0.95, 1.05), ew * u(0.95, 1.05)
    eh = u(1.6, 3.8)  # expression: squint ... wide open
    p["eh_l"], p["eh_r"] = eh * u(0.88, 1.12), eh * u(0.88, 1.12)
    p["tilt"] = rng.normal(0.3, 0.6, n)  # outer corners raised by this much
    p["gx"], p["gy"] = u(-1.5, 1.5), u(-0.5, 0.5)  # gaze: the pupil's offset from the opening centre
    p["ir"] = np.minimum(u(2.6, 3.5), 0.6 * ew)
    # eyebrows (inner end towards the nose, outer end beyond the eye's outer corner)
    gap = u(6.5, 10.0)
    for s in "lr":
        p[f"bgap_{s}"] = gap + rng.normal(0, 0.7, n)
        p[f"bin_{s}"], p[f"bout_{s}"] = u(8.5, 12.0), u(9.5, 13.5)
        p[f"bdrop_{s}"] = u(-0.5, 2.5)  # outer end lower than the inner end
    p["arch"], p["bthick"] = u(0.5, 3.0), u(1.6, 3.0)
    # nose and mouth
    p["nv"] = p["ev"] + u(22.5, 28.5)
    p["nw"] = u(3.5, 5.5)
    p["mv"] = p["nv"] + u(11.5, 16)
    p["mw"] = u(12, 17.5)
    p["smile"] = u(-1.5, 3.0)
    p["ut"], p["lt"] = u(1.6, 3.2), u(2.0, 3.8)
    p["open"] = np.where(rng.random(n) < 0.45, u(0.8, 6.0), 0.0)
    p["teeth"] = (p["open"] > 2.0) & (rng.random(n) < 0.6)
    p["bow"] = u(0.0, 0.3)  # Cupid's bow: the upper lip's dip at the centre
    # head and looks
    p["fv"], p["frx"], p["fry"], p["jaw"] = u(2, 6), p["ih"] * u(2.0, 2.3), u(46, 54), u(0.1, 0.3)
    p["skin"] = u(0.3, 0.8)
    p["hair"] = np.where(rng.random(n) < 0.7, rng.beta(1.2, 3.0, n) * 0.8 + 0.03, u(0.3, 0.9))
    p["bald"] = rng.random(n) < 0.12
    p["long"] = rng.random(n) < 0.3
    p["hv"], p["hd"] = p["ev"] - u(19, 28), u(10, 25)  # hairline height and how far hair comes down at the sides
    p["brow"], p["lip"], p["sclera"], p["iris"] = u(0.25, 0.7), u(0.55, 0.85), u(0.6, 0.92), u(0.08, 0.45)
    p["glasses"] = rng.random(n) < 0.1
    p["bg"], p["bg_tex"] = u(0.05, 0.95), u(0.05, 0.35)
    p["light"], p["light_dir"] = u(0.0, 0.35), u(0, 2 * np.pi)
    p["contrast"], p["offset"] = u(0.8, 1.2), u(-0.08, 0.08)
    p["blur"], p["noise"] = u(0.0, 1.0), u(0.005, 0.04)
    return p


def canonical_keypoints(p: dict[str, np.ndarray]) -> np.ndarray:
    """The 15 keypoints in face units, (n, 15, 2) as (u, v), in KEYPOINTS order."""
    ih, ev, tilt, yaw = p["ih"], p["ev"], p["tilt"], p["yaw"]
    ew_l, ew_r = p["ew_l"], p["ew_r"]
    bl, br = ev - p["bgap_l"], ev - p["bgap_r"]
    mu, mv, o = 0.85 * yaw, p["mv"], p["open"]
    pts = [
        (ih + p["gx"], ev + p["gy"]), (-ih + p["gx"], ev + p["gy"]),
        (ih - ew_l, ev + tilt), (ih + ew_l, ev - tilt),
        (-ih + ew_r, ev + tilt), (-ih - ew_r, ev - tilt),
        (ih - p["bin_l"], bl), (ih + p["bout_l"], bl + p["bdrop_l"]),
        (-ih + p["bin_r"], br), (-ih - p["bout_r"], br + p["bdrop_r"]),
        (yaw, p["nv"]),
        (mu + p["mw"], mv - p["smile"]), (mu - p["mw"], mv - p["smile"]),
        (mu, mv - o / 2 - p["ut"] * (1 - p["bow"])), (mu, mv + o / 2 + p["lt"]),
    ]
    return np.stack([np.stack([np.broadcast_to(a, ih.shape), np.broadcast_to(b, ih.shape)], -1) for a, b in pts], 1)


def place(p: dict[str, np.ndarray], size: int, margin: float = 1.0) -> np.ndarray:
    """Image keypoints (n, 15, 2) as (x, y); clips each face's translation so all keypoints stay inside the image."""
    kp = canonical_keypoints(p)
    k = p["scale"] * size / REF
    c, s = np.cos(p["rot"]), np.sin(p["rot"])
    x = k[:, None] * (c[:, None] * kp[..., 0] - s[:, None] * kp[..., 1])
    y = k[:, None] * (s[:, None] * kp[..., 0] + c[:, None] * kp[..., 1])
    centre = (size - 1) / 2
    for key, q in (("tx", x), ("ty", y)):
        lo = margin - centre - q.min(1)
        hi = size - 1 - margin - centre - q.max(1)
        p[key] = np.clip(p[key] * size / REF, lo, hi) * REF / size
    return np.stack([centre + p["tx"][:, None] * size / REF + x, centre + p["ty"][:, None] * size / REF + y], -1)


def _soft(d: np.ndarray, aa: np.ndarray) -> np.ndarray:
    """Coverage 0..1 of a shape from its signed distance `d` (negative inside), edges `aa` wide."""
    return np.clip(0.5 - d / aa, 0.0, 1.0)


def _band(v: np.ndarray, a: np.ndarray, b: np.ndarray, aa: np.ndarray) -> np.ndarray:
    """Coverage 0..1 of the band a < v < b by pixels `aa` tall (zero where the band is empty, b <= a)."""
    half = aa / 2
    return np.clip((np.minimum(b, v + half) - np.maximum(a, v - half)) / aa, 0.0, 1.0)


def _ellipse(u: np.ndarray, v: np.ndarray, cu, cv, ru, rv) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse (face units)."""
    return (np.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2) - 1.0) * np.minimum(ru, rv)


def _segment(u: np.ndarray, v: np.ndarray, u0, v0, u1, v1, arch=0.0) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the segment (u0, v0)-(u1, v1), bowed up by `arch` at its middle, and the position t in 0..1."""
    du, dv = u1 - u0, v1 - v0
    t = np.clip(((u - u0) * du + (v - v0) * dv) / (du * du + dv * dv), 0.0, 1.0)
    return np.hypot(u - u0 - t * du, v - v0 - t * dv + arch * 4 * t * (1 - t)), t


def _mix(img: np.ndarray, mask: np.ndarray, value) -> None:
    """Alpha-blend `value` into `img` where `mask` is set, in place."""
    img += mask * (value - img)


def _smooth_noise(rng: np.random.Generator, n: int, size: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1], (n, size, size): a cells x cells random grid interpolated linearly."""
    grid = rng.random((n, cells, cells), dtype=np.float32)
    pos = np.linspace(0, cells - 1, size)
    lo = np.minimum(pos.astype(int), cells - 2)
    w = (pos - lo).astype(np.float32)
    m = np.zeros((size, cells), np.float32)
    m[np.arange(size), lo] = 1 - w
    m[np.arange(size), lo + 1] = w
    return m @ grid @ m.T


class _Canvas:
    """A batch of images and the similarity transform from each face's units (u, v) to its pixels."""

    def __init__(self, f: dict[str, np.ndarray], size: int, rng: np.random.Generator):
        n = len(f["scale"])
        self.size = size
        self.k = f["scale"] * np.float32(size / REF)  # pixels per face unit
        self.aa = 1.0 / self.k  # one pixel in face units
        centre = (size - 1) / 2
        self.cx, self.cy = centre + f["tx"] * self.k / f["scale"], centre + f["ty"] * self.k / f["scale"]
        self.c, self.s = np.cos(f["rot"]), np.sin(f["rot"])
        self.fine = gaussian_filter(rng.random((n, size, size), dtype=np.float32), (0, 0.7, 0.7))
        self.index = np.arange(n)[:, None, None]

    def uv(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face units of the pixels at `rows` (n, h, 1) and `cols` (n, 1, w)."""
        dx, dy = cols - self.cx, rows - self.cy
        return (self.c * dx + self.s * dy) / self.k, (self.c * dy - self.s * dx) / self.k

    def window(self, u0, u1, v0, v1) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
        """The pixel window holding each face's box u0..u1 x v0..v1 (face units): (index, u, v), one size for all."""
        xs, ys = [], []
        for uu in (u0, u1):
            for vv in (v0, v1):
                xs.append(self.cx + self.k * (self.c * uu - self.s * vv))
                ys.append(self.cy + self.k * (self.s * uu + self.c * vv))
        x0, x1 = np.minimum.reduce(xs), np.maximum.reduce(xs)
        y0, y1 = np.minimum.reduce(ys), np.maximum.reduce(ys)
        h = min(self.size, int(np.ceil((y1 - y0).max())) + 4)
        w = min(self.size, int(np.ceil((x1 - x0).max())) + 4)
        oy = np.clip(np.floor(y0) - 2, 0, self.size - h).astype(np.int64)
        ox = np.clip(np.floor(x0) - 2, 0, self.size - w).astype(np.int64)
        rows, cols = oy + np.arange(h)[None, :, None], ox + np.arange(w)[None, None, :]
        return (self.index, rows, cols), *self.uv(rows.astype(np.float32), cols.astype(np.float32))


def render(p: dict[str, np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the faces of `p` (after `place`), (n, size, size) uint8."""
    n = len(p["scale"])
    f = {k: np.asarray(a, np.float32).reshape(n, 1, 1) for k, a in p.items()}
    cv = _Canvas(f, size, rng)
    aa = cv.aa
    grid = np.arange(size, dtype=np.float32)
    u, v = cv.uv(grid[None, :, None], grid[None, None, :])
    fine = cv.fine

    img = f["bg"] * (1 - f["bg_tex"]) + f["bg_tex"] * (0.6 * _smooth_noise(rng, n, size, 5) + 0.4 * fine)
    skin = f["skin"] * (0.96 + 0.08 * fine)
    fu, fv, frx, fry = -0.5 * f["yaw"], f["fv"], f["frx"], f["fry"]
    # hair behind the head (long hair), neck, ears, face
    hair = f["hair"] * (0.8 + 0.4 * _smooth_noise(rng, n, size, 12))
    back = _soft(_ellipse(u, v, fu, fv - 2, frx * 1.25, fry * 1.12), aa) * _soft(v - fv - 0.7 * fry, aa)
    _mix(img, back * (f["long"] * (1 - f["bald"])), hair)
    neck = _soft(np.abs(u - fu) - 0.5 * frx, aa) * _soft(fv + 0.3 * fry - v, aa)
    _mix(img, neck, skin * 0.72)
    ears = _soft(_ellipse(np.abs(u - fu), v, frx * 0.97, f["ev"] + 9, 4.0, 8.5), aa)
    _mix(img, ears, skin * 0.85)
    below = np.clip((v - fv) / fry, 0, 1)
    face_r = np.sqrt(((u - fu) / (frx * (1 - f["jaw"] * below * below))) ** 2 + ((v - fv) / fry) ** 2)
    _mix(img, _soft((face_r - 1) * frx, aa), skin * (1 - 0.3 * np.clip(face_r, 0, 1) ** 4))
    # hair on the head: above a hairline that comes down at the temples
    side = np.clip((np.abs(u - fu) / frx - 0.88) / 0.12, 0, 1)
    hairline = f["hv"] + 4 * ((u - fu) / frx) ** 2 + f["hd"] * side
    front = _soft(_ellipse(u, v, fu, fv - 1, frx * 1.1, fry * 1.08), aa) * _soft(v - hairline, aa * 1.5)
    _mix(img, front * (1 - f["bald"]), hair)

    for sgn in (1.0, -1.0):  # the subject's left eye (u > 0, the image's right), then the right one
        _eye(img, cv, f, sgn)
    _nose_mouth(img, cv, f)

    # lighting gradient, contrast, blur, noise
    ang = f["light_dir"]
    xn, yn = grid[None, None, :] / (size - 1) * 2 - 1, grid[None, :, None] / (size - 1) * 2 - 1
    img *= 1 + f["light"] * (np.cos(ang) * xn + np.sin(ang) * yn)
    img = img * f["contrast"] + f["offset"]
    img += f["blur"] * (gaussian_filter(img, (0, size / REF, size / REF)) - img)
    img += f["noise"] * rng.standard_normal(img.shape, dtype=np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _eye(img: np.ndarray, cv: _Canvas, f: dict[str, np.ndarray], sgn: float) -> None:
    """One side's eye socket, eyebrow, eye and glasses rim (sgn 1: the subject's left, u > 0), in place."""
    s = "l" if sgn > 0 else "r"
    ev, ih, ew, eh = f["ev"], f["ih"], f[f"ew_{s}"], f[f"eh_{s}"]
    eo = sgn * ih  # the eye opening's centre
    b0u, b0v = eo - sgn * f[f"bin_{s}"], ev - f[f"bgap_{s}"]
    b1u, b1v = eo + sgn * f[f"bout_{s}"], b0v + f[f"bdrop_{s}"]
    reach = ih + np.maximum(np.maximum(f[f"bout_{s}"], 1.5 * ew), ew + 4.7) + 3
    top = np.minimum(b0v, b1v) - f["arch"] - f["bthick"] - 3
    idx, u, v = cv.window(np.minimum(0, sgn * reach), np.maximum(0, sgn * reach), top, ev + eh + 10)
    aa, sub, fine = cv.aa, img[idx], cv.fine[idx]
    skin = f["skin"] * (0.96 + 0.08 * fine)
    _mix(sub, 0.15 * _soft(_ellipse(u, v, eo, ev - 1, ew * 1.5, eh + 4.5), 3 * aa), sub * 0.6)  # socket shadow

    # eyebrow: an arched stroke tapering from the inner to the outer end
    dist, t = _segment(u, v, b0u, b0v, b1u, b1v, f["arch"])
    _mix(sub, _soft(dist - f["bthick"] * (1 - 0.45 * t) / 2, aa), skin * f["brow"] * (0.85 + 0.3 * fine))

    # eye: almond opening (corners at te = -1 inner, +1 outer), sclera, iris, pupil, catch-light, lash line
    te = (u - eo) * sgn / ew
    mid = ev - f["tilt"] * te
    g = 1 - te * te
    upper, lower = mid - 1.1 * eh * g, mid + 0.85 * eh * g
    opening = _band(v, upper, lower, aa)
    _mix(sub, opening, f["sclera"] * (0.6 + 0.5 * f["skin"]))
    iu, iv = eo + f["gx"], ev + f["gy"]
    ri = np.hypot(u - iu, v - iv)
    _mix(sub, opening * _soft(ri - f["ir"], aa), f["iris"] * (0.8 + 0.4 * fine))
    _mix(sub, opening * _soft(ri - 0.45 * f["ir"], aa), 0.03)
    _mix(sub, opening * _soft(np.hypot(u - iu + 0.8, v - iv + 0.9) - 0.6, aa), 0.95)
    inside = _soft(np.abs(te) - 1, 2 * aa / ew)
    _mix(sub, inside * _band(v, upper - 0.9, upper + 0.3, aa), 0.08)  # lashes along the upper lid
    _mix(sub, 0.35 * inside * _band(v, lower - 0.1, lower + 0.7, aa), skin * 0.5)

    # glasses: a rim around the eye and half the bridge
    rim = _soft(np.abs(_ellipse(u, v, eo, ev + 0.5, ew + 4.0, 7.0)) - 0.7, aa)
    inner = ih - ew - 4.0  # the rim's inner edge, |u|
    bridge = _band(v, ev - 4.1, ev - 2.9, aa) * _band(u * sgn, 0, inner + 0.5, aa)
    _mix(sub, np.maximum(rim, bridge) * f["glasses"], 0.1)
    img[idx] = sub


def _nose_mouth(img: np.ndarray, cv: _Canvas, f: dict[str, np.ndarray]) -> None:
    """Nose (bridge shading, base shadow, nostrils, tip highlight), nasolabial folds and mouth, in place."""
    nu, nv, nw = f["yaw"], f["nv"], f["nw"]
    mu, mv, mw, o = 0.85 * f["yaw"], f["mv"], f["mw"], f["open"]
    reach = np.maximum(nw + 4.5, mw + 4.0)
    chin = mv + o / 2 + f["lt"] + 3  # centre of the shadow under the lower lip
    idx, u, v = cv.window(np.minimum(nu, mu) - reach, np.maximum(nu, mu) + reach, f["ev"] + 2, chin + 4)
    aa, sub, fine = cv.aa, img[idx], cv.fine[idx]
    skin = f["skin"] * (0.96 + 0.08 * fine)

    dark_side = np.where(np.cos(f["light_dir"]) > 0, np.float32(-1), np.float32(1))
    bridge = _soft(np.abs(u - nu - dark_side * nw * 0.8) - 1.2, 2 * aa) * _band(v, f["ev"] + 4, nv, aa)
    _mix(sub, 0.18 * bridge, sub * 0.5)
    _mix(sub, 0.35 * _soft(_ellipse(u, v, nu, nv + 3.0, nw + 1.8, 1.9), 2 * aa), sub * 0.5)
    nostrils = _soft(_ellipse(np.abs(u - nu), v, nw * 0.55, nv + 2.8, 1.5, 0.9), aa)
    _mix(sub, nostrils, skin * 0.3)
    _mix(sub, 0.4 * _soft(_ellipse(u, v, nu, nv, 2.6, 2.0), 2 * aa), np.minimum(skin * 1.35 + 0.1, 1.0))
    # nasolabial folds from the nose's wings towards the mouth corners
    side = np.where(u > nu, np.float32(1), np.float32(-1))
    dist, _ = _segment(u, v, nu + side * (nw + 2.5), nv + 1.0, mu + side * (mw + 2.5), mv + 1.0)
    _mix(sub, 0.12 * _soft(dist - 0.6, 2 * aa), sub * 0.5)

    # mouth: lips between curves that meet at the corners (u = mu +- mw), open (dark, maybe teeth) or closed
    q = ((u - mu) / mw) ** 2
    g = 1 - q
    h = np.sqrt(np.clip(g, 0, 1))
    line = mv - f["smile"] * q
    ui, li = line - o / 2 * g, line + o / 2 * g
    uo = ui - f["ut"] * h * (1 - f["bow"] / (1 + ((u - mu) / 3) ** 2))
    lo = li + f["lt"] * h
    lips = f["lip"] * skin
    _mix(sub, _band(v, uo, ui, aa), lips)
    _mix(sub, _band(v, li, lo, aa), np.minimum(lips * 1.12, 1.0))
    gap = _band(v, ui, li, aa)
    _mix(sub, gap, 0.06)
    _mix(sub, gap * f["teeth"] * _band(v, ui, ui + 0.45 * o, aa) * _soft(np.abs(u - mu) - 0.6 * mw, aa), 0.8)
    _mix(sub, 0.6 * _band(v, line - 0.45, line + 0.45, aa) * _soft(np.abs(u - mu) - mw, aa), 0.1)  # lips meet
    _mix(sub, 0.15 * _soft(_ellipse(u, v, mu, chin, 6, 2), 3 * aa), sub * 0.5)  # shadow under the lower lip
    img[idx] = sub


def faces(n: int, seed: int = 0, size: int = REF) -> tuple[np.ndarray, np.ndarray]:
    """`n` faces: images (n, size, size) uint8 and keypoints (n, 15, 2) as (x, y), rounded to DECIMALS."""
    rng = np.random.default_rng(seed)
    p = sample_faces(n, rng)
    kp = np.round(place(p, size), DECIMALS)
    images = np.empty((n, size, size), np.uint8)
    for a in range(0, n, CHUNK):
        images[a:a + CHUNK] = render({k: v[a:a + CHUNK] for k, v in p.items()}, size, rng)
    return images, kp


def image_strings(images: np.ndarray) -> list[str]:
    """Kaggle's Image column: each image's gray levels, row by row, separated by single spaces."""
    lut = np.zeros((256, 4), np.uint8)
    for i in range(256):
        b = f"{i} ".encode()
        lut[i, :len(b)] = np.frombuffer(b, np.uint8)
    flat = images.reshape(len(images), -1)
    out = []
    for a in range(0, len(flat), 512):
        codes = lut[flat[a:a + 512]].reshape(min(512, len(flat) - a), -1)
        out += [row[row != 0].tobytes().decode()[:-1] for row in codes]
    return out


def _complete(n: int, rng: np.random.Generator) -> np.ndarray:
    """Which of n rows carry all 15 keypoints: COMPLETE_FRACTION of them, at random."""
    return rng.permutation(n) < round(COMPLETE_FRACTION * n)


def generate(out_dir: Path, n_train: int = 2000, n_test: int = 500, seed: int = 0,
             solution_path: Path | None = None, size: int = REF) -> dict[str, Path]:
    """Write training.csv, test.csv, IdLookupTable.csv and SampleSubmission.csv (+ the solution if asked)."""
    if n_train < 1 or n_test < 1:
        raise KitError(f"--n and --n-test must be at least 1 (got {n_train} and {n_test})")
    if size < 32:
        raise KitError(f"--size must be at least 32 pixels (got {size})")
    out_dir = Path(out_dir)
    images, kp = faces(n_train + n_test, seed, size)
    rng = np.random.default_rng([seed, 1])
    coords = kp.reshape(len(kp), -1)  # COLUMNS order: x, y per keypoint
    four_cols = np.array([c.rsplit("_", 1)[0] in FOUR for c in COLUMNS])

    train = pd.DataFrame(coords[:n_train], columns=COLUMNS)
    train.loc[~_complete(n_train, rng), [c for c, keep in zip(COLUMNS, four_cols, strict=True) if not keep]] = np.nan
    train["Image"] = image_strings(images[:n_train])
    test = pd.DataFrame({"ImageId": np.arange(1, n_test + 1), "Image": image_strings(images[n_train:])})

    full = _complete(n_test, rng)
    asked = np.where(full[:, None], True, four_cols[None, :])  # (n_test, 30)
    img_i, col_i = np.nonzero(asked)  # row-major: by image, then in COLUMNS order
    lookup = pd.DataFrame({"RowId": np.arange(1, len(img_i) + 1), "ImageId": img_i + 1,
                           "FeatureName": np.array(COLUMNS)[col_i], "Location": np.nan})
    paths = {"train": out_dir / "training.csv", "test": out_dir / "test.csv",
             "lookup": out_dir / "IdLookupTable.csv", "sample": out_dir / "SampleSubmission.csv"}
    if solution_path is not None:
        sol = pd.DataFrame({"RowId": lookup["RowId"], "Location": coords[n_train:][img_i, col_i]})
        paths["solution"] = atomic_write_csv(Path(solution_path), sol)
    atomic_write_csv(paths["sample"], pd.DataFrame({"RowId": lookup["RowId"], "Location": 0}))
    atomic_write_csv(paths["lookup"], lookup)
    atomic_write_csv(paths["test"], test)
    atomic_write_csv(paths["train"], train)
    return paths


def _main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m competitions.facial-keypoints.synthetic",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write the Kaggle-layout files into")
    ap.add_argument("--n", type=int, default=2000, help="training images (default 2000)")
    ap.add_argument("--n-test", type=int, default=500, help="test images (default 500)")
    ap.add_argument("--size", type=int, default=REF, help="image side in pixels (Kaggle: 96)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--solution", type=Path, default=None, help="also write the true test coordinates to this CSV")
    a = ap.parse_args(argv)
    generate(a.out, a.n, a.n_test, a.seed, a.solution, a.size)
    print(f"wrote {a.n} train + {a.n_test} test faces ({a.size} px) to {a.out}/")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
