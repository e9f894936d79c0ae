"""Planet: generator, train -> thresholds -> submission on a tiny generated set, decoding rules, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import fbeta_score

from competitions.planet import COMPETITION as PLANET
from competitions.planet import PRESETS
from competitions.planet.decoding import TAGS, WEATHER, apply_rules, choose_rules, weather_columns
from competitions.planet.synthetic import FAINT_MISS, MISS_RATE, annotate, generate, render, sample_tags
from kit import metrics, thresholds
from kit.commands.train import main as train_main
from kit.errors import DataError, KitError, SubmissionError
from kit.run import train_and_submit
from kit.submission import validate_submission

TINY = {"preset": "cpu", "size": 32, "epochs": 1, "bs": 16, "tta": 2}


@pytest.fixture(scope="session")
def planet_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 train / 24 test generated tiles at 32 px, made once per session."""
    d = tmp_path_factory.mktemp("planet_src")
    generate(d / "data", n_train=60, n_test=24, seed=3, size=32, solution_path=d / "solution.csv", workers=1)
    return d


@pytest.fixture
def planet_dir(planet_source: Path, tmp_path: Path) -> Path:
    """A private copy of the generated folder that a test may damage."""
    d = tmp_path / "planet"
    shutil.copytree(planet_source / "data", d)
    return d


# ---- generator ------------------------------------------------------------------------------------------


def test_generator_writes_kaggle_layout(planet_source: Path):
    d = planet_source / "data"
    assert sorted(p.name for p in d.iterdir()) == [
        "sample_submission_v2.csv", "test-jpg", "test-jpg-additional", "train-jpg", "train_v2.csv"]
    train = pd.read_csv(d / "train_v2.csv", keep_default_na=False)
    sample = pd.read_csv(d / "sample_submission_v2.csv")
    assert list(train.columns) == ["image_name", "tags"] and list(sample.columns) == ["image_name", "tags"]
    assert train["image_name"].tolist() == [f"train_{i}" for i in range(60)]
    n_main = len(list((d / "test-jpg").glob("*.jpg")))
    n_add = len(list((d / "test-jpg-additional").glob("*.jpg")))
    assert n_main == 16 and n_add == 8
    assert sample["image_name"].tolist() == [f"test_{i}" for i in range(16)] + [f"file_{i}" for i in range(8)]
    assert set(sample["tags"]) == {"primary clear agriculture road water"}
    for name in train["image_name"]:
        with Image.open(d / "train-jpg" / f"{name}.jpg") as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (32, 32)
    for tags in train["tags"]:
        t = tags.split()
        assert t == sorted(t) and set(t) <= set(TAGS)
        assert sum(w in t for w in WEATHER) == 1  # weather exclusivity
        assert "cloudy" not in t or t == ["cloudy"]
    solution = pd.read_csv(planet_source / "solution.csv")
    assert solution["image_name"].tolist() == sample["image_name"].tolist()


