"""``fit()`` and :class:`FittedModel`: the public training API."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairser.decision import decide
from fairser.errors import TrainingError
from fairser.methods import Method, get_method
from fairser.models import FairSERNet, NetSpec
from fairser.training.anchors import anchor_assignments
from fairser.training.checkpoint import (
    Checkpointer,
    atomic_write_text,
    load_tensors,
    save_tensors,
)
from fairser.training.config import TrainConfig, coerce_config
from fairser.training.data import (
    FeatureSource,
    LabelSpace,
    Split,
    feature_stats,
    make_split,
    select_rows,
    stack_features,
)
from fairser.training.loop import FitData, run_stages
from fairser.training.norm import CorpusStats
from fairser.training.pseudo import pseudo_groups

__all__ = ["FittedModel", "Outputs", "Prepared", "fit", "prepare_fit"]

_MODEL_FILE = "model.safetensors"
_META_FILE = "model.json"
_HISTORY_FILE = "history.json"
_NORM_FILE = "input_norm.safetensors"


@dataclass(frozen=True)
class Outputs:
    """Everything one pass of a fitted model over a manifest gives.

    Attributes
    ----------
    proba : numpy.ndarray
        (n,) P(positive) for binary, (n, C) class probabilities for multiclass.
    embedding : numpy.ndarray
        (n, E) shared embeddings.
    attribute : numpy.ndarray or None
        (n,) attribute values predicted by the model's own gender head (None without one).
    """

    proba: np.ndarray
    embedding: np.ndarray
    attribute: np.ndarray | None


class FittedModel:
    """A trained network with everything needed to apply it to new rows.

    Use :func:`fit` to make one and :meth:`load` to read one back.

    Parameters
    ----------
    net : FairSERNet
        The trained network.
    meta : dict
        Method, label space, attribute groups, resolved config, feature description.
    history : dict
        Per-epoch losses and dev scores, best epochs, extra measurements.
    input_stats : CorpusStats, optional
        Per-corpus input statistics; required when the config's ``input_norm`` is
        ``per-corpus`` (every row is then standardised with its corpus's statistics before
        the network, see :class:`~fairser.training.config.TrainConfig`), unused otherwise.

    Raises
    ------
    TrainingError
        When ``input_norm`` is ``per-corpus`` and ``input_stats`` is missing.
    """

    def __init__(
        self,
        net: FairSERNet,
        *,
        meta: dict[str, Any],
        history: dict[str, Any],
        input_stats: CorpusStats | None = None,
    ) -> None:
        self.net = net.eval()
        self.meta = meta
        self.history = history
        self.labels = LabelSpace.from_dict(meta["labels"])
        self.config = TrainConfig.model_validate(meta["config"])
        if self.config.input_norm == "per-corpus" and input_stats is None:
            raise TrainingError(
                "a model trained with input_norm: per-corpus needs its per-corpus statistics; "
                "pass input_stats= (FittedModel.load reads them from the saved folder)"
            )
        self.input_stats = input_stats if self.config.input_norm == "per-corpus" else None

    # -- properties ---------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """Registry name of the training method."""
        return str(self.meta["method"])

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names: ``("rest", EMOTION)`` for binary, the classes for multiclass."""
        return self.labels.classes

    @property
    def groups(self) -> tuple[str, ...]:
        """Attribute values, in the gender head's output order."""
        return tuple(self.meta["groups"])

    @property
    def attribute(self) -> str:
        """Manifest column of the protected attribute."""
        return str(self.meta["attribute"])

    # -- inference ----------------------------------------------------------------------------
    def encode_labels(self, manifest: pd.DataFrame) -> np.ndarray:
        """True labels of ``manifest`` in the model's label space (-1 outside the task)."""
        if "emotion" not in manifest.columns:
            raise TrainingError("manifest has no emotion column; add it to score predictions")
        return self.labels.encode(manifest["emotion"])

    def outputs(
        self, manifest: pd.DataFrame, features: FeatureSource, *, batch_size: int | None = None
    ) -> Outputs:
        """Probabilities, embeddings and own-head attribute predictions for every row.

        Parameters
        ----------
        manifest : pandas.DataFrame
            Rows to score (any split; labels are not read). With ``input_norm: per-corpus``
            the rows of a corpus unseen in training are standardised with the statistics of
            those rows (at least ``input_norm_min_rows`` of them, else with the source
            statistics and a warning).
        features : FeatureSource
            Features holding every row (same frontend and layers as in training).
        batch_size : int, optional
            Rows per forward pass (default: the config's ``eval_batch_size``).

        Returns
        -------
        Outputs
        """
        self._check_features(features)
        rows = select_rows(manifest, split=None, what="predict")
        x, mask, lengths = stack_features(
            rows,
            features,
            frame_stride=self.config.frame_stride,
            max_frames=self.config.max_frames,
            what="predict",
        )
        if self.input_stats is not None:
            x = self.input_stats.normalise(x, mask, rows["corpus"].astype(str), what="predict")
        bs = batch_size or self.config.eval_batch_size
        probs, embs, atts = [], [], []
        binary = self.labels.task == "binary"
        with torch.inference_mode():
            for i in range(0, len(rows), bs):
                t = int(lengths[i : i + bs].max())
                out = self.net(x[i : i + bs, :, :t], mask[i : i + bs, :t])
                p = torch.sigmoid(out.logits) if binary else torch.softmax(out.logits, -1)
                probs.append(p.numpy())
                embs.append(out.embedding.numpy())
                if out.gender_logits is not None:
                    atts.append(out.gender_logits.argmax(-1).numpy())
        n_out = () if binary else (len(self.classes),)
        proba = np.concatenate(probs) if probs else np.zeros((0, *n_out), np.float32)
        emb = np.concatenate(embs) if embs else np.zeros((0, self.net.spec.embed_dim), np.float32)
        att = None
        if self.net.gender is not None:
            idx = np.concatenate(atts) if atts else np.zeros(0, np.int64)
            att = np.asarray(self.groups, dtype=object)[idx]
        return Outputs(proba.astype(np.float64), emb.astype(np.float64), att)

    def predict_proba(self, manifest: pd.DataFrame, features: FeatureSource) -> np.ndarray:
        """(n,) P(positive) for binary; (n, C) class probabilities for multiclass."""
        return self.outputs(manifest, features).proba

    def predict(self, manifest: pd.DataFrame, features: FeatureSource) -> np.ndarray:
        """Hard labels from :func:`fairser.decision.decide` (0/1 at 0.5, or class indices)."""
        p = self.predict_proba(manifest, features)
        return decide(p)

    def embed(self, manifest: pd.DataFrame, features: FeatureSource) -> np.ndarray:
        """(n, E) shared embeddings."""
        return self.outputs(manifest, features).embedding

    def attribute_predict(
        self, manifest: pd.DataFrame, features: FeatureSource
    ) -> np.ndarray | None:
        """Attribute values from the model's own gender head, or None without one."""
        if self.net.gender is None:
            return None
        return self.outputs(manifest, features).attribute

    def _check_features(self, features: FeatureSource) -> None:
        spec = self.net.spec
        if int(features.n_layers) != spec.n_layers_in or int(features.dim) != spec.in_dim:
            raise TrainingError(
                f"features have {features.n_layers} layer(s) of width {features.dim}, the model "
                f"was trained on {spec.n_layers_in} of width {spec.in_dim}; extract features "
                f"with frontend {self.meta['features'].get('frontend')!r} and layers "
                f"{self.meta['features'].get('layers')}"
            )

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write weights (safetensors), metadata and history (JSON) into ``directory``.

        A ``per-corpus`` model also writes its per-corpus input statistics
        (``input_norm.safetensors``). The metadata file is written last.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_tensors(
            d / _MODEL_FILE, dict(self.net.state_dict()), {"spec": self.net.spec.to_dict()}
        )
        if self.input_stats is not None:
            self.input_stats.save(d / _NORM_FILE)
        atomic_write_text(d / _HISTORY_FILE, json.dumps(self.history, indent=1, default=float))
        atomic_write_text(d / _META_FILE, json.dumps(self.meta, indent=1, sort_keys=True))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> FittedModel:
        """Read a model written by :meth:`save`.

        Raises
        ------
        TrainingError
            When a file is missing or unreadable.
        """
        d = Path(directory)
        try:
            meta = json.loads((d / _META_FILE).read_text(encoding="utf-8"))
            history = json.loads((d / _HISTORY_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainingError(
                f"{d}: not a saved fairser model ({type(exc).__name__}: {exc}); "
                "point at the folder FittedModel.save wrote"
            ) from None
        tensors, _ = load_tensors(d / _MODEL_FILE)
        net = FairSERNet(NetSpec(**meta["spec"]))
        net.load_state_dict(tensors)
        stats = None
        if meta.get("config", {}).get("input_norm", "source") == "per-corpus":
            stats = CorpusStats.load(d / _NORM_FILE)
        return cls(net, meta=meta, history=history, input_stats=stats)

    def __repr__(self) -> str:
        return (
            f"FittedModel(method={self.method!r}, task={self.labels.task!r}, "
            f"classes={list(self.classes)}, groups={list(self.groups)})"
        )


# ------------------------------------------------------------------------------------------------
def _label_space(cfg: TrainConfig, emotion: str | Sequence[str] | None) -> LabelSpace:
    if cfg.task == "binary":
        if not isinstance(emotion, str) or not emotion:
            raise TrainingError(
                f"task binary needs emotion= one emotion name (e.g. 'angry'), got {emotion!r}"
            )
        neg = None if cfg.negatives is None else tuple(cfg.negatives)
        if neg is not None and emotion in neg:
            raise TrainingError(f"negatives {list(neg)} contain the positive emotion {emotion!r}")
        return LabelSpace("binary", ("rest", emotion), emotion, neg)
    if isinstance(emotion, str):
        raise TrainingError(
            "task multiclass takes emotion=None (config classes) or a list of class names, "
            f"not {emotion!r}"
        )
    classes = tuple(emotion) if emotion is not None else tuple(cfg.classes)
    if len(set(classes)) < 2:
        raise TrainingError(f"multiclass needs at least two distinct classes, got {list(classes)}")
    return LabelSpace("multiclass", classes)


def _labelled(rows: pd.DataFrame, labels: LabelSpace) -> pd.DataFrame:
    y = labels.encode(rows["emotion"])
    return rows.loc[y >= 0].reset_index(drop=True)


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, torch.Tensor):
            h.update(p.numpy().tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass(frozen=True)
class Prepared:
    """Validated inputs of a fit, stacked into tensors (see :func:`prepare_fit`).

    Attributes
    ----------
    config : TrainConfig
    method : Method
        The method instance.
    spec : NetSpec
        Network architecture.
    data : FitData
        Pre-stacked training data.
    meta : dict
        What :class:`FittedModel` stores (fingerprint included).
    extra : dict
        Measurements made while preparing (e.g. pseudo-label accuracy).
    seed : int
    mean, std : torch.Tensor
        Statistics of the network's input standardisation: those of the source training
        frames (``input_norm: source``), or 0 and 1 (``per-corpus``: the stacked features
        are already standardised per corpus).
    input_stats : CorpusStats or None
        Per-corpus statistics (``per-corpus`` only).
    """

    config: TrainConfig
    method: Method
    spec: NetSpec
    data: FitData
    meta: dict[str, Any]
    extra: dict[str, Any]
    seed: int
    mean: torch.Tensor
    std: torch.Tensor
    input_stats: CorpusStats | None = None

    def build_net(self) -> FairSERNet:
        """A freshly initialised network (torch seeded with :attr:`seed`)."""
        torch.manual_seed(self.seed)
        net = FairSERNet(self.spec)
        net.project.set_stats(self.mean, self.std)
        return net


def prepare_fit(
    *,
    source: pd.DataFrame,
    target: pd.DataFrame | None,
    features: FeatureSource,
    method: str,
    emotion: str | Sequence[str] | None,
    config: TrainConfig | dict[str, Any] | None = None,
    seed: int = 0,
) -> Prepared:
    """Validate the inputs and stack everything a fit trains on (no training).

    Same parameters and errors as :func:`fit`; benchmarks use it to time the loop alone.

    Returns
    -------
    Prepared
    """
    cfg = coerce_config(config)
    m_cls = get_method(method)
    meth = m_cls(cfg)
    labels = _label_space(cfg, emotion)
    attr = cfg.attribute

    src = select_rows(source, split=None, what="source", columns=("emotion",))
    tr_rows = _labelled(select_rows(src, split=cfg.source_train_split, what="source"), labels)
    dev_rows = _labelled(select_rows(src, split=cfg.source_dev_split, what="source"), labels)
    if len(tr_rows) == 0 or len(dev_rows) == 0:
        which = cfg.source_train_split if len(tr_rows) == 0 else cfg.source_dev_split
        raise TrainingError(
            f"source manifest: no labelled rows of split '{which}' for classes "
            f"{list(labels.classes)}; give the source that split or set "
            "source_train_split/source_dev_split"
        )
    y_tr = labels.encode(tr_rows["emotion"])
    n_classes = 2 if labels.task == "binary" else len(labels.classes)
    missing = sorted(set(range(n_classes)) - set(y_tr.tolist()))
    if missing:
        raise TrainingError(
            f"source split '{cfg.source_train_split}': no rows of class "
            f"{labels.classes[missing[0]]!r}; choose another emotion or corpus"
        )
    tgt_rows = None
    if meth.uses_target:
        if target is None:
            raise TrainingError(f"method {method!r} needs a target manifest; pass target=")
        tgt_rows = select_rows(target, split=cfg.target_split, what="target")
        # Target emotion labels are never used: drop them before anything else sees the rows.
        tgt_rows = tgt_rows.drop(columns=["emotion"], errors="ignore")
        if len(tgt_rows) < 2:
            raise TrainingError(
                f"target manifest: {len(tgt_rows)} row(s) of split {cfg.target_split!r}; "
                "set target_split (null: every row) so that stage 2 has target data"
            )
    needs_groups = meth.uses_groups
    if needs_groups and attr not in src.columns:
        raise TrainingError(
            f"source manifest: method {method!r} needs the attribute column {attr!r}; "
            "add it or set attribute: to an existing column"
        )
    values: set[str] = set()
    for frame in (tr_rows, tgt_rows if cfg.target_gender == "labels" else None):
        if frame is not None and attr in frame.columns:
            values |= set(frame[attr].astype("string").dropna().tolist())
    groups = tuple(sorted(values))
    if meth.adversarial and len(groups) < 2:
        raise TrainingError(
            f"method {method!r} needs at least two values of {attr!r} in the training rows, "
            f"found {list(groups)}; check the {attr} column"
        )

    kw = {"frame_stride": cfg.frame_stride, "max_frames": cfg.max_frames, "attribute": attr}
    train = make_split(tr_rows, features, labels=labels, groups=groups, what="source train", **kw)
    dev = make_split(dev_rows, features, labels=labels, groups=groups, what="source dev", **kw)
    tgt: Split | None = None
    if tgt_rows is not None:
        tgt = make_split(tgt_rows, features, labels=None, groups=groups, what="target", **kw)
    mean, std = feature_stats(train.x, train.mask)
    input_stats: CorpusStats | None = None
    if cfg.input_norm == "per-corpus":
        # Standardise every row once, here, with its own corpus's statistics; the network's
        # buffers become 0/1 and the loop, anchors and pseudo labels all see these features.
        parts = [(train.x, train.mask, tr_rows["corpus"].astype(str).to_numpy())]
        if tgt is not None and tgt_rows is not None:
            parts.append((tgt.x, tgt.mask, tgt_rows["corpus"].astype(str).to_numpy()))
        input_stats = CorpusStats.from_splits(
            parts, fallback=(mean, std), min_rows=cfg.input_norm_min_rows
        )
        train = _normalised(train, tr_rows, input_stats, "source train")
        dev = _normalised(dev, dev_rows, input_stats, "source dev")
        if tgt is not None and tgt_rows is not None:
            tgt = _normalised(tgt, tgt_rows, input_stats, "target")
        mean, std = torch.zeros_like(mean), torch.ones_like(std)

    extra: dict[str, Any] = {}
    if tgt is not None and meth.adversarial and cfg.target_gender == "pseudo":
        # tgt.g holds the true attribute where the manifest has one: used only to score.
        pg, acc = pseudo_groups(train, tgt, mean=mean, std=std, seed=seed)
        tgt = tgt.with_groups(pg)
        extra["pseudo_gender_accuracy"] = acc

    counts = np.bincount(y_tr, minlength=n_classes).astype(np.float64)
    class_weights = (
        len(y_tr) / (n_classes * np.maximum(counts, 1.0))
        if cfg.balance == "weights"
        else np.ones(n_classes)
    )

    fingerprint = {
        "config": cfg.digest(),
        "method": method,
        "labels": labels.to_dict(),
        "seed": int(seed),
        "groups": list(groups),
        "data": _digest(
            list(train.keys),
            train.y,
            train.g,
            list(dev.keys),
            dev.y,
            None if tgt is None else list(tgt.keys),
            None if tgt is None else tgt.g,
            [int(features.n_layers), int(features.dim)],
            mean,
            *(
                []
                if input_stats is None
                else [
                    input_stats.corpora,
                    *(t for c in input_stats.corpora for t in input_stats.stats[c]),
                ]
            ),
        ),
    }
    feat_meta = {
        "frontend": getattr(features, "frontend", None),
        "layers": _jsonable(getattr(features, "layers", None)),
        "n_layers": int(features.n_layers),
        "dim": int(features.dim),
    }
    meta = {
        "method": method,
        "labels": labels.to_dict(),
        "attribute": attr,
        "groups": list(groups),
        "config": cfg.model_dump(mode="json"),
        "seed": int(seed),
        "features": feat_meta,
        "fingerprint": fingerprint,
    }
    if input_stats is not None:
        meta["input_norm"] = {"mode": cfg.input_norm, "corpora": list(input_stats.corpora)}
    spec = NetSpec(
        n_layers_in=int(features.n_layers),
        in_dim=int(features.dim),
        n_outputs=labels.n_outputs,
        n_groups=len(groups) if meth.adversarial else 0,
        beta=cfg.beta,
        **cfg.model.model_dump(),
    )
    meta["spec"] = spec.to_dict()
    tr_anchors = tgt_anchors = None
    if tgt is not None and cfg.alignment == "anchors":
        tr_anchors, tgt_anchors = anchor_assignments(
            [(train, tr_rows), (tgt, tgt_rows)],
            features,
            mean=mean,
            std=std,
            n_anchors=cfg.n_anchors,
            frame_stride=cfg.frame_stride,
            max_frames=cfg.max_frames,
            energy_quantile=cfg.anchor_energy_quantile,
            seed=seed,
        )
    data = FitData(
        train=train,
        dev=dev,
        target=tgt,
        n_classes=n_classes,
        n_groups=len(groups),
        class_weights=class_weights,
        train_anchors=tr_anchors,
        target_anchors=tgt_anchors,
    )
    return Prepared(
        config=cfg,
        method=meth,
        spec=spec,
        data=data,
        meta=meta,
        extra=extra,
        seed=int(seed),
        mean=mean,
        std=std,
        input_stats=input_stats,
    )


def fit(
    *,
    source: pd.DataFrame,
    target: pd.DataFrame | None,
    features: FeatureSource,
    method: str,
    emotion: str | Sequence[str] | None,
    config: TrainConfig | dict[str, Any] | None = None,
    seed: int = 0,
    workdir: str | Path | None = None,
    progress: bool = True,
) -> FittedModel:
    """Train one model.

    Parameters
    ----------
    source : pandas.DataFrame
        Source manifest: rows of split ``config.source_train_split`` train the model, rows of
        ``config.source_dev_split`` select it (early stopping). Emotion and attribute are used.
    target : pandas.DataFrame or None
        Target manifest: rows of ``config.target_split`` (all rows when None) are used in stage
        2 with their attribute only (or pseudo attributes); target emotion labels never.
        May be None for ``source-only``.
    features : FeatureSet
        Features of every used row (``features[f"{corpus}/{utt_id}"]`` of shape (L, T, D)).
    method : str
        A name of :data:`fairser.methods.METHODS`.
    emotion : str or list of str or None
        Binary task: the positive emotion. Multiclass: None (config ``classes``) or the classes.
    config : TrainConfig or dict, optional
        Options (validated; unknown keys are errors).
    seed : int
        Seed of every random choice: same seed, same model.
    workdir : str or pathlib.Path, optional
        Folder for checkpoints (``checkpoints/``, removed once the run is finished), the
        resolved config (``config.json``) and the finished model (``model/``); a rerun after
        a kill resumes from the last finished epoch, and a rerun of a finished run loads it.
    progress : bool
        Show progress bars.

    Returns
    -------
    FittedModel

    Raises
    ------
    TrainingError
        For unusable data (missing rows, features or classes), naming the fix.
    ConfigError
        For an invalid config or method name.
    """
    t0 = time.perf_counter()
    prep = prepare_fit(
        source=source,
        target=target,
        features=features,
        method=method,
        emotion=emotion,
        config=config,
        seed=seed,
    )
    cfg, meta, data = prep.config, prep.meta, prep.data
    fingerprint = meta["fingerprint"]
    wd = Path(workdir) if workdir is not None else None
    if wd is not None and (wd / "model" / _META_FILE).exists():
        done = FittedModel.load(wd / "model")
        if done.meta.get("fingerprint") == fingerprint:
            return done
        raise TrainingError(
            f"{wd}: holds a finished run with another config, data, method or seed; "
            "use another workdir or delete this one"
        )
    with _threads(cfg.num_threads), torch.random.fork_rng(devices=[]):
        net = prep.build_net()
        ckpt = Checkpointer(wd / "checkpoints", fingerprint) if wd is not None else None
        if wd is not None:
            atomic_write_text(
                wd / "config.json", json.dumps(meta["config"], indent=1, sort_keys=True)
            )
        history = run_stages(
            net,
            method=prep.method,
            cfg=cfg,
            data=data,
            seed=seed,
            checkpointer=ckpt,
            progress=progress,
        )
    history.update(prep.extra)
    history["layer_weights"] = net.project.layers.weights().tolist()
    history["n_rows"] = {
        "source_train": len(data.train),
        "source_dev": len(data.dev),
        "target": 0 if data.target is None else len(data.target),
    }
    history["seconds"] = time.perf_counter() - t0
    model = FittedModel(net, meta=meta, history=history, input_stats=prep.input_stats)
    if wd is not None:
        model.save(wd / "model")
        # the finished model supersedes the checkpoints (a rerun loads the model)
        shutil.rmtree(wd / "checkpoints", ignore_errors=True)
    return model


def _normalised(split: Split, rows: pd.DataFrame, stats: CorpusStats, what: str) -> Split:
    """``split`` with every row standardised by its corpus's statistics."""
    x = stats.normalise(split.x, split.mask, rows["corpus"].astype(str).to_numpy(), what=what)
    return dataclasses.replace(split, x=x)


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    try:
        return int(v)
    except (TypeError, ValueError):
        return str(v)
