"""Kaggle's Facial Keypoints Detection layout: the 15 keypoints in column order, and which swap in a mirror."""

from __future__ import annotations

SIDE = 96  # images are 96x96 grayscale
KEYPOINTS = [
    "left_eye_center", "right_eye_center", "left_eye_inner_corner", "left_eye_outer_corner",
    "right_eye_inner_corner", "right_eye_outer_corner", "left_eyebrow_inner_end", "left_eyebrow_outer_end",
    "right_eyebrow_inner_end", "right_eyebrow_outer_end", "nose_tip", "mouth_left_corner", "mouth_right_corner",
    "mouth_center_top_lip", "mouth_center_bottom_lip",
]
COLUMNS = [f"{k}_{axis}" for k in KEYPOINTS for axis in ("x", "y")]  # training.csv's 30 target columns
FOUR = ["left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip"]  # what most rows have
# "left" is the subject's left, on the image's right: a left-right mirror swaps these
FLIP_PAIRS = [
    ("left_eye_center", "right_eye_center"),
    ("left_eye_inner_corner", "right_eye_inner_corner"),
    ("left_eye_outer_corner", "right_eye_outer_corner"),
    ("left_eyebrow_inner_end", "right_eyebrow_inner_end"),
    ("left_eyebrow_outer_end", "right_eyebrow_outer_end"),
    ("mouth_left_corner", "mouth_right_corner"),
]
FLIP_INDEX = tuple((KEYPOINTS.index(a), KEYPOINTS.index(b)) for a, b in FLIP_PAIRS)
