"""The grid runner: corpora -> features -> fit every grid point -> evaluate -> store -> report.

:func:`run_experiment` is what ``fairser run EXPERIMENT.yaml`` calls. It

1. loads the source and target corpora, keeps the configured emotions, splits the source
   (train / dev / test) and the targets (adaptation rows / evaluation rows);
2. extracts or reuses features for every row (the feature store caches them);
3. computes the references once per corpus and condition: the gender probe on mean-pooled input
   features (``probe_input``) and, if enabled, the ``linear-probe`` floor (logistic regression
   on mean-pooled, z-normed input features trained on the source train split);
4. fits every grid point ``method x emotion x seed x target x condition x sweep`` that has no
   record yet, evaluates it on the source test split (``role = source``) and on the target's
   evaluation rows (``role = target``), saves the model and writes the record atomically;
5. gathers the records of the current grid into ``results.parquet`` / ``results.csv``,
   ``per_speaker.csv``, ``predictions.parquet``, ``comparisons.csv`` (paired speaker-bootstrap
   tests of every method against source-only, seeds averaged), ``table.md`` and
   ``report.html``.

A run is identified by its grid coordinates plus the hash of every option that changes its
result (``config_hash``), so a rerun of the same command skips finished runs, and editing an
option re-runs exactly the runs it affects.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fairser.decision import decide
from fairser.errors import ConfigError, FairserError
from fairser.experiments.backend import Backend, default_backend
from fairser.experiments.config import ExperimentConfig, SubsampleSpec, config_hash
from fairser.experiments.data import (
    apply_subsample,
    restrict_emotions,
    source_with_splits,
    target_roles,
)
from fairser.experiments.store import (
    ResultsStore,
    atomic_write_frame,
    atomic_write_text,
    safe_name,
)

__all__ = [
    "BASELINE_METHOD",
    "RESULT_COLUMNS",
    "ExperimentResult",
    "RunSpec",
    "check_config",
    "plan_runs",
    "pooled_features",
    "run_experiment",
    "run_id",
]

#: Name of the linear floor in the ``method`` column.
BASELINE_METHOD = "linear-probe"

#: Leading columns of results.csv (CI and sweep columns follow).
RESULT_COLUMNS: tuple[str, ...] = (
    "method", "emotion", "seed", "corpus", "role", "target", "condition", "sweep",
    "uar", "uar_m", "uar_f", "dsp", "deo_max", "deo_sum", "gc_acc", "probe", "probe_input",
    "n", "n_m", "n_f", "config_hash", "run_id", "fit_s",
)

_MODEL_INFO = "run.json"


@dataclass(frozen=True)
class RunSpec:
    """One grid point.

    Attributes
    ----------
    method : str
        Method registry name (or ``linear-probe``).
    emotion : str
        Positive emotion of the binary task, or ``all`` for multiclass.
    seed : int
        Training seed.
    target : str
        Label of the target corpus.
    condition : str
        Label of the source condition (``source_subsample``).
    sweep : tuple of (str, value)
        Training options overridden at this point (empty without a sweep).
    """

    method: str
    emotion: str
    seed: int
    target: str
    condition: str
    sweep: tuple[tuple[str, Any], ...] = ()

    @property
    def sweep_label(self) -> str:
        """``alpha=0.5,beta=1`` or empty."""
        return ",".join(f"{k}={v}" for k, v in self.sweep)

    @property
    def key(self) -> str:
        """Human-readable grid coordinates (file-name safe)."""
        parts = [self.method, self.emotion, f"seed{self.seed}", self.target, self.condition]
        if self.sweep:
            parts.append(self.sweep_label)
        return safe_name("__".join(parts))


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` produced.

    Attributes
    ----------
    out_dir : Path
        The run folder.
    results : DataFrame
        One row per run x evaluated corpus (also in results.parquet / results.csv).
    per_speaker : DataFrame
        Per-speaker figures of every evaluation.
    n_runs, n_skipped : int
        Grid points in the plan, and those found finished and skipped.
    wall_s : float
        Seconds this call took.
    report : Path or None
        report.html, when written.
    table : Path or None
        table.md, when written.
    """

    out_dir: Path
    results: pd.DataFrame
    per_speaker: pd.DataFrame
    n_runs: int
    n_skipped: int
    wall_s: float
    report: Path | None = None
    table: Path | None = None
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------- planning
def plan_runs(cfg: ExperimentConfig) -> list[RunSpec]:
    """Every grid point of ``cfg``, seed-major so a partial grid covers all methods early.

    Order: condition, target, seed, emotion, method, sweep point.
    """
    plan: list[RunSpec] = []
    for cond in cfg.source_subsample:
        for target in cfg.targets:
            for seed in cfg.seeds:
                for emotion in cfg.grid_emotions():
                    for method in cfg.methods:
                        for point in cfg.sweep_points(method):
                            plan.append(RunSpec(method=method, emotion=emotion, seed=seed,
                                                target=target.label, condition=cond.label,
                                                sweep=tuple(point.items())))
    return plan


