"""Preparing a fit: validate the inputs and describe every row, before any training.

:func:`prepare_fit` checks the manifests, methods, labels and attribute groups, builds the
row bookkeeping of each part (:class:`~fairser.training.data.Split`), computes the input
statistics in one streaming pass over the source training rows (and, with ``input_norm:
per-corpus``, over each corpus), the pseudo attribute labels and the acoustic anchors when the
config asks for them, and the fingerprint that identifies the run. No step holds more than one
row's frames at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairser.errors import TrainingError
from fairser.methods import Method, get_method
from fairser.models import FairSERNet, NetSpec
from fairser.training.anchors import anchor_assignments
from fairser.training.config import TrainConfig
from fairser.training.config_io import coerce_config
from fairser.training.data import FeatureSource, LabelSpace, Split, make_split, select_rows
from fairser.training.lever_setup import LeverSetup, setup_levers
from fairser.training.loop import FitData
from fairser.training.norm import CorpusStats
from fairser.training.pseudo import pseudo_groups
from fairser.training.rows import RowReader, row_cache, split_arrays, streaming_stats

__all__ = ["Prepared", "label_space", "prepare_fit"]


def label_space(cfg: TrainConfig, emotion: str | Sequence[str] | None) -> LabelSpace:
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
        elif isinstance(p, np.ndarray):
            h.update(p.tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Prepared:
    """Validated inputs of a fit and the bookkeeping of its rows (see :func:`prepare_fit`).

    Attributes
    ----------
    config : TrainConfig
    method : Method
        The method instance.
    spec : NetSpec
        Network architecture.
    data : FitData
        The rows of the fit and how to read them.
    meta : dict
        What :class:`FittedModel` stores (fingerprint included).
    extra : dict
        Measurements made while preparing (e.g. pseudo-label accuracy).
    seed : int
    mean, std : torch.Tensor
        Statistics of the network's input standardisation: those of the source training
        frames (``input_norm: source``), or 0 and 1 (``per-corpus``: the rows are
        standardised per corpus as they are read).
    input_stats : CorpusStats or None
        Per-corpus statistics (``per-corpus`` only).
    levers : LeverSetup or None
        The input levers fitted before the loop and the lever target rows (see
        :mod:`fairser.training.lever_setup`).
    train_rows : pandas.DataFrame or None
        The labelled source training rows, kept only when a lever fitted after the loop reads
        them (``erase_on: embedding``, ``self_train``); None otherwise, so that a fit does not
        hold a copy of the manifest.
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
    levers: LeverSetup | None = None
    train_rows: pd.DataFrame | None = None

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
    """Validate the inputs and describe everything a fit trains on (no training).

    Same parameters and errors as :func:`fit`; benchmarks use it to time the loop alone.

    Returns
    -------
    Prepared
    """
    cfg = coerce_config(config)
    m_cls = get_method(method)
    meth = m_cls(cfg)
    labels = label_space(cfg, emotion)
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
    reader = RowReader(features, cfg.frame_stride, cfg.max_frames)
    # a small fit reads each row from the store once, here, for every pass and the loop
    parts = [train, dev] + ([tgt] if tgt is not None else [])
    reader = reader.with_(
        cache=row_cache(reader, parts, cache_mb=cfg.cache_mb, num_workers=cfg.num_workers)
    )
    n_layers, dim = int(features.n_layers), int(features.dim)
    mean, std = streaming_stats(split_arrays(reader, train, what="source train"), n_layers, dim)
    input_stats: CorpusStats | None = None
    if cfg.input_norm == "per-corpus":
        # every row is standardised with its own corpus's statistics as it is read; the
        # network's buffers become 0/1 and the loop, anchors and pseudo labels all see these
        parts = [train] + ([tgt] if tgt is not None else [])
        input_stats = CorpusStats.from_splits(
            reader, parts, fallback=(mean, std), min_rows=cfg.input_norm_min_rows
        )
        table = {c: (m.numpy(), s.numpy()) for c, (m, s) in input_stats.stats.items()}
        table.update(input_stats.table(reader, dev, what="source dev"))
        reader = reader.with_(norm=table)
        mean, std = torch.zeros_like(mean), torch.ones_like(std)
    setup = setup_levers(
        cfg=cfg,
        reader=reader,
        input_stats=input_stats,
        features=features,
        train=train,
        dev=dev,
        tgt=tgt,
        tr_rows=tr_rows,
        dev_rows=dev_rows,
        tgt_rows=tgt_rows,
        target=target,
        groups=groups,
        method=method,
    )
    reader = setup.reader
    if cfg.input_norm == "per-speaker":  # rows are standardised per speaker as they are read
        mean, std = torch.zeros_like(mean), torch.ones_like(std)

    extra: dict[str, Any] = {}
    if tgt is not None and meth.adversarial and cfg.target_gender == "pseudo":
        # tgt.g holds the true attribute where the manifest has one: used only to score.
        pg, acc = pseudo_groups(reader, train, tgt, mean=mean, std=std, seed=seed)
        tgt = tgt.with_groups(pg)
        extra["pseudo_gender_accuracy"] = acc
    reader = setup.finish(cfg, train=train, dev=dev, dev_rows=dev_rows, tgt=tgt, groups=groups)
    if setup.levers.input_eraser is not None and cfg.input_norm == "source":
        # the network standardises what the eraser gives it
        mean, std = streaming_stats(
            split_arrays(reader, train, raw=False, what="source train"), n_layers, dim
        )
    if setup.reports:
        extra["speaker_norm"] = setup.reports

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
            *setup.fingerprint,
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
            reader,
            mean=mean,
            std=std,
            n_anchors=cfg.n_anchors,
            energy_quantile=cfg.anchor_energy_quantile,
            seed=seed,
        )
    data = FitData(
        train=train,
        dev=dev,
        target=tgt,
        reader=reader,
        n_classes=n_classes,
        n_groups=len(groups),
        class_weights=class_weights,
        train_anchors=tr_anchors,
        target_anchors=tgt_anchors,
        select=setup.split if cfg.selection == "target-parity" else None,
        select_groups=setup.genders if cfg.selection == "target-parity" else None,
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
        levers=setup,
        train_rows=(
            tr_rows
            if cfg.erase_embedding or cfg.self_train > 0
            else None
        ),
    )


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    try:
        return int(v)
    except (TypeError, ValueError):
        return str(v)