def test_generator_is_reproducible(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        generate(d, n_train=6, n_test=3, seed=11, size=24, workers=1)
    assert (a / "train_v2.csv").read_bytes() == (b / "train_v2.csv").read_bytes()
    assert (a / "train-jpg/train_5.jpg").read_bytes() == (b / "train-jpg/train_5.jpg").read_bytes()


def test_generator_tag_frequencies_are_planet_like():
    rng = np.random.default_rng(0)
    rows = [sample_tags(rng) for _ in range(20000)]
    freq = {t: np.mean([t in r for r in rows]) for t in TAGS}
    # Kaggle's train_v2.csv: primary 92.7 %, clear 70.2 %, agriculture 30.4 %, road 19.9 %, water 18.3 %,
    # partly_cloudy 17.9 %, cultivation 11.2 %, habitation 9.0 %, haze 6.7 %, cloudy 5.2 %
    expect = {"primary": 0.927, "clear": 0.702, "agriculture": 0.304, "road": 0.199, "water": 0.183,
              "partly_cloudy": 0.179, "cultivation": 0.112, "habitation": 0.090, "haze": 0.067, "cloudy": 0.052}
    for t, f in expect.items():
        assert abs(freq[t] - f) < 0.025, (t, freq[t], f)
    assert all(sum(w in r for w in WEATHER) == 1 for r in rows)
    assert 0 < freq["blow_down"] < 0.01 and 0 < freq["conventional_mine"] < 0.01


def test_rare_tags_are_drawn_at_varying_strength_and_faint_ones_are_missed_more():
    rng = np.random.default_rng(4)
    seen = []
    for _ in range(30):
        vis: dict[str, float] = {}
        img = render(["clear", "primary", "road", "blow_down", "bare_ground"], 24, rng, vis)
        assert img.shape == (24, 24, 3) and img.dtype == np.uint8
        assert set(vis) == {"blow_down", "bare_ground"} and all(0 < v <= 1 for v in vis.values())
        seen.append(vis["blow_down"])
    assert max(seen) - min(seen) > 0.3  # from plain to faint, not one fixed look
    tags, n = ["haze", "primary", "blow_down"], 4000
    kept = {v: np.mean(["blow_down" in annotate(tags, rng, visibility={"blow_down": v}) for _ in range(n)])
            for v in (1.0, 0.3)}
    assert kept[1.0] == pytest.approx(1 - MISS_RATE, abs=0.015)
    assert kept[0.3] == pytest.approx(1 - MISS_RATE - FAINT_MISS * 0.7, abs=0.03)
    assert all({"haze", "primary"} <= set(annotate(tags, rng, visibility={"blow_down": 0.0})) for _ in range(50))


def test_generator_rejects_bad_arguments(tmp_path: Path):
    with pytest.raises(KitError, match="--n must be"):
        generate(tmp_path / "x", n_train=0)
    assert not (tmp_path / "x").exists()


# ---- metric and decoding --------------------------------------------------------------------------------


def test_f2_matches_sklearn_samples_average():
    rng = np.random.default_rng(1)
    y = (rng.random((300, 17)) < 0.2).astype(int)
    pred = (rng.random((300, 17)) < 0.25).astype(int)
    pred[:5] = y[:5]  # some perfect rows
    y[5] = 0  # a row with no true tag
    ref = fbeta_score(y, pred, beta=2, average="samples", zero_division=0)
    assert metrics.f2_samples(y, pred) == pytest.approx(ref, abs=1e-12)


def test_fastai_f2_metric_matches_sklearn():
    import torch

    from kit.learner import competition_metric

    rng = np.random.default_rng(2)
    y = (rng.random((64, 17)) < 0.3).astype(np.float32)
    logits = rng.normal(0, 2, (64, 17)).astype(np.float32)
    m = competition_metric(PLANET)  # the competition's Metric object, reported by fastai
    assert m.name == "f2_samples"
    m.reset()
    m.accum_values(torch.tensor(logits[:40]), torch.tensor(y[:40]))
    m.accum_values(torch.tensor(logits[40:]), torch.tensor(y[40:]))
    ref = fbeta_score(y, (logits >= 0).astype(int), beta=2, average="samples", zero_division=0)
    assert m.value == pytest.approx(ref, abs=1e-9)


def _oof(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Labels with Planet's structure and noisy, unevenly calibrated probabilities."""
    rng = np.random.default_rng(seed)
    classes = sorted(TAGS)
    rows = [sample_tags(rng) for _ in range(n)]
    y = np.array([[c in r for c in classes] for r in rows], dtype=int)
    scale = rng.uniform(0.5, 3.0, len(classes))  # per-class miscalibration: per-class thresholds can help
    logits = (y * 2 - 1) * scale + rng.normal(0, 1.6, y.shape) - rng.uniform(0, 1.5, len(classes))
    return y, 1 / (1 + np.exp(-logits)), classes


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_per_class_thresholds_never_below_global_on_oof(seed: int):
    y, probs, classes = _oof(seed)
    r = thresholds.per_class_thresholds(y, probs, beta=2.0, classes=classes)
    g = thresholds.best_threshold(y, probs, "f2_samples")
    assert r.global_score == pytest.approx(g.score)
    assert r.score >= g.score - 1e-12
    assert metrics.f2_samples(y, probs >= r.thresholds) == pytest.approx(r.score)


def test_weather_argmax_always_yields_exactly_one_weather_tag():
    rng = np.random.default_rng(4)
    classes = sorted(TAGS)
    probs = rng.random((500, len(classes)))
    probs[:50, :] = 0.0  # rows where nothing passes any threshold
    pred = (probs >= 0.5).astype(int)
    wc = weather_columns(classes)
    cc = classes.index("cloudy")
    for alone in (False, True):
        out = apply_rules(probs, pred, wc, cc, weather_argmax=True, cloudy_alone=alone)
        assert (out[:, wc].sum(axis=1) == 1).all()
        if alone:
            cloudy = out[:, cc] == 1
            assert cloudy.any() and (out[cloudy].sum(axis=1) == 1).all()
    # through the competition's decoding too
    base = {"kind": "per_class", "thresholds": [0.5] * len(classes), "at_least_one": True}
    decoding = {"kind": "planet_weather", "base": base,
                "weather": {"weather_argmax": True, "cloudy_alone": False, "weather_columns": wc, "cloudy_column": cc}}
    out = PLANET.decoder_from_json(decoding).apply(probs)
    assert (out[:, wc].sum(axis=1) == 1).all()
    # without the rule, rows can have 0 or several weather tags, but never an empty row
    plain = PLANET.decoder_from_json({**decoding, "weather": {}}).apply(probs)
    assert (plain.sum(axis=1) >= 1).all() and (plain[:, wc].sum(axis=1) != 1).any()


def test_weather_rules_are_kept_only_when_they_help_oof():
    y, probs, classes = _oof(5)
    thr = np.full(len(classes), 0.5)
    chosen = choose_rules(y, probs, thr, classes)
    assert set(chosen["scores"]) == {"none", "weather_argmax", "cloudy_alone", "weather_argmax+cloudy_alone"}
    assert chosen["score"] == pytest.approx(max(chosen["scores"].values()), abs=1e-6)
    if not chosen["weather_argmax"] and not chosen["cloudy_alone"]:
        assert chosen["scores"]["none"] >= max(chosen["scores"].values()) - 1e-6
    json.dumps(chosen)  # JSON-able
    # labels that break the structure (cloudy with other tags): cloudy_alone must not be chosen
    y2 = y.copy()
    cc = classes.index("cloudy")
    y2[:, cc] = 1
    p2 = probs.copy()
    p2[:, cc] = 0.9
    assert not choose_rules(y2, p2, thr, classes)["cloudy_alone"]


# ---- the whole path -------------------------------------------------------------------------------------


def test_train_thresholds_submission_end_to_end(planet_dir: Path, workdir: Path):
    r = train_and_submit(PLANET, planet_dir, PLANET.params(TINY), seed=1, n_folds=2, progress=False)
    sub = pd.read_csv(r.submission, keep_default_na=False)
    sample = pd.read_csv(planet_dir / "sample_submission_v2.csv")
    assert sub["image_name"].tolist() == sample["image_name"].tolist()  # both test folders, sample's order
    names = sub["image_name"].tolist()
    assert any(n.startswith("file_") for n in names) and any(n.startswith("test_") for n in names)
    assert all(t and set(t.split()) <= set(TAGS) for t in sub["tags"])
    validate_submission(PLANET, r.submission, planet_dir / "sample_submission_v2.csv")
    d = r.decoder.to_json()
    base = d["base"]
    assert d["kind"] == "planet_weather" and len(base["thresholds"]) == len(r.decoder.base.result_["classes"])
    assert base["search"]["score_per_class"] >= base["search"]["score_global"] - 1e-12
    assert round(d["weather"]["score"], 6) >= d["weather"]["scores"]["none"]  # the scores are rounded to 6 places
    assert r.oof_score == pytest.approx(d["score"], abs=1e-9)
    assert PLANET.decoder_from_json(json.loads(json.dumps(d))).apply(r.decoder.base.thresholds_[None, :] + 0.01) \
        .shape == (1, len(base["thresholds"]))
    oof = pd.read_csv(r.run_dir / "oof.csv")
    assert len(oof) == 60 and list(oof.columns[1:]) == [c["class"] for c in base["search"]["classes"]]
    assert len(pd.read_csv(r.run_dir / "test_probs.csv")) == 24
    side = json.loads(r.submission.with_suffix(".json").read_text())
    assert side["params"]["size"] == 32 and side["params"]["arch"] == "small_cnn"
    assert "weather" in side["decoding"]


def test_presets_resolve_and_overrides_win():
    p = PLANET.params({"preset": "gpu"})
    assert {k: p[k] for k in PRESETS["gpu"]} == PRESETS["gpu"]
    p = PLANET.params({"preset": "cpu", "size": 48})
    assert p["arch"] == "small_cnn" and p["size"] == 48 and p["epochs"] == PRESETS["cpu"]["epochs"]
    assert p["width"] == PRESETS["cpu"]["width"] == 16  # the preset's width fills an unset one; yours wins
    assert PLANET.params({"preset": "cpu", "width": 24})["width"] == 24
    assert PLANET.params({"preset": "gpu"})["width"] == 24  # a preset without one: Preset's default
    assert PLANET.params({})["preset"] in ("cpu", "gpu")
    with pytest.raises(KitError, match="preset"):
        PLANET.params({"preset": "tpu"})
    with pytest.raises(KitError, match="architecture"):
        PLANET.params({"arch": "no_such_net"})
    with pytest.raises(KitError, match="unknown parameter"):
        PLANET.params({"sizee": 3})


def test_search_space_gives_valid_params():
    import optuna

    trial = optuna.trial.FixedTrial({"lr": 1e-3, "aug": 0.1, "geometric": True, "wd": 0.01, "dropout": 0.2,
                                     "epochs": 8, "size": 48, "width": 16, "residual": True, "arch": "resnet18",
                                     "mixup": 0.2, "label_smoothing": 0.05, "progressive": 0.5})
    PLANET.check_params(PLANET.params(PLANET.search_space(trial)))


# ---- bad input ------------------------------------------------------------------------------------------


def _damage(d: Path) -> None:
    (d / "train-jpg/train_3.jpg").write_bytes((d / "train-jpg/train_3.jpg").read_bytes()[:150])  # truncated
    (d / "train-jpg/train_7.jpg").unlink()  # a CSV row whose image does not exist
    (d / "test-jpg-additional/file_2.jpg").write_bytes(b"not a jpeg")


def test_bad_images_are_all_listed_and_stop_before_training(planet_dir: Path, workdir: Path, capsys):
    _damage(planet_dir)
    rc = train_main(["--comp", "planet", "--data-dir", str(planet_dir), "--folds", "2", "--quiet",
                     *[f"--set={k}={v}" for k, v in TINY.items()]])
    err = capsys.readouterr().err
    assert rc == 3
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: 3 missing or unreadable image(s)")
    assert all(s in lines[-1] for s in ("train_3.jpg", "train_7.jpg (missing)", "file_2.jpg", "--skip-bad-images"))
    assert not Path("submissions/planet").exists() or not list(Path("submissions/planet").iterdir())


def test_skip_bad_images_drops_train_rows_and_fills_test_rows_from_prior(planet_dir: Path, workdir: Path):
    _damage(planet_dir)
    data = PLANET.load(planet_dir)
    assert len(data.train) == 58 and "train_3" not in data.train["image_name"].tolist()
    r = train_and_submit(PLANET, planet_dir, PLANET.params({**TINY, "skip_bad_images": True}), seed=2,
                         n_folds=2, progress=False, data=data)
    sub = pd.read_csv(r.submission, keep_default_na=False)
    assert len(sub) == 24 and sub["tags"].str.len().gt(0).all()
    probs = pd.read_csv(r.run_dir / "test_probs.csv").set_index("image_name")
    oof = pd.read_csv(r.run_dir / "oof.csv").set_index("image_name")
    folds = pd.read_csv(r.run_dir / "folds.csv").set_index("image_name")["fold"]
    prior = np.mean([oof[folds == k].mean().to_numpy() for k in (0, 1)], axis=0)
    np.testing.assert_allclose(probs.loc["file_2"].to_numpy(), prior, atol=1e-9)


def test_skip_bad_images_cli_flag(planet_dir: Path, workdir: Path, capsys):
    _damage(planet_dir)
    rc = train_main(["--comp", "planet", "--data-dir", str(planet_dir), "--folds", "2", "--quiet",
                     "--skip-bad-images", *[f"--set={k}={v}" for k, v in TINY.items()]])
    assert rc == 0, capsys.readouterr().err


def test_empty_tags_are_legal_and_odd_modes_become_rgb(planet_dir: Path, workdir: Path):
    train = pd.read_csv(planet_dir / "train_v2.csv", keep_default_na=False)
    train.loc[4, "tags"] = ""
    train.to_csv(planet_dir / "train_v2.csv", index=False)
    Image.open(planet_dir / "train-jpg/train_0.jpg").convert("L").save(planet_dir / "train-jpg/train_0.jpg")
    # a PNG with alpha behind a .jpg name: decoded by content, alpha dropped
    Image.new("RGBA", (32, 32), (10, 200, 30, 128)).save(planet_dir / "train-jpg/train_1.jpg", format="PNG")
    data = PLANET.load(planet_dir)
    assert len(data.train) == 60 and data.y[4].sum() == 0
    x = PLANET.images(data, "train", 32).x
    assert x.shape == (60, 32, 32, 3) and not data.bad_train
    assert (x[0, ..., 0] == x[0, ..., 1]).all()  # grayscale replicated
    assert tuple(x[1, 0, 0]) == (10, 200, 30)


def test_missing_files_and_folders_are_one_line_errors(planet_dir: Path, workdir: Path):
    shutil.rmtree(planet_dir / "train-jpg")
    with pytest.raises(DataError, match="train-jpg: folder not found"):
        PLANET.load(planet_dir)
    (planet_dir / "train_v2.csv").unlink()
    with pytest.raises(DataError, match="train_v2.csv: file not found"):
        PLANET.load(planet_dir)


def test_duplicate_image_name_in_csv(planet_dir: Path, workdir: Path):
    train = pd.read_csv(planet_dir / "train_v2.csv", keep_default_na=False)
    train.loc[9, "image_name"] = "train_2"
    train.to_csv(planet_dir / "train_v2.csv", index=False)
    with pytest.raises(DataError, match=r"row 11, column image_name: duplicate image 'train_2'"):
        PLANET.load(planet_dir)


def test_unknown_tag_in_submission_is_rejected(planet_dir: Path):
    sample = pd.read_csv(planet_dir / "sample_submission_v2.csv")
    sub = sample.copy()
    validate_submission(PLANET, sub, sample)
    sub.loc[3, "tags"] = "primary jungle"
    with pytest.raises(SubmissionError, match="row 5, column tags: label 'jungle' not in allowed set"):
        validate_submission(PLANET, sub, sample)


def test_same_seed_gives_identical_oof_and_submission(planet_dir: Path, workdir: Path):
    runs = [train_and_submit(PLANET, planet_dir, PLANET.params(TINY), seed=9, n_folds=2, progress=False)
            for _ in range(2)]
    assert runs[0].submission != runs[1].submission
    assert runs[0].submission.read_bytes() == runs[1].submission.read_bytes()
    assert (runs[0].run_dir / "oof.csv").read_bytes() == (runs[1].run_dir / "oof.csv").read_bytes()


def test_demo_generates_trains_and_scores_held_out(tmp_path: Path, workdir: Path, capsys, monkeypatch):
    from competitions.planet import demo

    rc = demo.main(["--out", str(tmp_path / "demo"), "--n", "40", "--n-test", "12", "--folds", "2",
                    "--set", "size=32", "--set", "epochs=1"])
    out = capsys.readouterr().out
    assert rc == 0
    line = next(s for s in out.splitlines() if s.startswith("held-out F2 "))
    f2, base = float(line.split()[2]), float(line.rstrip(")").split()[-1])
    assert 0 <= f2 <= 1 and 0.5 < base < 0.8  # constant "primary clear" on Planet-like tags
    assert list((tmp_path / "demo" / "runs" / "planet" / "cache").glob("*.npy"))  # caches under the demo's run root
    assert PLANET.cache_dir is None and list((tmp_path / "demo" / "submissions" / "planet").glob("*.csv"))


def test_fine_tune_without_pretrained_weights_trains_all_layers_with_one_cycle(planet_dir, offline_weights, caplog):
    """Offline (no weights): fine_tune's frozen epochs and lr/100 early layers would waste a random body."""
    import logging

    data = PLANET.load(planet_dir)
    params = PLANET.params({**TINY, "arch": "resnet18", "schedule": "fine_tune", "freeze_epochs": 1,
                            "pretrained": True, "epochs": 2, "tta": 1})
    idx = np.arange(len(data.y))
    with caplog.at_level(logging.WARNING):
        out = PLANET.fit_fold(data, idx[::2], idx[1::2], params, seed=0, progress=False)
    assert len(out.history) == 2
    assert any("instead of fine_tune" in r.getMessage() for r in caplog.records)
    assert np.isfinite(out.valid).all() and out.test.shape == (len(data.test), len(data.classes))


def test_a_run_at_another_size_decodes_every_image_once(planet_dir: Path, workdir: Path, caplog):
    """`--set size=40` loads at 40 px: no decoding at the preset's size first (issue: every image twice)."""
    import logging

    with caplog.at_level(logging.INFO, logger="kit.vision"):
        train_and_submit(PLANET, planet_dir, PLANET.params({**TINY, "size": 40}), seed=1, n_folds=2,
                         progress=False)
    decoded = [r.getMessage() for r in caplog.records if r.getMessage().startswith("decoding ")]
    assert decoded and all(" to 40 px " in m for m in decoded), decoded
    assert len(decoded) == 2  # train and test, once each
