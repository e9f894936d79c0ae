"""Generated Digit Recognizer and Facial Keypoints data: Kaggle's layouts, determinism, value ranges, meaning."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.errors import KitError

digits = importlib.import_module("competitions.digit-recognizer.synthetic")
faces = importlib.import_module("competitions.facial-keypoints.synthetic")

PIXELS = [f"pixel{i}" for i in range(784)]
KAGGLE_KEYPOINTS = [
    "left_eye_center", "right_eye_center", "left_eye_inner_corner", "left_eye_outer_corner",
    "right_eye_inner_corner", "right_eye_outer_corner", "left_eyebrow_inner_end", "left_eyebrow_outer_end",
    "right_eyebrow_inner_end", "right_eyebrow_outer_end", "nose_tip", "mouth_left_corner", "mouth_right_corner",
    "mouth_center_top_lip", "mouth_center_bottom_lip",
]
FACE_SEED, N_FACES, N_FACE_TEST = 5, 50, 20


@pytest.fixture(scope="module")
def digit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 train / 60 test generated digits with the solution, made once."""
    d = tmp_path_factory.mktemp("digits")
    digits.generate(d / "data", n_train=300, n_test=60, seed=3, solution_path=d / "solution.csv")
    return d


@pytest.fixture(scope="module")
def face_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 train / 20 test generated faces with the solution, made once."""
    d = tmp_path_factory.mktemp("faces")
    faces.generate(d / "data", n_train=N_FACES, n_test=N_FACE_TEST, seed=FACE_SEED, solution_path=d / "solution.csv")
    return d


def _face_images(df: pd.DataFrame, size: int = 96) -> np.ndarray:
    rows = [np.array(s.split(" "), dtype=np.int64) for s in df["Image"]]
    assert all(r.size == size * size for r in rows)
    return np.stack(rows).reshape(len(rows), size, size)


# ---- Digit Recognizer ---------------------------------------------------------------------------------------


def test_digits_layout_and_values(digit_dir: Path):
    d = digit_dir / "data"
    assert sorted(p.name for p in d.iterdir()) == ["sample_submission.csv", "test.csv", "train.csv"]
    train, test = pd.read_csv(d / "train.csv"), pd.read_csv(d / "test.csv")
    sample, sol = pd.read_csv(d / "sample_submission.csv"), pd.read_csv(digit_dir / "solution.csv")
    assert list(train.columns) == ["label", *PIXELS] and list(test.columns) == PIXELS
    assert list(sample.columns) == ["ImageId", "Label"] and list(sol.columns) == ["ImageId", "Label"]
    assert (len(train), len(test), len(sample), len(sol)) == (300, 60, 60, 60)
    assert sample["ImageId"].tolist() == list(range(1, 61)) and (sample["Label"] == 0).all()
    assert sol["ImageId"].tolist() == list(range(1, 61))
    for df in (train[PIXELS], test):
        assert all(pd.api.types.is_integer_dtype(t) for t in df.dtypes)
        assert df.to_numpy().min() == 0 and df.to_numpy().max() <= 255
    # stratified: every digit in about its share on both sides
    for labels, n in ((train["label"], 300), (sol["Label"], 60)):
        counts = labels.value_counts().reindex(range(10), fill_value=0)
        assert counts.min() >= n // 10 - 1 and counts.max() <= n // 10 + 1


def test_digits_look_like_mnist(digit_dir: Path):
    train = pd.read_csv(digit_dir / "data" / "train.csv")
    x = train[PIXELS].to_numpy().reshape(-1, 28, 28).astype(float)
    mass = x.sum(axis=(1, 2))
    cy, cx = x.sum(axis=2) @ np.arange(28) / mass, x.sum(axis=1) @ np.arange(28) / mass
    assert np.abs(cy - 13.5).max() < 1.0 and np.abs(cx - 13.5).max() < 1.0  # centred by centre of mass
    rows, cols = x.max(axis=2) > 0, x.max(axis=1) > 0
    height = 28 - rows.argmax(1) - rows[:, ::-1].argmax(1)
    width = 28 - cols.argmax(1) - cols[:, ::-1].argmax(1)
    assert (np.maximum(height, width) <= 20).all() and (np.maximum(height, width) >= 18).all()  # fit to 20x20
    assert (x.max(axis=(1, 2)) > 200).mean() > 0.9  # white ink on black


def test_digits_labels_match_images(digit_dir: Path):
    """Real digits with their true labels: 1-nearest-neighbour from 300 training images gets most test digits."""
    train = pd.read_csv(digit_dir / "data" / "train.csv")
    test, sol = pd.read_csv(digit_dir / "data" / "test.csv"), pd.read_csv(digit_dir / "solution.csv")
    a, b = train[PIXELS].to_numpy(float), test.to_numpy(float)
    dist = (b**2).sum(1)[:, None] - 2 * b @ a.T + (a**2).sum(1)[None, :]
    pred = train["label"].to_numpy()[dist.argmin(1)]
    assert (pred == sol["Label"].to_numpy()).mean() > 0.85


def test_digits_deterministic_and_seeded(tmp_path: Path):
    for name in ("a", "b"):
        digits.generate(tmp_path / name, n_train=40, n_test=10, seed=1, solution_path=tmp_path / name / "sol.csv")
    digits.generate(tmp_path / "c", n_train=40, n_test=10, seed=2)
    for f in ("train.csv", "test.csv", "sample_submission.csv", "sol.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert (tmp_path / "a" / "train.csv").read_bytes() != (tmp_path / "c" / "train.csv").read_bytes()


def test_digits_beyond_the_real_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """More images than exist: jittered copies, each side from its own originals (no test digit leaks into train)."""
    import sklearn.datasets
    from sklearn.utils import Bunch

    real = sklearn.datasets.load_digits()
    small = Bunch(images=real.images[:100], target=real.target[:100])
    monkeypatch.setattr(sklearn.datasets, "load_digits", lambda: small)
    d = tmp_path / "d"
    digits.generate(d, n_train=150, n_test=50, seed=0, solution_path=d / "sol.csv")
    train, test = pd.read_csv(d / "train.csv"), pd.read_csv(d / "test.csv")
    assert (len(train), len(test)) == (150, 50)
    # identify each output's original by the best correlation over the originals shifted by up to 2 pixels
    frames = np.stack([digits.mnist_frame(im) for im in small.images])
    shifted, origin = [], []
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            shifted.append(np.roll(frames, (dy, dx), axis=(1, 2)).reshape(100, -1))
            origin.append(np.arange(100))
    shifted, origin = np.concatenate(shifted), np.concatenate(origin)
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)
    src = lambda x: origin[(unit(x.astype(float)) @ unit(shifted).T).argmax(1)]
    src_train, src_test = src(train[PIXELS].to_numpy()), src(test.to_numpy())
    assert (small.target[src_train] == train["label"].to_numpy()).all()
    assert (small.target[src_test] == pd.read_csv(d / "sol.csv")["Label"].to_numpy()).all()
    assert not set(src_train) & set(src_test)
    assert len(set(src_train)) + len(set(src_test)) == 100  # every original used


# ---- Facial Keypoints ---------------------------------------------------------------------------------------


def test_face_constants():
    assert faces.KEYPOINTS == KAGGLE_KEYPOINTS
    assert faces.COLUMNS == [f"{k}_{a}" for k in KAGGLE_KEYPOINTS for a in "xy"] and len(faces.COLUMNS) == 30
    assert faces.FOUR == ["left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip"]
    assert len(faces.FLIP_PAIRS) == 6
    for left, right in faces.FLIP_PAIRS:
        assert left.replace("left", "right") == right and left in KAGGLE_KEYPOINTS and right in KAGGLE_KEYPOINTS
    assert faces.SANDBOX == {"n_train": 120, "n_test": 30}
    assert digits.SANDBOX == {"n_train": 300, "n_test": 60}


def test_faces_layout_and_missing_pattern(face_dir: Path):
    d = face_dir / "data"
    assert sorted(p.name for p in d.iterdir()) == ["IdLookupTable.csv", "SampleSubmission.csv", "test.csv",
                                                   "training.csv"]
    train, test = pd.read_csv(d / "training.csv"), pd.read_csv(d / "test.csv")
    assert list(train.columns) == [*faces.COLUMNS, "Image"] and list(test.columns) == ["ImageId", "Image"]
    assert len(train) == N_FACES and test["ImageId"].tolist() == list(range(1, N_FACE_TEST + 1))
    for df in (train, test):
        img = _face_images(df)
        assert img.min() >= 0 and img.max() <= 255 and img.std() > 20
    present = train[faces.COLUMNS].notna()
    four = [c for c in faces.COLUMNS if c.rsplit("_", 1)[0] in faces.FOUR]
    assert len(four) == 8
    complete = present.all(axis=1)
    assert (complete | (present[four].all(axis=1) & (present.sum(axis=1) == 8))).all()  # all 15, or just FOUR
    assert complete.sum() == round(faces.COMPLETE_FRACTION * N_FACES)
    coords = train[faces.COLUMNS].to_numpy()
    assert np.nanmin(coords) >= 0 and np.nanmax(coords) <= 96


def test_faces_lookup_sample_and_solution(face_dir: Path):
    d = face_dir / "data"
    lookup = pd.read_csv(d / "IdLookupTable.csv")
    sample, sol = pd.read_csv(d / "SampleSubmission.csv"), pd.read_csv(face_dir / "solution.csv")
    assert list(lookup.columns) == ["RowId", "ImageId", "FeatureName", "Location"] and lookup["Location"].isna().all()
    assert list(sample.columns) == ["RowId", "Location"] and list(sol.columns) == ["RowId", "Location"]
    assert lookup["RowId"].tolist() == list(range(1, len(lookup) + 1))
    assert sample["RowId"].tolist() == lookup["RowId"].tolist() == sol["RowId"].tolist()
    assert (sample["Location"] == 0).all() and sol["Location"].notna().all()
    assert sorted(lookup["ImageId"].unique()) == list(range(1, N_FACE_TEST + 1))
    assert lookup["ImageId"].is_monotonic_increasing
    four = [c for c in faces.COLUMNS if c.rsplit("_", 1)[0] in faces.FOUR]
    asked = lookup.groupby("ImageId")["FeatureName"].apply(list)
    assert all(names in (faces.COLUMNS, four) for names in asked)
    assert sum(names == faces.COLUMNS for names in asked) == round(faces.COMPLETE_FRACTION * N_FACE_TEST)
    # the solution holds the test faces' true coordinates, feature by feature
    _, kp = faces.faces(N_FACES + N_FACE_TEST, FACE_SEED)
    truth = kp[N_FACES:].reshape(N_FACE_TEST, 30)
    col = lookup["FeatureName"].map({c: i for i, c in enumerate(faces.COLUMNS)}).to_numpy()
    np.testing.assert_allclose(sol["Location"], truth[lookup["ImageId"] - 1, col], atol=1e-4)
    assert sol["Location"].between(0, 96).all()


def test_faces_left_is_the_image_right(face_dir: Path):
    train = pd.read_csv(face_dir / "data" / "training.csv")
    assert train["left_eye_center_x"].mean() > train["right_eye_center_x"].mean() + 20
    assert 60 < train["left_eye_center_x"].mean() < 72 and 24 < train["right_eye_center_x"].mean() < 36
    full = train.dropna()
    assert (full["left_eye_outer_corner_x"] > full["left_eye_inner_corner_x"]).all()
    assert (full["right_eye_inner_corner_x"] > full["right_eye_outer_corner_x"]).all()
    assert (full["mouth_left_corner_x"] > full["mouth_right_corner_x"]).all()
    assert (full["left_eyebrow_outer_end_x"] > full["left_eyebrow_inner_end_x"]).all()
    assert (full["mouth_center_top_lip_y"] < full["mouth_center_bottom_lip_y"]).all()
    assert (full["left_eyebrow_inner_end_y"] < full["left_eye_center_y"]).all()


def test_face_keypoints_sit_on_features():
    """Pupils are dark and the nose tip bright compared with the cheeks, face by face on average."""
    img, kp = faces.faces(200, seed=9)

    def at(pts: np.ndarray) -> np.ndarray:  # gray levels at (n, k, 2) points (x, y)
        rows, cols = (np.clip(np.round(pts[..., i]).astype(int), 0, 95) for i in (1, 0))
        return img[np.arange(len(img))[:, None], rows, cols].astype(float)

    eyes = at(kp[:, [0, 1]]).mean(1)
    nose = at(kp[:, [10]])[:, 0]
    # cheeks: below each eye, level with the nose tip
    cheeks = np.stack([np.stack([kp[:, i, 0], kp[:, 10, 1] - 4], -1) for i in (0, 1)], 1)
    cheek = at(cheeks).mean(1)
    assert (eyes < cheek).mean() > 0.9 and (cheek - eyes).mean() > 30
    assert (nose > cheek).mean() > 0.8
    assert kp.min() >= 0 and kp.max() <= 96


def test_faces_deterministic_and_seeded(tmp_path: Path):
    for name in ("a", "b"):
        faces.generate(tmp_path / name, n_train=8, n_test=4, seed=1, solution_path=tmp_path / name / "sol.csv")
    faces.generate(tmp_path / "c", n_train=8, n_test=4, seed=2)
    for f in ("training.csv", "test.csv", "IdLookupTable.csv", "SampleSubmission.csv", "sol.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert (tmp_path / "a" / "training.csv").read_bytes() != (tmp_path / "c" / "training.csv").read_bytes()
    small = faces.generate(tmp_path / "s", n_train=3, n_test=2, seed=1, size=48)
    assert _face_images(pd.read_csv(small["train"]), 48).shape == (3, 48, 48)


# ---- both -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mod", [digits, faces], ids=["digits", "faces"])
def test_generators_write_atomically(mod, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    written: list[Path] = []
    real = mod.atomic_write_csv

    def spy(path: Path, df: pd.DataFrame) -> Path:
        written.append(Path(path))
        return real(path, df)

    monkeypatch.setattr(mod, "atomic_write_csv", spy)
    paths = mod.generate(tmp_path / "out", n_train=12, n_test=5, seed=0, solution_path=tmp_path / "sol.csv")
    assert sorted(written) == sorted(paths.values())
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(written)  # no temp files left


@pytest.mark.parametrize("mod", [digits, faces], ids=["digits", "faces"])
def test_cli_and_errors(mod, tmp_path: Path, capsys: pytest.CaptureFixture):
    assert mod.main([str(tmp_path / "out"), "--n", "6", "--n-test", "3", "--seed", "4",
                     "--solution", str(tmp_path / "sol.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "sol.csv")) >= 3
    assert mod.main([str(tmp_path / "bad"), "--n", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    with pytest.raises(KitError):
        mod.generate(tmp_path / "bad", n_train=5, n_test=0)
