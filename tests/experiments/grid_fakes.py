"""Fakes of the lower layers, so the runner's bookkeeping is tested in milliseconds.

The fake corpora carry a planted signal: features 0-3 one-hot the emotion, feature 4 the
gender, on top of seeded noise. The fake model is a logistic regression on mean-pooled features.
Everything pickles by reference to this module (imported as ``grid_fakes``, its folder on
``sys.path``), so the ``processes`` and ``ray`` executors can ship the fake backend to workers.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from fairser.experiments import Backend

EMOTIONS = ("angry", "happy", "sad", "neutral")
COLUMNS = ("corpus", "utt_id", "path", "speaker", "gender", "emotion", "split", "language",
           "duration_s")


def make_manifest(corpus: str, *, speakers_per_gender: int, per_emotion: int,
                  with_splits: bool) -> pd.DataFrame:
    """A manifest with ``speakers_per_gender`` M and F speakers, each saying every emotion."""
    rows = []
    for g in ("M", "F"):
        for s in range(speakers_per_gender):
            spk = f"{corpus}-{g}{s}"
            split = (["train", "train", "dev", "test"] * 10)[s] if with_splits else None
            for emo in EMOTIONS:
                for k in range(per_emotion):
                    rows.append({"corpus": corpus, "utt_id": f"{spk}-{emo}-{k}",
                                 "path": f"/nowhere/{spk}-{emo}-{k}.wav", "speaker": spk,
                                 "gender": g, "emotion": emo, "split": split,
                                 "language": "en", "duration_s": 1.0})
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in COLUMNS[:-1]:
        df[col] = df[col].astype("string")
    return df


class FakeFeatures:
    """A FeatureSet look-alike: (1, 3, 6) float16 arrays keyed by utt_key."""

    def __init__(self, manifest: pd.DataFrame, *, bad: set[str] = frozenset()) -> None:
        self.frontend, self.layers, self.n_layers, self.dim, self.frame_rate = (
            "fake", (0,), 1, 6, 1.0)
        self._data: dict[str, np.ndarray] = {}
        bad_rows = []
        for row in manifest.itertuples(index=False):
            key = f"{row.corpus}/{row.utt_id}"
            if key in bad:
                bad_rows.append({"corpus": row.corpus, "utt_id": row.utt_id, "path": row.path,
                                 "reason": "unreadable"})
                continue
            seed = zlib.crc32(key.encode())
            rng = np.random.default_rng(seed)
            x = rng.normal(size=(1, 3, 6))
            if isinstance(row.emotion, str):
                x[..., EMOTIONS.index(row.emotion)] += 2.0
            if isinstance(row.gender, str):
                x[..., 4] += 1.5 if row.gender == "M" else -1.5
            self._data[key] = x.astype(np.float16)
        self.bad = pd.DataFrame(bad_rows, columns=["corpus", "utt_id", "path", "reason"])

    def __getitem__(self, key: str) -> np.ndarray:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def keys(self):
        return self._data.keys()


def _pool(features: FakeFeatures, manifest: pd.DataFrame) -> np.ndarray:
    return np.stack([np.asarray(features[f"{c}/{u}"], dtype=np.float32).mean(axis=(0, 1))
                     for c, u in zip(manifest["corpus"], manifest["utt_id"], strict=True)])


class FakeOutputs:
    """What ``FakeModel.outputs`` returns (the ``fairser.training.Outputs`` fields)."""

    def __init__(self, proba, embedding, attribute, labels=None) -> None:
        self.proba, self.embedding, self.attribute = proba, embedding, attribute
        self.labels = labels


class FakeModel:
    """Logistic regression on pooled features; a gender head unless source-only."""

    def __init__(self, coef: np.ndarray, intercept: float, *, head: bool,
                 threshold: float | None = None) -> None:
        self.coef, self.intercept, self.head = coef, intercept, head
        self.threshold = threshold  # set: outputs carry labels = proba >= threshold
        self.history = [{"epoch": 1, "loss": 0.5}]

    def predict_proba(self, manifest, features):
        z = _pool(features, manifest) @ self.coef + self.intercept
        if z.ndim == 2:  # multiclass: softmax over the classes
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return 1.0 / (1.0 + np.exp(-z))

    def predict(self, manifest, features):
        p = self.predict_proba(manifest, features)
        return p.argmax(axis=1) if p.ndim == 2 else (p >= 0.5).astype(int)

    def embed(self, manifest, features):
        return _pool(features, manifest)

    def outputs(self, manifest, features):
        proba = self.predict_proba(manifest, features)
        labels = None
        if self.threshold is not None and proba.ndim == 1:  # like `thresholds: parity`
            known = manifest["gender"].notna().to_numpy(dtype=bool)
            labels = (proba >= np.where(known, self.threshold, 0.5)).astype(np.int64)
            if not known.all():
                import warnings

                warnings.warn(f"predict: thresholds parity needs each row's gender; "
                              f"{int((~known).sum())} row(s) without one get the plain rule",
                              UserWarning, stacklevel=2)
        return FakeOutputs(proba, self.embed(manifest, features),
                           self.attribute_predict(manifest, features), labels)

    def attribute_predict(self, manifest, features):
        if not self.head:
            return None
        return np.where(_pool(features, manifest)[:, 4] > 0, "M", "F")

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "fake.json").write_text(json.dumps(
            {"coef": np.asarray(self.coef).tolist(),
             "intercept": np.asarray(self.intercept).tolist(), "head": self.head,
             "threshold": self.threshold}))

    @classmethod
    def load(cls, folder: Path) -> FakeModel:
        d = json.loads((Path(folder) / "fake.json").read_text())
        return cls(np.array(d["coef"]), np.array(d["intercept"]), head=d["head"],
                   threshold=d.get("threshold"))


class FakeLayers:
    """A fake backend that records every fit and can be told to fail in the ways fits fail.

    Parameters
    ----------
    crash_at : int, optional
        The n-th fit (1-based, in this process) raises KeyboardInterrupt (a killed run).
    diverge : set of (method, seed), optional
        Those fits return a model whose outputs are NaN (training diverged).
    raise_in : set of (method, seed), optional
        Those fits raise TrainingError.
    die_marker : Path, optional
        The first fit that finds no file there creates it and kills its process (a worker
        killed by the OS); later fits run normally.
    sleep : float
        Seconds each fit waits (to keep a run busy).
    started : Path, optional
        A folder where each fit, before it waits, writes a file named by its process id
        (which processes are busy with a fit).
    """

    def __init__(self, *, crash_at: int | None = None, diverge=(), raise_in=(),
                 die_marker: Path | None = None, sleep: float = 0.0,
                 started: Path | None = None) -> None:
        self.fits: list[dict[str, Any]] = []
        self.crash_at = crash_at
        self.extracted = 0
        self.extract_runtime: list[dict[str, Any]] = []  # device, precision, batch_seconds
        self.diverge = set(diverge)
        self.raise_in = set(raise_in)
        self.die_marker = die_marker
        self.sleep = sleep
        self.started = started

    def load_corpus(self, spec: str, *, options=None) -> pd.DataFrame:
        kind = spec.split(":", 1)[0]
        if kind == "fake-source":
            return make_manifest("src", speakers_per_gender=4, per_emotion=4, with_splits=True)
        return make_manifest("tgt", speakers_per_gender=2, per_emotion=5, with_splits=False)

    def extract(self, manifest, frontend, *, layers=None, cache_dir=None, workers=1,
                progress=True, device="auto", precision="fp32", batch_seconds=None):
        self.extracted += 1
        self.extract_runtime.append({"device": device, "precision": precision,
                                     "batch_seconds": batch_seconds})
        return FakeFeatures(manifest)

    def fit(self, *, source, target, features, method, emotion, config, seed, workdir,
            progress):
        if self.crash_at is not None and len(self.fits) + 1 == self.crash_at:
            raise KeyboardInterrupt("simulated kill")
        if self.die_marker is not None and not Path(self.die_marker).exists():
            Path(self.die_marker).write_text(str(os.getpid()))
            os._exit(3)
        if self.started is not None:
            Path(self.started).mkdir(parents=True, exist_ok=True)
            (Path(self.started) / str(os.getpid())).write_text(str(method))
        if self.sleep:
            import time

            time.sleep(self.sleep)
        if (method, seed) in self.raise_in:
            from fairser.errors import TrainingError

            raise TrainingError(f"{method} seed {seed}: loss is NaN at epoch 2 (diverged); "
                                "lower lr")
        train = source[(source["split"] == "train").to_numpy(dtype=bool)]
        self.fits.append({"method": method, "emotion": emotion, "seed": seed,
                          "n_source": len(source), "n_target": len(target),
                          "config": dict(config)})
        clf = LogisticRegression(C=float(config.get("C", 1.0)), random_state=seed)
        if emotion is None:  # multiclass over config["classes"]
            classes = list(config["classes"])
            y = np.array([classes.index(e) for e in train["emotion"]])
            clf.fit(_pool(features, train), y)
            return FakeModel(clf.coef_.T, clf.intercept_, head=method != "source-only")
        y = (train["emotion"] == emotion).to_numpy(dtype=int)
        clf.fit(_pool(features, train), y)
        if (method, seed) in self.diverge:
            return FakeModel(np.full_like(clf.coef_[0], np.nan), float("nan"),
                             head=method != "source-only")
        # `thresholds` on: the model decides itself (a fixed 0.3, visible in the labels)
        threshold = 0.3 if config.get("thresholds", "none") != "none" else None
        return FakeModel(clf.coef_[0], float(clf.intercept_[0]), head=method != "source-only",
                         threshold=threshold)

    def backend(self, *, report: bool = False, real_metrics: bool = False) -> Backend:
        """A picklable Backend over this object (module-level functions only)."""
        from fairser.metrics import compare_methods, gap_nulls

        evaluate, probe, gc = fake_evaluate, fake_probe, fake_gc_accuracy
        if real_metrics:
            from fairser.metrics import evaluate_predictions as evaluate
            from fairser.metrics import gc_accuracy as gc
            from fairser.metrics import gender_probe as probe

        return Backend(
            load_corpus=self.load_corpus, extract=self.extract, fit=self.fit,
            train_config=fake_train_config,
            methods=("source-only", "pa", "pa-rew", "pa-fairw", "pa-adv", "pa-cfa"),
            evaluate=evaluate, gender_probe=probe, gc_accuracy=gc,
            table_markdown=fake_table if report else None,
            write_report=fake_write_report if report else None, load_model=FakeModel.load,
            compare_methods=compare_methods if report else None, mlp_probe=fake_probe,
            gap_nulls=gap_nulls if report else None)


def fake_train_config(options):
    from fairser.errors import ConfigError

    stray = set(options) - {"C", "task", "classes", "alpha", "beta", "thresholds",
                            "input_norm", "threshold_strength", "device", "num_workers",
                            "cache_mb"}
    if stray:
        raise ConfigError(f"training: unknown key(s) {sorted(stray)}")
    return dict(options)


def fake_evaluate(y_true, y_pred, *, sensitive_features, speakers, n_boot, seed, confidence):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    g = np.asarray(sensitive_features)

    def uar(mask):
        return float(np.mean([np.mean(y_pred[mask & (y_true == c)] == c)
                              for c in np.unique(y_true[mask])]))

    sel = {k: float(np.mean(y_pred[g == k] == 1)) for k in ("M", "F")}
    return {"uar": uar(np.ones_like(g, dtype=bool)), "uar_m": uar(g == "M"),
            "uar_f": uar(g == "F"), "dsp": abs(sel["M"] - sel["F"]),
            "deo_max": 0.1, "deo_sum": 0.2, "uar_lo": 0.0, "uar_hi": 1.0}


def fake_probe(x, *, sensitive_features, groups):
    return float(np.mean((x[:, 4] > 0) == (np.asarray(sensitive_features) == "M")))


def fake_gc_accuracy(truth, pred):
    if pred is None:
        return float("nan")
    return float(np.mean(np.asarray(truth) == np.asarray(pred)))


def fake_table(results):
    return f"| rows |\n|---|\n| {len(results)} |\n"


def fake_write_report(results, out_dir, *, embeddings=None, title="", meta=None,
                      comparisons=None, gap_nulls=None):
    path = Path(out_dir) / "report.html"
    n_cmp = 0 if comparisons is None else len(comparisons)
    n_null = 0 if gap_nulls is None else len(gap_nulls)
    path.write_text(f"<html>{title} {len(results)} {sorted(embeddings or {})} "
                    f"comparisons={n_cmp} gap_nulls={n_null}</html>")
    return path


def recipe_grid_config(name: str, *, methods: list, probe: dict) -> Any:
    """A one-seed, one-emotion grid of the fake corpora with tiny real training (the recipe
    tests' shared experiment; ``methods`` and ``probe`` vary)."""
    from fairser.experiments import parse_config

    return parse_config({
        "name": name, "source": "fake-source:/x", "targets": ["fake-target:/y"],
        "emotions": ["angry", "happy", "sad", "neutral"], "run_emotions": ["angry"],
        "methods": methods, "seeds": [0], "linear_baseline": False,
        "bootstrap": {"n_resamples": 0}, "probe": probe,
        "training": {"stage1_epochs": 2, "stage2_epochs": 1, "batch_size": 16,
                     "num_threads": 1, "speaker_norm_min_utterances": 2,
                     "model": {"d_model": 16, "n_heads": 2, "ff_dim": 16, "embed_dim": 8,
                               "gc_hidden": 8}}})


@dataclass(frozen=True)
class EnvTask:
    """A stand-in for a FitTask: what the executors read of one (index, fit id, cost)."""

    index: int
    fit_id: str
    cost: float = 1.0


def visible_devices_fit(ctx, task):
    """A 'fit' that reports its worker's pid and the GPUs that worker may see."""
    import time

    time.sleep(0.3)
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")
