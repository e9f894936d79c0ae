"""Typed parameters (kit.params): constraints checked in one place, every family's defaults and search space
inside its own constraints, presets checked when a competition class is made."""

from __future__ import annotations

import optuna
import pytest

from kit import families
from kit.errors import KitError
from kit.params import Flag, Interval, Options, OrAuto, validate
from kit.vision import Preset, VisionCompetition, VisionParams


def test_constraints_say_what_they_allow():
    assert 1 in Interval(int, 1, None) and 0 not in Interval(int, 1, None) and 2.5 not in Interval(int, 1, None)
    assert True not in Interval(int, 0, None)  # a bool is not a number here
    assert 1.0 in Interval(float, 0, 1, "right") and 0.0 not in Interval(float, 0, 1, "right")
    assert float("nan") not in Interval(float, None, None)
    assert "a" in Options("a", "b") and 1 not in Options(True) and True in Flag() and 0 not in Flag()
    assert 0 in OrAuto() and 64 in OrAuto() and -1 not in OrAuto()
    assert str(Interval(float, 0, 1, "left")) == "in [0, 1)" and str(Interval(int, 1, None)) == ">= 1"
    with pytest.raises(KitError, match=r"^here: dropout must be in \[0, 1\) \(got 1.5\)$"):
        validate({"dropout": Interval(float, 0, 1, "left")}, {"dropout": 1.5}, "here")
    with pytest.raises(KitError, match=r"bs must be >= 1, or 0 to choose it from the data size \(got -2\)"):
        validate({"bs": OrAuto()}, {"bs": -2}, "x")
    validate({"lr": Interval(float, 0, None, "neither")}, {"other": "anything"}, "x")  # only declared keys


@pytest.mark.parametrize("name", families.NAMES)
def test_each_family_s_defaults_and_search_space_satisfy_its_constraints(name):
    family = families.get(name)
    defaults = family.params.defaults()
    family.check(defaults, name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        family.check({**defaults, **family.search_space(trial, defaults)}, name)
        study.tell(trial, 0.0)


def test_family_params_are_typed_views_of_a_run_s_dict():
    mlp = families.get("mlp").params
    p = mlp.of({"lr": 0.01, "not_a_param": 1})
    assert p.lr == 0.01 and p.width == mlp.defaults()["width"]
    with pytest.raises(KitError, match="tabm: k must be >= 1"):
        families.get("tabm").check({"k": 0}, "tabm")
    with pytest.raises(KitError, match="learning_rate must be in \\(0, 1\\]"):
        families.get("lightgbm").check({"learning_rate": 0.0}, "lightgbm")
    with pytest.raises(KitError, match="unknown model 'svm'; one of mlp, tabm"):
        families.get("svm")


def test_presets_are_checked_when_the_competition_class_is_made():
    good = {"arch": "small_cnn", "size": 32, "epochs": 2, "lr": 1e-3, "bs": 16, "schedule": "one_cycle", "tta": 0}

    class Fine(VisionCompetition):
        name = "fine"
        presets = {"cpu": good}

    assert Fine.presets["cpu"] == Preset(**good) and Fine.presets["cpu"].mixup == 0.0
    assert Fine.presets["cpu"].as_dict()["sizes"] == []
    for bad, message in (({**good, "szie": 3}, "unknown key.s. szie"),
                         ({k: v for k, v in good.items() if k != "tta"}, "missing tta"),
                         ({**good, "schedule": "cosine"}, "schedule must be one of one_cycle, fine_tune"),
                         ({**good, "size": 8}, "size must be >= 16, pixels")):
        with pytest.raises(KitError, match=f"competition 'bad': preset 'cpu': .*{message}"):
            type("Bad", (VisionCompetition,), {"name": "bad", "presets": {"cpu": bad}})


def test_vision_params_checked_once_resolved():
    with pytest.raises(KitError, match="mixup and cutmix both on"):
        VisionParams.check({"mixup": 0.2, "cutmix": 1.0}, "x")
    VisionParams.check(VisionParams.defaults() | {"size": 64, "epochs": 1, "bs": 8, "lr": 1e-3, "arch": "small_cnn",
                                                  "schedule": "one_cycle", "tta": 0, "norm": "auto", "mixup": 0.0,
                                                  "cutmix": 0.0, "label_smoothing": 0.0, "progressive": 0.0,
                                                  "width": 24}, "x")
