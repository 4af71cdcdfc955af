"""Row selection for an experiment: source splits, source conditions, target roles.

Pure pandas functions on manifests (docs/architecture.md schema); no training, no I/O.
The exact definitions are in :mod:`fairser.experiments.config`'s docstring.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairser.errors import ConfigError, CorpusError
from fairser.experiments.config import SourceSplitConfig, SubsampleSpec, TargetSplitConfig

__all__ = [
    "apply_subsample",
    "group_split",
    "restrict_emotions",
    "source_with_splits",
    "speaker_split",
    "target_roles",
]

_SPLITS = ("train", "dev", "test")


def restrict_emotions(manifest: pd.DataFrame, emotions: list[str]) -> pd.DataFrame:
    """Keep the rows whose emotion is one of ``emotions`` (a copy, index reset)."""
    keep = manifest["emotion"].isin(emotions).fillna(False).to_numpy(dtype=bool)
    return manifest.loc[keep].reset_index(drop=True)


def _genders(manifest: pd.DataFrame) -> pd.Series:
    return manifest.groupby("speaker", sort=True)["gender"].first()


def speaker_split(manifest: pd.DataFrame, *, dev_fraction: float = 0.15,
                  test_fraction: float = 0.2, seed: int = 0) -> pd.Series:
    """Seeded speaker-disjoint, gender-stratified train/dev/test assignment.

    Within each gender the speakers are shuffled with ``seed``; ``max(1, round(f * n))`` go to
    test and to dev, the rest to train.

    Parameters
    ----------
    manifest : DataFrame
        Manifest with ``speaker`` and ``gender`` columns.
    dev_fraction, test_fraction : float
        Shares of each gender's speakers.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    Series
        The split of every row (``string`` dtype, same index as ``manifest``).

    Raises
    ------
    CorpusError
        If a gender has fewer than three speakers (train, dev and test each need one).
    """
    genders = _genders(manifest)
    rng = np.random.default_rng(seed)
    assign: dict[str, str] = {}
    for gender in sorted(genders.dropna().unique()):
        speakers = sorted(genders.index[genders == gender])
        if len(speakers) < 3:
            corpus = manifest["corpus"].iloc[0] if len(manifest) else "<empty>"
            raise CorpusError(
                f"corpus {corpus}: gender {gender} has {len(speakers)} speaker(s), too few for "
                "a speaker split; set source_split.mode: manifest with your own splits")
        order = [speakers[i] for i in rng.permutation(len(speakers))]
        n_test = max(1, round(test_fraction * len(speakers)))
        n_dev = max(1, round(dev_fraction * len(speakers)))
        for i, spk in enumerate(order):
            assign[spk] = "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
    for spk in genders.index[genders.isna()]:
        assign[spk] = "train"
    return manifest["speaker"].map(assign).astype("string")


def source_with_splits(manifest: pd.DataFrame, cfg: SourceSplitConfig) -> pd.DataFrame:
    """Return the source manifest with a usable ``split`` column (train, dev and test present).

    Raises
    ------
    CorpusError
        ``mode: manifest`` and a split is missing.
    """
    out = manifest.copy()
    present = set(out["split"].dropna().unique())
    mode = cfg.mode
    if mode == "auto":
        mode = "manifest" if set(_SPLITS) <= present else "speakers"
    if mode == "manifest":
        missing = [s for s in _SPLITS if s not in present]
        if missing:
            corpus = out["corpus"].iloc[0] if len(out) else "<empty>"
            raise CorpusError(
                f"corpus {corpus}: the manifest has no {'/'.join(missing)} rows; set "
                "source_split.mode: speakers (or auto) to split by speaker")
        return out
    if mode == "groups":
        out["split"] = group_split(out, cfg.group_column, dev_fraction=cfg.dev_fraction,
                                   test_fraction=cfg.test_fraction, seed=cfg.seed)
        return out
    out["split"] = speaker_split(out, dev_fraction=cfg.dev_fraction,
                                 test_fraction=cfg.test_fraction, seed=cfg.seed)
    return out


def group_split(manifest: pd.DataFrame, column: str, *, dev_fraction: float = 0.15,
                test_fraction: float = 0.2, seed: int = 0) -> pd.Series:
    """Seeded train/dev/test assignment of the distinct values of ``column``.

    ``max(1, round(f * n))`` of the ``n`` shuffled values go to test and to dev, the rest to
    train; every row follows its value. Speakers are NOT kept apart: use it only where a
    speaker split is impossible (e.g. CASIA's two speakers per gender, split by sentence).

    Raises
    ------
    CorpusError
        The column is missing, has missing values, or has fewer than three values.
    """
    corpus = manifest["corpus"].iloc[0] if len(manifest) else "<empty>"
    if column not in manifest.columns:
        raise CorpusError(f"corpus {corpus}: no column {column!r} for source_split.mode groups; "
                          f"set source_split.group_column to one of {list(manifest.columns)}")
    values = manifest[column]
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise CorpusError(f"corpus {corpus} row {row}: {column} is missing; every row needs a "
                          "group for source_split.mode groups")
    groups = sorted(values.astype(str).unique())
    if len(groups) < 3:
        raise CorpusError(f"corpus {corpus}: column {column!r} has {len(groups)} value(s); a "
                          "train/dev/test split needs at least three")
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    n_test = max(1, round(test_fraction * len(groups)))
    n_dev = max(1, round(dev_fraction * len(groups)))
    assign = {g: "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
              for i, g in enumerate(order)}
    return values.astype(str).map(assign).astype("string")


def apply_subsample(train: pd.DataFrame, spec: SubsampleSpec, *, emotion: str | None
                    ) -> pd.DataFrame:
    """Apply one source condition to the rows of the source **train** split.

    Parameters
    ----------
    train : DataFrame
        Source rows (any split; only ``split == "train"`` rows can be dropped).
    spec : SubsampleSpec
        The condition; ``keep == 1`` returns ``train`` unchanged.
    emotion : str or None
        The run's emotion, used when ``spec.emotion`` is null. ``None`` (multiclass) with a
        null ``spec.emotion`` thins every emotion of the given gender.

    Returns
    -------
    DataFrame
        The kept rows, in their original order (index reset).
    """
    if spec.keep >= 1.0:
        return train.reset_index(drop=True)
    target_emotion = spec.emotion or emotion
    in_train = (train["split"] == "train").fillna(False).to_numpy(dtype=bool)
    is_gender = (train["gender"] == spec.gender).fillna(False).to_numpy(dtype=bool)
    is_emotion = (np.ones(len(train), dtype=bool) if target_emotion is None else
                  (train["emotion"] == target_emotion).fillna(False).to_numpy(dtype=bool))
    pool = np.flatnonzero(in_train & is_gender & is_emotion)
    if pool.size == 0:
        raise ConfigError(
            f"source_subsample {spec.label}: no source train rows of gender {spec.gender} and "
            f"emotion {target_emotion}; check `gender` (M/F) and `emotion`")
    n_keep = round(spec.keep * pool.size)
    rng = np.random.default_rng(spec.seed)
    kept = rng.choice(pool, size=n_keep, replace=False) if n_keep else np.empty(0, dtype=int)
    drop = np.setdiff1d(pool, kept)
    mask = np.ones(len(train), dtype=bool)
    mask[drop] = False
    return train.loc[mask].reset_index(drop=True)


def target_roles(manifest: pd.DataFrame, cfg: TargetSplitConfig
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a target manifest into (adaptation rows, evaluation rows).

    Adaptation rows are used in training with their gender only; evaluation rows are scored.

    Raises
    ------
    CorpusError
        ``mode: manifest`` without train or test rows; ``mode: speakers`` with too few
        speakers of a gender.
    """
    corpus = manifest["corpus"].iloc[0] if len(manifest) else "<empty>"
    if cfg.mode == "transductive":
        return manifest.reset_index(drop=True), manifest.reset_index(drop=True)
    if cfg.mode == "manifest":
        adapt = manifest[(manifest["split"] == "train").fillna(False).to_numpy(dtype=bool)]
        evals = manifest[(manifest["split"] == "test").fillna(False).to_numpy(dtype=bool)]
        if adapt.empty or evals.empty:
            raise CorpusError(
                f"corpus {corpus}: target_split.mode manifest needs train and test rows; use "
                "target_split.mode: transductive or speakers")
        return adapt.reset_index(drop=True), evals.reset_index(drop=True)
    genders = _genders(manifest)
    rng = np.random.default_rng(cfg.seed)
    held: list[str] = []
    for gender in sorted(genders.dropna().unique()):
        speakers = sorted(genders.index[genders == gender])
        k = cfg.eval_speakers_per_gender
        if len(speakers) <= k:
            raise CorpusError(
                f"corpus {corpus}: gender {gender} has {len(speakers)} speaker(s); holding out "
                f"{k} leaves none to adapt on; lower target_split.eval_speakers_per_gender")
        held += [speakers[i] for i in rng.permutation(len(speakers))[:k]]
    is_eval = manifest["speaker"].isin(held).to_numpy(dtype=bool)
    return (manifest.loc[~is_eval].reset_index(drop=True),
            manifest.loc[is_eval].reset_index(drop=True))