def _training_options(cfg: ExperimentConfig, sweep: Iterable[tuple[str, Any]] = ()
                      ) -> dict[str, Any]:
    opts = {**cfg.training, **dict(sweep)}
    for key, value in (("task", cfg.task),):
        if key in opts and opts[key] != value:
            raise ConfigError(f"training.{key} is {opts[key]!r} but the experiment's {key} is "
                              f"{value!r}; set it once, at the top level")
        opts[key] = value
    if cfg.task == "multiclass":
        if "classes" in opts and list(opts["classes"]) != list(cfg.emotions):
            raise ConfigError("training.classes differs from emotions; list the classes once, "
                              "under `emotions`")
        opts["classes"] = list(cfg.emotions)
    return opts


def check_config(cfg: ExperimentConfig, backend: Backend) -> None:
    """Validate the parts of ``cfg`` that depend on the lower layers, before any work.

    Raises
    ------
    ConfigError
        Unknown method, or training / sweep options the training layer rejects.
    """
    unknown = [m for m in cfg.methods if m not in backend.methods]
    if unknown:
        raise ConfigError(f"methods: unknown method(s) {unknown}; use one of "
                          f"{', '.join(backend.methods)}")
    for method in cfg.methods:
        for point in cfg.sweep_points(method):
            backend.train_config(_training_options(cfg, point.items()))


def _cond(cfg: ExperimentConfig, label: str) -> SubsampleSpec:
    return next(c for c in cfg.source_subsample if c.label == label)


def _run_payload(cfg: ExperimentConfig, spec: RunSpec) -> dict[str, Any]:
    """Everything that changes the result of ``spec`` (hashed into ``config_hash``)."""
    target = next(t for t in cfg.targets if t.label == spec.target)
    try:
        version = metadata.version("fairser")
    except metadata.PackageNotFoundError:  # pragma: no cover - source checkout without install
        version = "0"
    return {
        "fairser": version,
        "source": cfg.source.model_dump(mode="json"),
        "target": target.model_dump(mode="json"),
        "emotions": cfg.emotions,
        "task": cfg.task,
        "restrict_emotions": cfg.restrict_emotions,
        "features": {"frontend": cfg.features.frontend, "layers": cfg.features.layers},
        "training": ({"linear_baseline_norm": cfg.linear_baseline_norm}
                     if spec.method == BASELINE_METHOD else _training_options(cfg, spec.sweep)),
        "condition": _cond(cfg, spec.condition).model_dump(mode="json"),
        "source_split": cfg.source_split.model_dump(mode="json"),
        "target_split": cfg.target_split.model_dump(mode="json"),
        "bootstrap": cfg.bootstrap.model_dump(mode="json"),
        "probe": cfg.probe.model_dump(mode="json"),
        "spec": [spec.method, spec.emotion, spec.seed],
    }


def run_id(cfg: ExperimentConfig, spec: RunSpec) -> tuple[str, str]:
    """``(run_id, config_hash)`` of a grid point."""
    digest = config_hash(_run_payload(cfg, spec))
    return f"{spec.key}__{digest}", digest


