"""A trained model: :class:`FittedModel` applies, saves and loads what :func:`fit` trained.

Prediction streams like training: rows are read per batch from the feature store, in batches
of similar length (``bucketing``), on the model's device and precision, and put back in row
order. Non-finite scores are an error, never a silent prediction. :meth:`FittedModel.load`
turns a damaged or incomplete model folder into a one-line :class:`TrainingError`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairser.decision import decide
from fairser.device import resolve_device, resolve_precision
from fairser.errors import FairserError, TrainingError
from fairser.levers import QuadraticGenderEraser
from fairser.models import FairSERNet, NetSpec
from fairser.training.checkpoint import atomic_write_text, load_tensors, save_tensors
from fairser.training.config import TrainConfig
from fairser.training.data import FeatureSource, LabelSpace, make_split, select_rows
from fairser.training.input_levers import InputEraser, gender_strings, speaker_table, speakers_of
from fairser.training.norm import CorpusStats
from fairser.training.output_levers import (
    ModelLevers,
    apply_embedding_eraser,
    corpus_gender,
    decide_labels,
    head_scores,
)
from fairser.training.rows import RowReader, StreamDataset, iterate
from fairser.training.steps import Runtime, eval_batches, forward_batches, scores

__all__ = ["META_FILE", "FittedModel", "Outputs"]

_MODEL_FILE = "model.safetensors"
META_FILE = "model.json"
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
    labels : numpy.ndarray or None
        (n,) int64 final decisions: :func:`fairser.decision.decide` of ``proba``, with the
        model's per-gender thresholds/offsets (``thresholds: parity``) when it has them.
    """

    proba: np.ndarray
    embedding: np.ndarray
    attribute: np.ndarray | None
    labels: np.ndarray | None = None


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
    runtime : Runtime, optional
        Device, precision and DataLoader workers of prediction (default: the network's
        device, fp32, the config's ``num_workers``). The network is moved to its device.
    levers : ModelLevers, optional
        The fitted levers (per-speaker norm, erasers, group thresholds) of the config's lever
        options; saved in ``levers/`` of the model folder and listed in ``model.json``.

    Raises
    ------
    TrainingError
        When ``input_norm`` is ``per-corpus`` and ``input_stats`` is missing, or
        ``per-speaker`` and ``levers.speaker_norm`` is.
    """

    def __init__(
        self,
        net: FairSERNet,
        *,
        meta: dict[str, Any],
        history: dict[str, Any],
        input_stats: CorpusStats | None = None,
        runtime: Runtime | None = None,
        levers: ModelLevers | None = None,
    ) -> None:
        self.meta = meta
        self.history = history
        self.labels = LabelSpace.from_dict(meta["labels"])
        self.config = TrainConfig.model_validate(meta["config"])
        if runtime is None:
            device = next(net.parameters()).device
            runtime = Runtime(
                device=device,
                precision=resolve_precision("fp32", device),
                num_workers=self.config.num_workers,
            )
        self.runtime = runtime
        self.net = net.to(runtime.device).eval()
        if self.config.input_norm == "per-corpus" and input_stats is None:
            raise TrainingError(
                "a model trained with input_norm: per-corpus needs its per-corpus statistics; "
                "pass input_stats= (FittedModel.load reads them from the saved folder)"
            )
        self.input_stats = input_stats if self.config.input_norm == "per-corpus" else None
        self.levers = levers or ModelLevers()
        self.last_norm_report = None
        if self.config.input_norm == "per-speaker" and self.levers.speaker_norm is None:
            raise TrainingError(
                "a model trained with input_norm: per-speaker needs its SpeakerNorm lever; "
                "pass levers= (FittedModel.load reads it from the saved folder)"
            )

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
        self,
        manifest: pd.DataFrame,
        features: FeatureSource,
        *,
        batch_size: int | None = None,
        warn: bool = True,
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
            With ``input_norm: per-speaker`` each row gets its speaker's statistics; a speaker
            unseen in training those of its rows here (test-time adaptation), falling back
            to its corpus's (one warning counting the rows of each fallback; a manifest
            without ``speaker``: corpus statistics, with a warning). Per-gender levers
            (``erase: qleace``, ``thresholds: parity``) read the attribute column; rows
            without it are left unchanged / get the plain rule, with a warning.
        batch_size : int, optional
            Rows per forward pass (default: the config's ``eval_batch_size``).
        warn : bool
            Emit the fallback warnings (fit turns them off for its own passes).

        Returns
        -------
        Outputs
        """
        self._check_features(features)
        rows = select_rows(manifest, split=None, what="predict")
        cfg, rt = self.config, self.runtime
        n_rows = len(rows)
        split = make_split(
            rows,
            features,
            labels=None,
            attribute=self.attribute,
            groups=self.groups,
            frame_stride=cfg.frame_stride,
            max_frames=cfg.max_frames,
            what="predict",
        )
        reader = RowReader(features, cfg.frame_stride, cfg.max_frames)
        if self.input_stats is not None:
            reader = self.input_stats.reader(reader, split, what="predict")
        genders = gender_strings(rows, self.attribute)
        lv = self.levers
        if lv.speaker_norm is not None:
            table, self.last_norm_report = speaker_table(
                lv.speaker_norm, reader, split, speakers_of(rows), what="predict", warn=warn
            )
            reader = reader.with_(norm=table)
        if lv.input_eraser is not None:
            known = {} if genders is None else dict(zip(split.keys, genders, strict=True))
            if isinstance(lv.input_eraser, QuadraticGenderEraser):
                missing = sum(v is None for v in known.values()) + (n_rows - len(known))
                if warn and missing:
                    warnings.warn(
                        f"predict: erase qleace needs each row's {self.attribute}; {missing} "
                        "row(s) without one keep their input frames unerased",
                        UserWarning,
                        stacklevel=2,
                    )
            reader = reader.with_(
                transform=InputEraser(lv.input_eraser, {k: v for k, v in known.items() if v})
            )
        dataset = StreamDataset(reader, [split], what="predict")
        n = len(split)
        batches = eval_batches(
            n, split.lengths, batch_size or cfg.eval_batch_size, by_length=cfg.bucketing
        )
        binary = self.labels.task == "binary"
        proba = np.zeros((n,) if binary else (n, len(self.classes)), np.float64)
        emb = np.zeros((n, self.net.embedding_dim), np.float64)
        att = np.zeros(n, np.int64) if self.net.gender is not None else None
        feed = iterate(dataset, batches, num_workers=rt.num_workers, pin=rt.pin)
        for batch, out in forward_batches(self.net, feed, rt):
            proba[batch.index] = scores(out.logits, binary).cpu().numpy()
            emb[batch.index] = out.embedding.float().cpu().numpy()
            if att is not None and out.gender_logits is not None:
                att[batch.index] = decide(scores(out.gender_logits, False).cpu().numpy())
        if not np.isfinite(proba).all():
            bad = int((~np.isfinite(proba)).reshape(n, -1).any(1).sum())
            raise TrainingError(
                f"predict: the model gives non-finite scores for {bad} of {n} rows; it is "
                "damaged or diverged in training: retrain it (e.g. with a lower training.lr)"
            )
        attribute = None if att is None else np.asarray(self.groups, dtype=object)[att]
        if lv.embedding_eraser is not None:
            keyed = corpus_gender(np.asarray(split.corpora, dtype=object), genders)
            emb = apply_embedding_eraser(lv.embedding_eraser, emb, keyed, what="predict", warn=warn)
            proba = head_scores(self.net, emb, binary)
        labels = decide_labels(proba, lv.thresholds, genders, what="predict", warn=warn)
        return Outputs(proba, emb, attribute, labels)

    def predict_proba(self, manifest: pd.DataFrame, features: FeatureSource) -> np.ndarray:
        """(n,) P(positive) for binary; (n, C) class probabilities for multiclass."""
        return self.outputs(manifest, features).proba

    def predict(self, manifest: pd.DataFrame, features: FeatureSource) -> np.ndarray:
        """Hard labels (:attr:`Outputs.labels`): :func:`fairser.decision.decide` (0/1 at 0.5,
        or class indices), with the model's per-gender thresholds when it has them."""
        return self.outputs(manifest, features).labels

    def embed(self, manifest: pd.DataFrame, features: FeatureSource) -> np.ndarray:
        """(n, E) shared embeddings (after the eraser with ``erase_on: embedding``)."""
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
        (``input_norm.safetensors``), a model with levers each lever as a safetensors file in
        ``levers/`` (listed under ``levers`` in ``model.json``). The metadata file is written
        last.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_tensors(
            d / _MODEL_FILE, dict(self.net.state_dict()), {"spec": self.net.spec.to_dict()}
        )
        if self.input_stats is not None:
            self.input_stats.save(d / _NORM_FILE)
        meta = dict(self.meta)
        listing = self.levers.save(d)
        if listing:
            meta["levers"] = listing
        atomic_write_text(d / _HISTORY_FILE, json.dumps(self.history, indent=1, default=float))
        atomic_write_text(d / META_FILE, json.dumps(meta, indent=1, sort_keys=True))
        return d

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        device: str = "auto",
        precision: str = "fp32",
        num_workers: int | None = None,
    ) -> FittedModel:
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        directory : str or pathlib.Path
            The folder :meth:`save` wrote.
        device : str
            Where to predict: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision : str
            ``fp32``, ``bf16`` or ``fp16`` (autocast) for prediction.
        num_workers : int, optional
            DataLoader workers of prediction (default: the training config's).

        Raises
        ------
        TrainingError
            When a file is missing, unreadable or incomplete (one line naming the folder).
        ConfigError
            For an unknown or unavailable device or precision.
        """
        d = Path(directory)
        try:
            meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
            history = json.loads((d / _HISTORY_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TrainingError(
                f"{d}: not a saved fairser model ({type(exc).__name__}: {exc}); "
                "point at the folder FittedModel.save wrote"
            ) from None
        dev = resolve_device(device)
        rt = Runtime(device=dev, precision=resolve_precision(precision, dev))
        try:
            if not isinstance(meta, dict) or not isinstance(history, dict):
                raise TypeError("model.json and history.json must hold JSON objects")
            missing = [k for k in ("spec", "labels", "config", "method", "groups") if k not in meta]
            if missing:
                raise KeyError(", ".join(missing))
            tensors, _ = load_tensors(d / _MODEL_FILE)
            net = FairSERNet(NetSpec(**meta["spec"]))
            net.load_state_dict(tensors)
            stats = None
            if meta["config"].get("input_norm", "source") == "per-corpus":
                stats = CorpusStats.load(d / _NORM_FILE)
            levers = ModelLevers.load(d, meta.get("levers"))
            workers = meta["config"].get("num_workers", 0) if num_workers is None else num_workers
            rt = Runtime(device=rt.device, precision=rt.precision, num_workers=int(workers))
            return cls(
                net, meta=meta, history=history, input_stats=stats, runtime=rt, levers=levers
            )
        except FairserError as exc:
            raise TrainingError(f"{d}: damaged or incomplete model folder ({exc})") from None
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
            raise TrainingError(
                f"{d}: damaged or incomplete model folder ({type(exc).__name__}: {what}); "
                "save the model again or retrain it"
            ) from None

    def __repr__(self) -> str:
        return (
            f"FittedModel(method={self.method!r}, task={self.labels.task!r}, "
            f"classes={list(self.classes)}, groups={list(self.groups)})"
        )
