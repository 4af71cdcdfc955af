"""Setting up a fit's levers before the loop (:func:`setup_levers`, called by prepare_fit).

Which rows each lever is fitted on:

- ``input_norm: per-speaker``: the source training rows and the stage-2 target rows (their
  audio and speaker ids);
- the erasers, the parity thresholds and ``selection: target-parity``: the source training
  rows (erasers only) and the *lever target rows*: the stage-2 target rows, or, for a method
  that trains on no target rows (``source-only``), the target rows passed to fit (rows of
  ``target_split``); their gender labels (or pseudo labels with ``target_gender: pseudo``),
  never their emotion labels, which are dropped before anything sees them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairser.errors import TrainingError
from fairser.training.config import TrainConfig
from fairser.training.data import FeatureSource, Split, make_split, select_rows
from fairser.training.input_levers import (
    InputEraser,
    fit_input_eraser,
    fit_speaker_norm,
    gender_strings,
    speaker_table,
    speakers_of,
)
from fairser.training.norm import CorpusStats
from fairser.training.output_levers import ModelLevers
from fairser.training.rows import RowReader

__all__ = ["LeverSetup", "setup_levers"]


@dataclass
class LeverSetup:
    """What :func:`setup_levers` gives the fit.

    Attributes
    ----------
    reader : RowReader
        The reader of the fit (per-speaker statistics and input eraser included).
    levers : ModelLevers
        The input-side levers fitted so far (the others are fitted after the loop).
    rows : pandas.DataFrame or None
        The lever target rows (no emotion column).
    split : Split or None
        Their bookkeeping.
    genders : numpy.ndarray or None
        Their gender (None where unknown).
    train_genders : numpy.ndarray or None
        Gender of each source training row.
    reports : dict
        Per-speaker fallback counts of each part (for the history).
    """

    reader: RowReader
    levers: ModelLevers = field(default_factory=ModelLevers)
    rows: pd.DataFrame | None = None
    split: Split | None = None
    genders: np.ndarray | None = None
    train_genders: np.ndarray | None = None
    reports: dict[str, Any] = field(default_factory=dict)
    stage2: bool = False

    def finish(
        self,
        cfg: TrainConfig,
        *,
        train: Split,
        dev: Split,
        dev_rows: pd.DataFrame,
        tgt: Split | None,
        groups: tuple[str, ...],
    ) -> RowReader:
        """After the pseudo labels: take the stage-2 target groups, fit the input eraser.

        Returns the reader of the fit (with the input eraser when ``erase_on: inputs``).
        """
        if self.stage2 and tgt is not None:
            self.split = tgt
            if cfg.target_gender == "pseudo":
                self.genders = np.asarray(
                    [groups[int(c)] if c >= 0 else None for c in tgt.g], dtype=object
                )
        if not cfg.erase_inputs:
            return self.reader
        parts = [(train, self.train_genders), (self.split, self.genders)]
        eraser = fit_input_eraser(self.reader, parts, cfg)
        if cfg.erase == "leace" and eraser.rank == 0:
            warnings.warn(
                "erase_on inputs: the LEACE input eraser is the identity here: gender has no "
                "linear trace left in the frames"
                + (" (input_norm per-speaker centres every speaker's frames, and gender is "
                   "constant within a speaker); "
                   + ("with erase_on: both only the embedding eraser acts"
                      if cfg.erase_on == "both" else "use erase_on: embedding")
                   if cfg.input_norm == "per-speaker" else ""),
                UserWarning,
                stacklevel=2,
            )
        genders: dict[str, str] = {}
        for split, g in (*parts, (dev, gender_strings(dev_rows, cfg.attribute))):
            if g is not None:
                genders.update({k: v for k, v in zip(split.keys, g, strict=True) if v})
        self.reader = self.reader.with_(transform=InputEraser(eraser, genders))
        self.levers.input_eraser = eraser
        return self.reader

    @property
    def fingerprint(self) -> list[Any]:
        """What the fingerprint of the fit adds for its levers (nothing without levers)."""
        out: list[Any] = []
        for name in self.levers.listing():
            d = getattr(self.levers, name).to_dict()
            arrays = d.pop("arrays")
            out.append([name, d])
            out.extend(np.ascontiguousarray(arrays[k]) for k in sorted(arrays))
        if self.split is not None:
            out.append(list(self.split.keys))
            out.append([None if g is None else str(g) for g in self.genders])
        return out


def _needs_lever_rows(cfg: TrainConfig) -> bool:
    return (
        cfg.erase != "none"
        or cfg.thresholds != "none"
        or cfg.selection != "source-dev"
        or cfg.self_train > 0
    )


def setup_levers(
    *,
    cfg: TrainConfig,
    reader: RowReader,
    input_stats: CorpusStats | None,
    features: FeatureSource,
    train: Split,
    dev: Split,
    tgt: Split | None,
    tr_rows: pd.DataFrame,
    dev_rows: pd.DataFrame,
    tgt_rows: pd.DataFrame | None,
    target: pd.DataFrame | None,
    groups: tuple[str, ...],
    method: str,
) -> LeverSetup:
    """Fit the input levers and choose the lever target rows (module docstring).

    Raises
    ------
    TrainingError
        When a lever lacks what it needs (a speaker or gender column, target rows).
    """
    attr = cfg.attribute
    out = LeverSetup(reader=reader)
    kw = {"frame_stride": cfg.frame_stride, "max_frames": cfg.max_frames, "attribute": attr}
    if _needs_lever_rows(cfg):
        if tgt_rows is not None and tgt is not None:
            out.rows, out.split, out.stage2 = tgt_rows, tgt, True
            # with target_gender: pseudo, finish() replaces them with the pseudo labels
            out.genders = gender_strings(tgt_rows, attr)
        elif target is not None:
            rows = select_rows(target, split=cfg.target_split, what="target")
            out.rows = rows.drop(columns=["emotion"], errors="ignore")
            out.split = make_split(
                out.rows, features, labels=None, groups=groups, what="target", **kw
            )
            out.genders = gender_strings(out.rows, attr)
        else:
            which = [
                f"{k}: {v}"
                for k, v in (
                    ("erase", cfg.erase),
                    ("thresholds", cfg.thresholds),
                    ("selection", cfg.selection),
                    ("self_train", cfg.self_train),
                )
                if v not in ("none", "source-dev", 0.0)
            ]
            raise TrainingError(
                f"{', '.join(which)} need(s) target rows (their gender, never their emotion); "
                f"pass target= to fit (method {method!r} got none)"
            )
        if out.genders is None or not any(g is not None for g in out.genders):
            raise TrainingError(
                f"target manifest: no {attr!r} values in the target rows, which "
                f"{'erase' if cfg.erase != 'none' else 'thresholds/selection/self_train'} needs; "
                f"add the {attr} column (or use target_gender: pseudo)"
            )
        out.train_genders = gender_strings(tr_rows, attr)
    extra_parts = [] if out.split is None or out.split is tgt else [out.split]
    if input_stats is not None and extra_parts:
        # per-corpus: the lever rows of source-only are standardised as they will be predicted
        table = dict(reader.norm or {})
        for part in extra_parts:
            table.update(input_stats.table(reader, part, what="target"))
        reader = reader.with_(norm=table)
    if cfg.input_norm == "per-speaker":
        spk_tr = speakers_of(tr_rows)
        if spk_tr is None or not any(s is not None for s in spk_tr):
            raise TrainingError(
                "source manifest: input_norm per-speaker needs a 'speaker' column; build the "
                "manifest with fairser.corpora.load_corpus or use input_norm: per-corpus"
            )
        parts = [(train, spk_tr)]
        if tgt is not None and tgt_rows is not None:
            parts.append((tgt, speakers_of(tgt_rows)))
        norm = fit_speaker_norm(reader, parts, cfg)
        table: dict[str, Any] = {}
        named = [("source train", train, spk_tr), ("source dev", dev, speakers_of(dev_rows))]
        if tgt is not None and tgt_rows is not None:
            named.append(("target", tgt, speakers_of(tgt_rows)))
        if out.split is not None and out.split is not tgt:
            named.append(("target (lever rows)", out.split, speakers_of(out.rows)))
        for what, split, spk in named:
            part, report = speaker_table(norm, reader, split, spk, what=what, warn=False)
            table.update(part)
            out.reports[what] = report.counts
        reader = reader.with_(norm=table)
        out.levers.speaker_norm = norm
    out.reader = reader
    return out