# ------------------------------------------------------------------------------- evaluation
def pooled_features(features: Any, manifest: pd.DataFrame) -> np.ndarray:
    """Mean over frames of every row's features, layers concatenated -> ``(n, L * D)`` float32.

    The same pooling as :func:`fairser.metrics.pool_frames` (the probe's input reference).
    """
    keys = _keys(manifest)
    if not keys:
        return np.empty((0, int(features.dim) * int(features.n_layers)), dtype=np.float32)
    rows = []
    for key in keys:
        arr = np.asarray(features[key], dtype=np.float32)
        arr = arr[None] if arr.ndim == 2 else arr
        rows.append(arr.mean(axis=1).reshape(-1))
    return np.stack(rows)


def _keys(manifest: pd.DataFrame) -> list[str]:
    return [f"{c}/{u}" for c, u in zip(manifest["corpus"], manifest["utt_id"], strict=True)]


def _labels(manifest: pd.DataFrame, cfg: ExperimentConfig, emotion: str) -> np.ndarray:
    emo = manifest["emotion"].astype("string")
    if cfg.task == "binary":
        return (emo == emotion).fillna(False).to_numpy(dtype=int)
    index = {e: i for i, e in enumerate(cfg.emotions)}
    return np.array([index.get(e, -1) if isinstance(e, str) else -1 for e in emo], dtype=int)


def _gender(manifest: pd.DataFrame) -> np.ndarray:
    return manifest["gender"].astype("string").fillna("NA").to_numpy(dtype=object)


def _probe(backend: Backend, cfg: ExperimentConfig, x: np.ndarray, df: pd.DataFrame) -> float:
    if not cfg.probe.enabled or len(df) == 0:
        return float("nan")
    idx = np.arange(len(df))
    if len(idx) > cfg.probe.max_rows:
        idx = np.sort(np.random.default_rng(0).choice(idx, cfg.probe.max_rows, replace=False))
    genders = _gender(df)[idx]
    speakers = df["speaker"].to_numpy(dtype=object)[idx]
    per_gender = pd.Series(speakers).groupby(pd.Series(genders)).nunique()
    if len(per_gender.drop("NA", errors="ignore")) < 2 or per_gender.min() < 2:
        return float("nan")  # a speaker-disjoint probe needs two speakers of each gender
    return float(backend.gender_probe(x[idx], sensitive_features=genders, groups=speakers))


def _per_speaker(df: pd.DataFrame, y_true: np.ndarray, y_pred: np.ndarray, base: dict[str, Any],
                 *, binary: bool) -> list[dict[str, Any]]:
    rows = []
    for spk, grp in df.groupby("speaker", sort=True):
        i = grp.index.to_numpy()
        yt, yp = y_true[i], y_pred[i]
        row = {**base, "speaker": str(spk), "gender": str(grp["gender"].iloc[0]), "n": len(i),
               "accuracy": float(np.mean(yt == yp))}
        if binary:
            pos, neg = yt == 1, yt == 0
            row["tpr"] = float(np.mean(yp[pos] == 1)) if pos.any() else float("nan")
            row["fpr"] = float(np.mean(yp[neg] == 1)) if neg.any() else float("nan")
            row["selection_rate"] = float(np.mean(yp == 1))
        recalls = [np.mean(yp[yt == c] == c) for c in np.unique(yt)]
        row["uar"] = float(np.mean(recalls)) if recalls else float("nan")
        rows.append(row)
    return rows


