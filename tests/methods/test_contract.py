"""The method contract: every entry of :data:`fairser.methods.METHODS` is tested because it is
registered (in the spirit of scikit-learn's ``parametrize_with_checks``).

Per method: the class carries its identity (``name`` equal to its registry key, ``label``,
``uses_groups``, ``uses_target``, ``adversarial``, with the right types) and
:func:`fairser.methods.method_label` agrees; a tiny :func:`fairser.training.fit` on the
generated pair of ``conftest.py`` gives probabilities in [0, 1] of the right shape, is
deterministic for a seed, saves and loads to identical predictions, never reads the target's
emotion labels, and a method that does not use the target trains identically without one
(one that does refuses to train without one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairser.errors import FairserError
from fairser.methods import METHODS, Method, method_label
from fairser.training import FittedModel, fit

#: Class attributes every method declares, and their types.
ATTRIBUTES: dict[str, type] = {
    "name": str,
    "label": str,
    "uses_groups": bool,
    "uses_target": bool,
    "adversarial": bool,
}

NAMES = list(METHODS)


def method_problems(key: str, cls: object) -> list[str]:
    """What is wrong with ``cls`` registered under ``key`` (empty: it keeps the contract)."""
    problems = []
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        problems.append(f"{key}: {cls!r} is not a subclass of fairser.methods.base.Method")
    for attr, kind in ATTRIBUTES.items():
        if not hasattr(cls, attr):
            problems.append(f"{key}: no class attribute {attr!r}")
            continue
        value = getattr(cls, attr)
        if type(value) is not kind:
            problems.append(f"{key}: {attr} = {value!r} is not a {kind.__name__}")
    for attr in ("name", "label"):  # the base class's placeholders do not count as declared
        if getattr(cls, attr, None) == getattr(Method, attr):
            problems.append(f"{key}: {attr!r} is inherited from Method, not declared")
    if getattr(cls, "name", None) != key:
        problems.append(f"{key}: name {getattr(cls, 'name', None)!r} is not its registry key")
    label = getattr(cls, "label", "")
    if isinstance(label, str) and not label.strip():
        problems.append(f"{key}: empty label")
    return problems


def assert_method_contract(key: str, cls: object) -> None:
    """Fail with every problem :func:`method_problems` finds."""
    problems = method_problems(key, cls)
    assert not problems, "; ".join(problems)


_FITS: dict[tuple, FittedModel] = {}


def _fit(pair, name: str, *, seed: int = 0, target: str = "true") -> FittedModel:
    """Tiny fit of ``name`` on the generated pair; ``target``: true, garbled or none (memoised
    per module run, so every check reuses the same reference fit)."""
    key = (name, seed, target)
    if key not in _FITS:
        src, tgt, feats, tiny = pair
        if target == "garbled":
            tgt = garble_emotions(tgt)
        _FITS[key] = fit(
            source=src,
            target=None if target == "none" else tgt,
            features=feats,
            method=name,
            emotion="angry",
            config=dict(tiny),
            seed=seed,
            progress=False,
        )
    return _FITS[key]


def garble_emotions(target: pd.DataFrame) -> pd.DataFrame:
    """The target with its emotion column replaced: shuffled, then half of it set to one label."""
    emo = target["emotion"].sample(frac=1.0, random_state=5).to_numpy().copy()
    emo[: len(emo) // 2] = "neutral"
    out = target.assign(emotion=pd.array(emo, dtype="string"))
    assert (out["emotion"] != target["emotion"]).any()
    return out


@pytest.mark.parametrize("name", NAMES)
def test_class_carries_its_identity(name: str) -> None:
    assert_method_contract(name, METHODS[name])


@pytest.mark.parametrize("name", NAMES)
def test_method_label_agrees(name: str) -> None:
    assert method_label(name) == METHODS[name].label


@pytest.mark.parametrize("name", NAMES)
def test_fit_gives_probabilities(name: str, tiny_pair) -> None:
    src, tgt, feats, _ = tiny_pair
    m = _fit(tiny_pair, name)
    for manifest in (src, tgt):
        p = m.predict_proba(manifest, feats)
        assert p.shape == (len(manifest),)
        assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert m.method == name
    stages = {e["stage"] for e in m.history["epochs"]}
    assert stages == ({1, 2} if METHODS[name].uses_target else {1})
    has_head = m.attribute_predict(tgt, feats) is not None
    assert has_head == METHODS[name].adversarial


@pytest.mark.parametrize("name", NAMES)
def test_fit_is_deterministic_for_a_seed(name: str, tiny_pair) -> None:
    src, tgt, feats, _ = tiny_pair
    a = _fit(tiny_pair, name).predict_proba(tgt, feats)
    again = fit(
        source=src,
        target=tgt,
        features=feats,
        method=name,
        emotion="angry",
        config=dict(tiny_pair[3]),
        seed=0,
        progress=False,
    )
    assert np.array_equal(again.predict_proba(tgt, feats), a)
    other = _fit(tiny_pair, name, seed=1).predict_proba(tgt, feats)
    assert not np.array_equal(other, a)  # the seed matters (the check can fail)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_gives_identical_predictions(name: str, tiny_pair, tmp_path) -> None:
    src, tgt, feats, _ = tiny_pair
    m = _fit(tiny_pair, name)
    m.save(tmp_path / "model")
    back = FittedModel.load(tmp_path / "model")
    assert back.method == name
    assert np.array_equal(back.predict_proba(tgt, feats), m.predict_proba(tgt, feats))
    assert np.array_equal(back.predict_proba(src, feats), m.predict_proba(src, feats))


@pytest.mark.parametrize("name", NAMES)
def test_target_emotion_labels_are_never_read(name: str, tiny_pair) -> None:
    _, tgt, feats, _ = tiny_pair
    a = _fit(tiny_pair, name).predict_proba(tgt, feats)
    b = _fit(tiny_pair, name, target="garbled").predict_proba(tgt, feats)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_training_without_a_target(name: str, tiny_pair) -> None:
    _, tgt, feats, _ = tiny_pair
    if METHODS[name].uses_target:
        with pytest.raises(FairserError, match="target"):
            _fit(tiny_pair, name, target="none")
        return
    a = _fit(tiny_pair, name).predict_proba(tgt, feats)
    b = _fit(tiny_pair, name, target="none").predict_proba(tgt, feats)
    assert np.array_equal(a, b)


# ----------------------------------------------------------------------------- the checker fails


class _Complete(Method):
    name = "complete"
    label = "Complete"


class _NoLabel(Method):
    name = "no-label"


class _NoName(Method):
    label = "No name"


class _BadFlag(Method):
    name = "bad-flag"
    label = "Bad flag"
    uses_groups = "yes"  # type: ignore[assignment]


class _NotAMethod:
    name = "plain"
    label = "Plain"
    uses_groups = False
    uses_target = False


@pytest.mark.parametrize(
    ("key", "cls", "message"),
    [
        ("no-label", _NoLabel, "'label' is inherited"),
        ("no-name", _NoName, "'name' is inherited"),
        ("bad-flag", _BadFlag, "uses_groups = 'yes' is not a bool"),
        ("other-key", _Complete, "is not its registry key"),
        ("plain", _NotAMethod, "not a subclass"),
    ],
)
def test_contract_fails_for_a_method_lacking_an_attribute(key, cls, message) -> None:
    assert_method_contract("complete", _Complete)  # the reference passes
    with pytest.raises(AssertionError, match=message):
        assert_method_contract(key, cls)


def test_contract_fails_for_a_registered_method_without_adversarial(monkeypatch) -> None:
    """A class registered next to the real ones, lacking ``adversarial``, is the one flagged."""
    import fairser.methods as methods

    broken = type(
        "Broken",
        (),
        {"name": "broken", "label": "Broken", "uses_groups": False, "uses_target": False},
    )
    monkeypatch.setattr(methods, "METHODS", {**METHODS, "broken": broken})
    failures = {k: method_problems(k, c) for k, c in methods.METHODS.items()}
    assert [k for k, p in failures.items() if p] == ["broken"]
    assert "broken: no class attribute 'adversarial'" in failures["broken"]
    with pytest.raises(AssertionError, match="adversarial"):
        assert_method_contract("broken", broken)
