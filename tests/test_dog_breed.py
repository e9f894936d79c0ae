"""Dog Breed Identification: the generator's Kaggle layout, `kit train` end to end on generated photos with a
corrupt and a CMYK JPEG, `kit predict` byte for byte, the temperature decoder, the sandbox's log loss, bad input."""

from __future__ import annotations

import importlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kit import decoders, metrics, registry, tasks
from kit.commands.predict import main as predict_main
from kit.commands.train import main as train_main
from kit.sandbox.competitions import score_submission
from kit.sandbox.data import CompetitionMeta, make_competition, sandbox_competitions
from kit.vision import decode_image

NAME = "dog-breed-identification"
COMP = registry.get(NAME)
synth = importlib.import_module(f"competitions.{NAME}.synthetic")
TINY = ["--folds", "2", "--quiet", *(f"--set={kv}" for kv in ("preset=cpu", "epochs=1", "size=32", "width=8",
                                                              "bs=16", "tta=2"))]


@pytest.fixture(scope="module")
def dog_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 train / 10 test generated photos of 4 breeds around 40 px, made once per module."""
    d = tmp_path_factory.mktemp("dogs")
    synth.generate(d / "data", n_train=32, n_test=10, seed=3, size=40, solution_path=d / "solution.csv",
                   n_breeds=4, workers=1)
    return d


@pytest.fixture
def dog_dir(dog_source: Path, tmp_path: Path) -> Path:
    """A private copy of the generated folder that a test may damage."""
    d = tmp_path / "dogs"
    shutil.copytree(dog_source / "data", d)
    return d


def _nothing_written() -> bool:
    return not any(p.is_file() for root in ("submissions", "runs") for p in Path(root).rglob("*"))


def test_generator_writes_kaggle_layout_deterministically(dog_source: Path, tmp_path: Path):
    d = dog_source / "data"
    labels, sample = pd.read_csv(d / "labels.csv"), pd.read_csv(d / "sample_submission.csv")
    names = synth.breeds(4)
    assert list(labels.columns) == ["id", "breed"] and set(labels["breed"]) == set(names)
    assert list(sample.columns) == ["id", *sorted(names)] and np.allclose(sample[names].to_numpy(), 0.25)
    for ids in (labels["id"], sample["id"]):
        assert ids.tolist() == sorted(ids) and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert sorted(p.stem for p in (d / "train").glob("*.jpg")) == labels["id"].tolist()
    assert sorted(p.stem for p in (d / "test").glob("*.jpg")) == sample["id"].tolist()
    sol = pd.read_csv(dog_source / "solution.csv")
    assert list(sol.columns) == list(sample.columns) and sol["id"].tolist() == sample["id"].tolist()
    assert (sol[names].sum(axis=1) == 1).all()
    sizes = {Image.open(p).size for p in (d / "train").glob("*.jpg")}
    assert len(sizes) > 10 and all(28 <= min(s) and max(s) <= 53 for s in sizes)  # 0.75 .. 1.3 x 40 px
    again = tmp_path / "again"
    synth.generate(again, n_train=32, n_test=10, seed=3, size=40, n_breeds=4, workers=1)
    for f in ("labels.csv", "sample_submission.csv", f"train/{labels['id'][5]}.jpg"):
        assert (again / f).read_bytes() == (d / f).read_bytes()


def test_train_end_to_end_with_a_corrupt_and_a_cmyk_jpeg(dog_dir: Path, workdir: Path, capsys):
    labels = pd.read_csv(dog_dir / "labels.csv")
    cmyk, corrupt = (dog_dir / "train" / f"{labels['id'][i]}.jpg" for i in (0, 1))
    rgb = decode_image(cmyk, 32).astype(int)
    Image.open(cmyk).convert("RGB").convert("CMYK").save(cmyk, format="JPEG", quality=95)
    assert Image.open(cmyk).mode == "CMYK"
    corrupt.write_bytes(corrupt.read_bytes()[:200])  # a truncated JPEG
    assert train_main(["--comp", NAME, "--data-dir", str(dog_dir), *TINY]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and corrupt.name in err and "--skip-bad-images" in err
    assert not list(Path("submissions").rglob("*.csv"))

    assert train_main(["--comp", NAME, "--data-dir", str(dog_dir), "--skip-bad-images", *TINY]) == 0, \
        capsys.readouterr().err
    capsys.readouterr()
    (path,) = Path("submissions", NAME).glob("*.csv")
    sub, sample = pd.read_csv(path), pd.read_csv(dog_dir / "sample_submission.csv")
    assert list(sub.columns) == list(sample.columns) and sub["id"].tolist() == sample["id"].tolist()
    probs = sub.iloc[:, 1:].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-6) and (probs >= 0).all() and (probs <= 1).all()
    rec = json.loads(path.with_suffix(".json").read_text())
    dec = rec["decoding"]
    assert dec["kind"] == "temperature" and dec["score"] <= dec["score_at_1"] + 1e-12
    (run_dir,) = [p for p in Path("runs", NAME).iterdir() if p.name != "cache"]
    oof = pd.read_csv(run_dir / "oof.csv")
    assert len(oof) == 31 and corrupt.stem not in oof["id"].tolist()  # the corrupt photo left out of training
    data = COMP.for_params(rec["params"]).with_cache_dir(Path("runs", NAME, "cache")).load(dog_dir)
    x = COMP.images(data, "train", 32).x[0].astype(int)
    assert np.abs(x - rgb).mean() < 12  # the CMYK photo decodes to its colours, not inverted or black

    assert predict_main(["--comp", NAME, "--data-dir", str(dog_dir), "--run", run_dir.name, "--quiet"]) == 0
    again = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert again != path and again.read_bytes() == path.read_bytes()  # the same submission, byte for byte


def test_temperature_lowers_overconfident_log_loss_and_round_trips():
    rng = np.random.default_rng(0)
    n, k = 3000, 6
    logits = rng.normal(0, 1.0, (n, k))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in true])
    over = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)  # the same ranking, 3x too sure
    ll = metrics.get("logloss")
    dec = decoders.Temperature().fit(y, over, ll)
    assert 2.5 < dec.temperature < 3.5 and dec.score_ < dec.baseline_ - 0.1
    assert dec.score_ == pytest.approx(ll(y, dec.apply(over))) and dec.baseline_ == pytest.approx(ll(y, over))
    out = dec.apply(over)
    assert np.allclose(out.sum(axis=1), 1.0) and (out.argmax(axis=1) == over.argmax(axis=1)).all()
    np.testing.assert_allclose(decoders.Temperature(3.0).apply(over), true, atol=1e-9)  # T = 3 undoes the cube
    back = decoders.from_json(json.loads(json.dumps(dec.to_json())))
    assert isinstance(back, decoders.Temperature) and np.array_equal(back.apply(over), out)
    assert back.summary() == dec.summary() and back.report("logloss") == dec.report("logloss")
    # a metric best at the input itself: the search lands near T = 1 but not better, so T = 1 is kept exactly
    same = metrics.Metric("same", lambda y_, p: -float(np.abs(p - over).sum()), needs="probs")
    kept = decoders.Temperature().fit(y, over, same)
    assert kept.temperature == 1.0 and kept.score_ == kept.baseline_ == 0.0
    assert isinstance(tasks.get("multiclass").default_decoder(ll), decoders.Temperature)
    assert isinstance(COMP.decoder(), decoders.Temperature) and COMP.metric.name == "logloss"


def test_sandbox_entry_scores_by_log_loss(tmp_path: Path):
    entry = next(e for e in sandbox_competitions() if e.name == NAME)
    assert entry.sandbox_kwargs["n_train"] <= 64
    d = make_competition(tmp_path, NAME, seed=2, n_train=16, n_test=8, size=24, n_breeds=4, workers=1)
    meta = CompetitionMeta.load(d)
    sol = pd.read_csv(d / "solution.csv")
    assert meta.id_col == "id" and list(meta.target_cols) == synth.breeds(4)
    cols = ["id", *meta.target_cols]
    assert score_submission(d, meta, sol[cols].to_csv(index=False).encode())[0] == pytest.approx(0.0, abs=1e-9)
    uniform = pd.read_csv(d / "sample_submission.csv").to_csv(index=False).encode()
    public, private, err = score_submission(d, meta, uniform)
    assert err is None and public == pytest.approx(np.log(4)) and private == pytest.approx(np.log(4))


@pytest.mark.parametrize("case, message", [
    ("missing", r"labels\.csv: row 5, column id: image \S+/train/{id3}\.jpg not found; add it, or pass "
                r"--skip-bad-images"),
    ("extra_test", r"\S+/test/{new}\.jpg: test image not in sample_submission\.csv"),
    ("breed", r"labels\.csv: row 4, column breed: breed 'dingo' is not a column of sample_submission\.csv"),
    ("unseen", r"sample_submission\.csv: column 'chihuahua' is no breed of labels\.csv: nothing to learn it from"),
])
def test_bad_input_is_one_line_and_writes_nothing(dog_dir: Path, workdir: Path, capsys, case, message):
    labels = pd.read_csv(dog_dir / "labels.csv")
    new = "f" * 32
    if case == "missing":
        (dog_dir / "train" / f"{labels['id'][3]}.jpg").unlink()
    elif case == "extra_test":
        shutil.copy(dog_dir / "train" / f"{labels['id'][0]}.jpg", dog_dir / "test" / f"{new}.jpg")
    elif case == "breed":
        labels.loc[2, "breed"] = "dingo"
        labels.to_csv(dog_dir / "labels.csv", index=False)
    else:  # a sample column no training photo has: refused before training, not after
        labels[labels["breed"] != "chihuahua"].to_csv(dog_dir / "labels.csv", index=False)
    rc = train_main(["--comp", NAME, "--data-dir", str(dog_dir), *TINY])
    err = capsys.readouterr().err.strip()
    assert rc == 3 and len(err.splitlines()) == 1, err
    assert re.search(message.format(id3=labels["id"][3], new=new), err), err
    assert _nothing_written()


def test_photos_mirror_left_right_only_and_the_search_space_is_valid():
    import optuna

    a = COMP.augment(COMP.params({"preset": "cpu"}))
    assert a.flip and not (a.vflip or a.rot90) and a.tta_views(8) == [0, 1]  # a dog upside down is no photo
    trial = optuna.trial.FixedTrial({"lr": 1e-3, "aug": 0.1, "geometric": True, "wd": 0.01, "dropout": 0.2,
                                     "epochs": 12, "size": 64, "width": 16, "mixup": 0.2, "label_smoothing": 0.0,
                                     "progressive": 0.5})
    COMP.check_params(COMP.params(COMP.search_space(trial)))


@pytest.mark.parametrize("mode, fmt", [("RGB", "JPEG"), ("L", "JPEG"), ("CMYK", "JPEG"), ("RGB", "PNG"),
                                       ("RGBA", "PNG"), ("P", "PNG"), ("I;16", "PNG")])
def test_any_mode_and_size_decodes_to_rgb_at_the_run_size(tmp_path: Path, mode: str, fmt: str):
    color = (180, 60, 40)
    im = Image.new("RGB", (77, 41), color)
    if mode == "I;16":  # 16-bit grayscale: 0..65535, so Pillow's own conversion would clip it to white
        gray = round(0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2])
        im = Image.fromarray(np.full((41, 77), gray * 257, dtype=np.uint16))
    elif mode == "P":
        im = im.convert("P", palette=Image.Palette.ADAPTIVE)
    elif mode != "RGB":
        im = im.convert(mode)
    path = tmp_path / f"photo.{fmt.lower()}"
    im.save(path, format=fmt)
    x = decode_image(path, 32).astype(int)
    want = np.array(color) if mode not in ("L", "I;16") else np.full(3, round(np.dot(color, [0.299, 0.587, 0.114])))
    assert x.shape == (32, 32, 3) and np.abs(x - want).max() <= 6, (mode, x[0, 0])


def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(tmp_path: Path):
    upright = np.zeros((40, 60, 3), dtype=np.uint8)
    upright[:20] = (250, 10, 10)  # red on top, black below: a landscape photo
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1)))  # the sensor's pixels, 60 x 40
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view": the pixels were stored turned counter-clockwise
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    x = decode_image(tmp_path / "phone.jpg", 32).astype(int)
    assert x[:12, :, 0].mean() > 200 and x[20:, :, 0].mean() < 40  # red on top again