def _score(backend: Backend, cfg: ExperimentConfig, *, y_true: np.ndarray, y_pred: np.ndarray,
           df: pd.DataFrame, base: dict[str, Any], gc_acc: float, probe: float,
           probe_input: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    genders = _gender(df)
    metrics = backend.evaluate(
        y_true, y_pred, sensitive_features=genders,
        speakers=df["speaker"].to_numpy(dtype=object),
        n_boot=cfg.bootstrap.n_resamples, seed=cfg.bootstrap.seed,
        confidence=cfg.bootstrap.confidence,
        **({} if cfg.task == "binary" else {"labels": list(range(len(cfg.emotions)))}))
    row = {**base, **{k: _plain(v) for k, v in metrics.items()}, "gc_acc": gc_acc,
           "probe": probe, "probe_input": probe_input, "n": len(df),
           "n_m": int(np.sum(genders == "M")), "n_f": int(np.sum(genders == "F"))}
    return row, _per_speaker(df.reset_index(drop=True), y_true, y_pred, base,
                             binary=cfg.task == "binary")


def _prediction_frame(df: pd.DataFrame, base: dict[str, Any], y_true: np.ndarray,
                      y_pred: np.ndarray, score: np.ndarray | None) -> pd.DataFrame:
    """Per-utterance predictions in the layout of :func:`fairser.metrics.compare_methods`."""
    out = pd.DataFrame({
        "method": base["method"], "emotion": base["emotion"], "seed": base["seed"],
        "corpus": base["corpus"], "role": base["role"], "target": base["target"],
        "condition": base["condition"], "sweep": base["sweep"],
        "utt_id": df["utt_id"].astype(str).to_numpy(),
        "speaker": df["speaker"].astype(str).to_numpy(), "gender": _gender(df),
        "y_true": np.asarray(y_true, dtype=int), "y_pred": np.asarray(y_pred, dtype=int)})
    if score is not None and score.ndim == 1 and len(score) == len(df):
        out["score"] = score.astype(float)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------------- the runner
@dataclass
class _Data:
    source: pd.DataFrame
    adapt: dict[str, pd.DataFrame]
    evals: dict[str, pd.DataFrame]
    features: Any
    notes: list[str]


def _load_data(cfg: ExperimentConfig, backend: Backend, *, progress: bool,
               console: Console) -> _Data:
    notes: list[str] = []
    source = backend.load_corpus(cfg.source.spec, options=dict(cfg.source.options) or None)
    targets = {t.label: backend.load_corpus(t.spec, options=dict(t.options) or None)
               for t in cfg.targets}
    if cfg.restrict_emotions:
        source = restrict_emotions(source, cfg.emotions)
        targets = {k: restrict_emotions(v, cfg.emotions) for k, v in targets.items()}
    for label, df in [(cfg.source.label, source), *targets.items()]:
        if df.empty:
            raise ConfigError(f"corpus {label}: no rows with emotions {cfg.emotions}; check "
                              "`emotions` against the corpus's labels")
    source = source_with_splits(source, cfg.source_split)
    everything = pd.concat([source, *targets.values()], ignore_index=True)
    console.log(f"features: {cfg.features.frontend} layers={cfg.features.layers} for "
                f"{len(everything)} utterances")
    features = backend.extract(everything, cfg.features.frontend, layers=cfg.features.layers,
                               cache_dir=cfg.features.cache_dir, workers=cfg.features.workers,
                               progress=progress)
    bad = getattr(features, "bad", None)

    def keep(df: pd.DataFrame, label: str) -> pd.DataFrame:
        present = np.array([k in features for k in _keys(df)], dtype=bool)
        has_gender = df["gender"].isin(["M", "F"]).fillna(False).to_numpy(dtype=bool)
        n_feat, n_gender = int((~present).sum()), int((present & ~has_gender).sum())
        if n_feat:
            notes.append(f"{label}: {n_feat} utterance(s) without features skipped "
                         "(see the feature store's bad list)")
        if n_gender:
            notes.append(f"{label}: {n_gender} utterance(s) without M/F gender skipped")
        return df.loc[present & has_gender].reset_index(drop=True)

    if bad is not None and len(bad):
        console.log(f"[yellow]{len(bad)} file(s) could not be featurised; they are skipped")
    source = keep(source, cfg.source.label)
    adapt, evals = {}, {}
    for label, df in targets.items():
        a, e = target_roles(keep(df, label), cfg.target_split)
        adapt[label], evals[label] = a, e
    return _Data(source=source, adapt=adapt, evals=evals, features=features, notes=notes)


def _source_train(data: _Data, cfg: ExperimentConfig, condition: str, emotion: str
                  ) -> pd.DataFrame:
    spec = _cond(cfg, condition)
    return apply_subsample(data.source, spec, emotion=None if emotion == "all" else emotion)


def _test_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["split"] == "test").fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)


