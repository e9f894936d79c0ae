"""What a competition's images may be augmented with: only transforms that preserve the label.

`Augment` says which symmetries a competition's images have (Planet's tiles: every flip and 90° turn; digits:
none, a turned 6 is a 9, but small rotations and shifts; faces: a horizontal mirror that swaps left and right
keypoints). It is a declaration, read without torch (a competition's folder imports it; `kit download`, `kit
submit` and a missing-data error import no training library); kit.vision.transforms applies it to batches.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.errors import KitError

# dihedral elements, identity first: bit 0 flips W, bit 1 flips H, bit 2 transposes (square images)
TTA_ORDER = [0, 1, 2, 4, 3, 5, 6, 7]


@dataclass(frozen=True)
class Augment:
    """The label-preserving augmentations of a competition's images (strengths are maxima per sample)."""

    flip: bool = False  # mirror left-right
    vflip: bool = False  # mirror top-bottom
    rot90: bool = False  # transpose, so with both flips: all 8 dihedral elements (overhead imagery)
    rotate: float = 0.0  # degrees
    scale: float = 0.0  # relative zoom, e.g. 0.1 = 0.9x .. 1.1x
    translate: float = 0.0  # fraction of the side
    lighting: float = 0.0  # contrast/brightness strength

    def tta_views(self, n: int) -> list[int]:
        """The first `n` dihedral elements these symmetries allow, identity first (n <= 1: identity only)."""
        allowed = [k for k in TTA_ORDER if (not k & 1 or self.flip) and (not k & 2 or self.vflip)
                   and (not k & 4 or self.rot90)]
        return allowed[: max(1, min(len(allowed), n))]

    def check_points(self) -> None:
        """Point targets follow a left-right mirror (pairs swap) and affine moves, not vertical flips or turns."""
        if self.vflip or self.rot90:
            raise KitError("point targets support flip (left-right, with paired keypoints swapped), rotate, scale "
                           "and translate; not vflip or rot90")