def _references(cfg: ExperimentConfig, backend: Backend, data: _Data, store: ResultsStore,
                console: Console) -> dict[str, float]:
    """Gender probe on mean-pooled input features, once per corpus (cached in the store).

    Source: every source row (all splits); target: its evaluation rows.
    """
    payload = {"features": {"frontend": cfg.features.frontend, "layers": cfg.features.layers},
               "source": cfg.source.model_dump(mode="json"),
               "targets": [t.model_dump(mode="json") for t in cfg.targets],
               "emotions": cfg.emotions, "restrict": cfg.restrict_emotions,
               "probe": cfg.probe.model_dump(mode="json"),
               "source_split": cfg.source_split.model_dump(mode="json"),
               "target_split": cfg.target_split.model_dump(mode="json")}
    rid = f"reference__{config_hash(payload)}"
    if store.has(rid):
        return store.load(rid)["probe_input"]
    out: dict[str, float] = {}
    if cfg.probe.enabled and cfg.probe.reference:
        corpora = [(cfg.source.label, data.source)] + list(data.evals.items())
        for label, df in corpora:
            out[label] = _probe(backend, cfg, pooled_features(data.features, df), df)
            console.log(f"input-feature gender probe on {label}: {out[label]:.3f}")
    store.save(rid, {"probe_input": out, "config_hash": rid.rsplit("__", 1)[1]})
    return out


def _linear_probe(cfg: ExperimentConfig, backend: Backend, data: _Data, spec: RunSpec,
                  digest: str, probe_input: dict[str, float]) -> dict[str, Any]:
    """The linear floor: logistic regression on mean-pooled, z-normed input features.

    Trained on the source train split (after the condition's subsample), class-balanced, C=1;
    see ``linear_baseline_norm`` for the standardisation.
    """
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    train_all = _source_train(data, cfg, spec.condition, spec.emotion)
    train = train_all[(train_all["split"] == "train").fillna(False).to_numpy(dtype=bool)]
    train = train.reset_index(drop=True)
    x_train = pooled_features(data.features, train)
    mu, sd = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    clf = LogisticRegression(max_iter=3000, class_weight="balanced", C=1.0)
    clf.fit((x_train - mu) / sd, _labels(train, cfg, spec.emotion))
    fit_s = time.perf_counter() - start
    rows, speakers, preds = [], [], []
    for corpus, role, df in _evaluated(cfg, data, spec):
        x = pooled_features(data.features, df)
        if role == "target" and cfg.linear_baseline_norm == "per-corpus":
            adapt = pooled_features(data.features, data.adapt[spec.target])
            y_pred = clf.predict((x - adapt.mean(axis=0)) / (adapt.std(axis=0) + 1e-6))
        else:
            y_pred = clf.predict((x - mu) / sd)
        base = _base(spec, corpus, role, digest, fit_s)
        y_true = _labels(df, cfg, spec.emotion)
        row, spk = _score(backend, cfg, y_true=y_true, y_pred=y_pred,
                          df=df, base=base, gc_acc=float("nan"), probe=float("nan"),
                          probe_input=probe_input.get(corpus, float("nan")))
        rows.append(row)
        speakers.extend(spk)
        preds.append(_prediction_frame(df, base, y_true, y_pred, None))
    return {"rows": rows, "per_speaker": speakers, "fit_s": fit_s, "predictions": preds}


def _evaluated(cfg: ExperimentConfig, data: _Data, spec: RunSpec
               ) -> list[tuple[str, str, pd.DataFrame]]:
    return [(cfg.source.label, "source", _test_rows(data.source)),
            (spec.target, "target", data.evals[spec.target])]


def _base(spec: RunSpec, corpus: str, role: str, digest: str, fit_s: float) -> dict[str, Any]:
    base: dict[str, Any] = {
        "method": spec.method, "emotion": spec.emotion, "seed": spec.seed, "corpus": corpus,
        "role": role, "target": spec.target, "condition": spec.condition,
        "sweep": spec.sweep_label, "config_hash": digest,
        "run_id": f"{spec.key}__{digest}", "fit_s": fit_s}
    for key, value in spec.sweep:
        base[f"sweep_{key}"] = value
    return base


def _model_outputs(model: Any, df: pd.DataFrame, features: Any
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``(proba, y_pred, embeddings, own-head gender or None)`` of ``model`` on ``df``.

    Uses ``model.outputs`` (one forward pass) when the model has it, else the four calls of
    the FittedModel contract.
    """
    if hasattr(model, "outputs"):
        out = model.outputs(df, features)
        proba = np.asarray(out.proba, dtype=float)
        y_pred = decide(proba)
        gc = out.attribute
        emb = out.embedding
    else:
        proba = np.asarray(model.predict_proba(df, features), dtype=float)
        y_pred = np.asarray(model.predict(df, features))
        gc = model.attribute_predict(df, features)
        emb = model.embed(df, features)
    return (proba, np.asarray(y_pred, dtype=int), np.asarray(emb, dtype=np.float32),
            None if gc is None else np.asarray(gc))


def _fit_and_score(cfg: ExperimentConfig, backend: Backend, data: _Data, spec: RunSpec,
                   digest: str, store: ResultsStore, probe_input: dict[str, float],
                   *, keep_embeddings: bool) -> dict[str, Any]:
    source = _source_train(data, cfg, spec.condition, spec.emotion)
    options = _training_options(cfg, spec.sweep)
    start = time.perf_counter()
    model = backend.fit(
        source=source, target=data.adapt[spec.target], features=data.features,
        method=spec.method, emotion=None if spec.emotion == "all" else spec.emotion,
        config=backend.train_config(options), seed=spec.seed,
        workdir=store.root / "work" / safe_name(f"{spec.key}__{digest}"), progress=False)
    fit_s = time.perf_counter() - start
    rows, speakers, emb_parts, preds = [], [], [], []
    for corpus, role, df in _evaluated(cfg, data, spec):
        proba, y_pred, emb, gc = _model_outputs(model, df, data.features)
        score = proba if cfg.task == "binary" else None
        genders = _gender(df)
        gc_acc = float(backend.gc_accuracy(genders, gc))
        probe = _probe(backend, cfg, emb, df)
        base = _base(spec, corpus, role, digest, fit_s)
        y_true = _labels(df, cfg, spec.emotion)
        row, spk = _score(backend, cfg, y_true=y_true, y_pred=y_pred,
                          df=df, base=base, gc_acc=gc_acc, probe=probe,
                          probe_input=probe_input.get(corpus, float("nan")))
        rows.append(row)
        speakers.extend(spk)
        preds.append(_prediction_frame(df, base, y_true, y_pred, score))
        if keep_embeddings and cfg.embeddings_per_corpus:
            take = np.random.default_rng(0).permutation(len(df))[:cfg.embeddings_per_corpus]
            take.sort()
            emb_parts.append((emb[take], genders[take], np.full(len(take), corpus, dtype=object),
                              _labels(df, cfg, spec.emotion)[take]))
    rid = f"{spec.key}__{digest}"
    if cfg.save_models:
        store.save_model(rid, model, {
            "method": spec.method, "emotion": spec.emotion, "seed": spec.seed,
            "target": spec.target, "condition": spec.condition, "sweep": dict(spec.sweep),
            "task": cfg.task, "emotions": cfg.emotions, "frontend": cfg.features.frontend,
            "layers": cfg.features.layers, "config_hash": digest})
    if emb_parts:
        store.save_embeddings(
            rid, embeddings=np.concatenate([p[0] for p in emb_parts]),
            gender=np.concatenate([p[1] for p in emb_parts]).astype(str),
            corpus=np.concatenate([p[2] for p in emb_parts]).astype(str),
            label=np.concatenate([p[3] for p in emb_parts]))
    history = getattr(model, "history", None)
    return {"rows": rows, "per_speaker": speakers, "fit_s": fit_s, "predictions": preds,
            "history": history if isinstance(history, list | dict) else None}


def _git_commit() -> str | None:
    """``HEAD`` of the source checkout (``+dirty`` with local changes), if it is one."""
    import subprocess

    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return head.strip() + ("+dirty" if dirty.strip() else "")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    commit = _git_commit()
    if commit:
        out["git"] = commit
    for pkg in ("fairser", "torch", "transformers", "numpy", "pandas", "scikit-learn",
                "opensmile", "fairlearn"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _order_columns(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    lead = [c for c in RESULT_COLUMNS if c in df.columns]
    return df[lead + [c for c in df.columns if c not in lead]]


def run_experiment(cfg: ExperimentConfig, *, out_dir: Path | str | None = None,
                   progress: bool = True, console: Console | None = None,
                   backend: Backend | None = None, command: str | None = None,
                   on_run: Callable[[RunSpec, bool], None] | None = None) -> ExperimentResult:
    """Run (or resume) the whole grid of ``cfg`` and write the run folder.

    Parameters
    ----------
    cfg : ExperimentConfig
        The validated experiment (:func:`fairser.experiments.load_config`).
    out_dir : path, optional
        Run folder; default ``runs/<cfg.name>`` in the current directory.
    progress : bool, default=True
        Show rich progress bars (extraction and the grid).
    console : rich Console, optional
        Where logs go (default: stderr).
    backend : Backend, optional
        The lower layers; default the real ones (:func:`default_backend`).
    command : str, optional
        The command line recorded in meta.json and the report.
    on_run : callable, optional
        Called as ``on_run(spec, skipped)`` after each grid point (for tests and callers).

    Returns
    -------
    ExperimentResult

    Raises
    ------
    ConfigError, CorpusError, FeatureError, TrainingError
        Anything the user can fix; finished runs stay stored, and a rerun resumes.
    """
    started = time.perf_counter()
    console = console or Console(stderr=True)
    backend = backend or default_backend()
    check_config(cfg, backend)
    out = Path(out_dir) if out_dir is not None else Path("runs") / safe_name(cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(out)
    atomic_write_text(out / "config.json", json.dumps(cfg.model_dump(mode="json"), indent=1))

    data = _load_data(cfg, backend, progress=progress, console=console)
    probe_input = _references(cfg, backend, data, store, console)

    plan = plan_runs(cfg)
    baselines: list[RunSpec] = []
    if cfg.linear_baseline:
        seen = set()
        for spec in plan:
            key = (spec.emotion, spec.target, spec.condition)
            if key not in seen:
                seen.add(key)
                baselines.append(RunSpec(method=BASELINE_METHOD, emotion=spec.emotion,
                                         seed=cfg.seeds[0], target=spec.target,
                                         condition=spec.condition))
    all_specs = baselines + plan
    ids = {spec: run_id(cfg, spec) for spec in all_specs}
    first_seen: set[tuple[str, str, str, str]] = set()
    n_skipped = 0
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
        task = bar.add_task("grid", total=len(all_specs))
        for spec in all_specs:
            rid, digest = ids[spec]
            embed_key = (spec.method, spec.target, spec.condition, spec.sweep_label)
            keep_emb = embed_key not in first_seen
            first_seen.add(embed_key)
            if store.has(rid):
                n_skipped += 1
                bar.advance(task)
                if on_run:
                    on_run(spec, True)
                continue
            bar.update(task, description=f"{spec.key}")
            if spec.method == BASELINE_METHOD:
                record = _linear_probe(cfg, backend, data, spec, digest, probe_input)
            else:
                record = _fit_and_score(cfg, backend, data, spec, digest, store, probe_input,
                                        keep_embeddings=keep_emb)
            store.save_predictions(rid, pd.concat(record.pop("predictions"),
                                                  ignore_index=True))
            store.save(rid, {**record, "spec": {"method": spec.method, "emotion": spec.emotion,
                                                "seed": spec.seed, "target": spec.target,
                                                "condition": spec.condition,
                                                "sweep": dict(spec.sweep)},
                             "config_hash": digest})
            bar.advance(task)
            if not progress:
                target_uar = next((r["uar"] for r in record["rows"] if r["role"] == "target"),
                                  float("nan"))
                console.log(f"run {all_specs.index(spec) + 1}/{len(all_specs)} {spec.key}: "
                            f"target UAR {target_uar:.3f}, fit {record['fit_s']:.1f} s")
            if on_run:
                on_run(spec, False)
        bar.update(task, description="grid done")

    run_ids = [ids[s][0] for s in all_specs]
    results = _order_columns(_numeric(store.rows(run_ids)))
    per_speaker = _numeric(store.rows(run_ids, field="per_speaker"))
    atomic_write_frame(results, out / "results.parquet")
    atomic_write_frame(results, out / "results.csv")
    atomic_write_frame(per_speaker, out / "per_speaker.csv")
    predictions = store.predictions(run_ids)
    if not predictions.empty:
        atomic_write_frame(predictions, out / "predictions.parquet")
    comparisons = _compare(cfg, backend, predictions, console, progress=progress)
    if comparisons is not None:
        atomic_write_frame(comparisons, out / "comparisons.csv")
    wall = time.perf_counter() - started
    compute = float(sum(store.load(r).get("fit_s", 0.0) or 0.0 for r in run_ids))
    meta = {"name": cfg.name, "command": command or " ".join(sys.argv), "wall_s": round(wall, 1),
            "fit_s_total": round(compute, 1), "runs": len(all_specs), "skipped": n_skipped,
            "seeds": cfg.seeds, "frontend": cfg.features.frontend,
            "layers": cfg.features.layers, "target_split": cfg.target_split.mode,
            "notes": data.notes, "versions": _versions(),
            "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    meta["invocations"] = _previous_invocations(out / "meta.json") + [
        {"command": meta["command"], "wall_s": meta["wall_s"], "trained": len(all_specs) -
         n_skipped, "skipped": n_skipped, "finished_utc": meta["finished_utc"]}]
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=1, default=str))
    result = ExperimentResult(out_dir=out, results=results, per_speaker=per_speaker,
                              n_runs=len(all_specs), n_skipped=n_skipped, wall_s=wall,
                              notes=list(data.notes))
    if cfg.report and not results.empty:
        result.table, result.report = _write_outputs(cfg, backend, store, run_ids, results,
                                                     meta, out, comparisons)
    return result


def _compare(cfg: ExperimentConfig, backend: Backend, predictions: pd.DataFrame,
             console: Console, *, progress: bool) -> pd.DataFrame | None:
    """Paired speaker-bootstrap tests of every method against source-only (when present)."""
    if (backend.compare_methods is None or predictions.empty or cfg.bootstrap.n_resamples == 0
            or "source-only" not in set(predictions["method"])):
        return None
    console.log("paired bootstrap tests against source-only")
    extra = {} if cfg.task == "binary" else {"labels": list(range(len(cfg.emotions)))}
    return backend.compare_methods(
        predictions, baseline="source-only", n_boot=cfg.bootstrap.n_resamples,
        confidence=cfg.bootstrap.confidence, seed=cfg.bootstrap.seed, progress=progress,
        **extra)


def _previous_invocations(path: Path) -> list[dict[str, Any]]:
    """The ``invocations`` list of an earlier meta.json (empty if none or unreadable)."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = previous.get("invocations") if isinstance(previous, dict) else None
    return list(found) if isinstance(found, list) else []


def _numeric(df: pd.DataFrame) -> pd.DataFrame:
    """JSON round trips turn NaN into None: restore float columns."""
    for col in df.columns:
        if df[col].dtype == object:
            values = df[col].dropna()
            if len(values) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                   for v in values):
                df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
            elif len(values) == 0:
                df[col] = df[col].astype(float)
    return df


def _write_outputs(cfg: ExperimentConfig, backend: Backend, store: ResultsStore,
                   run_ids: list[str], results: pd.DataFrame, meta: dict[str, Any],
                   out: Path, comparisons: pd.DataFrame | None
                   ) -> tuple[Path | None, Path | None]:
    table_path = report_path = None
    if backend.table_markdown is not None:
        table_path = out / "table.md"
        atomic_write_text(table_path, backend.table_markdown(results))
    if backend.write_report is not None:
        embeddings = _embeddings(store, run_ids)
        extra = {} if comparisons is None else {"comparisons": comparisons}
        report_path = Path(backend.write_report(results, out, embeddings=embeddings,
                                                title=f"fairser: {cfg.name}", meta=meta,
                                                **extra))
    return table_path, report_path


def _embeddings(store: ResultsStore, run_ids: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Stored embedding samples keyed by method (the first stored run of each method)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for rid in run_ids:
        path = store.embeddings_path(rid)
        if not path.is_file():
            continue
        method = rid.split("__", 1)[0]
        if method in out:
            continue
        try:
            with np.load(path, allow_pickle=False) as npz:
                out[method] = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise FairserError(f"{path}: unreadable embedding sample ({type(exc).__name__}); "
                               "delete it and rerun") from exc
    return out
