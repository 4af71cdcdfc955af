"""The speaker-disjoint, gender-stratified split given to corpora without official splits."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["assign_splits"]


def assign_splits(manifest: pd.DataFrame, *, seed: int = 0,
                  fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                  overwrite: bool = True) -> pd.DataFrame:
    """Assign a deterministic, speaker-disjoint, gender-stratified train/dev/test split.

    Speakers of each gender (M, F, missing) are shuffled with ``seed`` and cut by
    ``fractions`` (shares of speakers). Every split that exists holds both genders: a split
    is only made when *each* gender present (M and F) has enough speakers for it and for a
    train speaker. With ``k`` = the smaller of the male and female speaker counts:

    - ``k >= 3``: train, dev and test (each at least one speaker of each gender);
    - ``k == 2`` (e.g. CASIA's 2 + 2 speakers): train and test, one speaker of each gender in
      each, and **no dev split** (select models on a source corpus, or pass a
      ``split_fractions`` with a zero dev share to say so explicitly);
    - ``k <= 1``: every speaker goes to train (a speaker-disjoint split cannot hold both
      genders).

    A zero share in ``fractions`` removes that split. Speakers with missing gender follow the
    same rule on their own count.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Needs ``speaker`` and ``gender`` columns.
    seed : int, default=0
        Shuffling seed; the same seed gives the same split.
    fractions : tuple of float, default=(0.7, 0.15, 0.15)
        Train, dev, test shares of each gender's speakers.
    overwrite : bool, default=True
        Replace existing split values; when False only rows with a missing split are filled
        (speakers that already have a split keep it).

    Returns
    -------
    pandas.DataFrame
        A copy with the ``split`` column filled.
    """
    df = manifest.copy()
    target = df["split"].isna() if (not overwrite and "split" in df.columns) else \
        pd.Series(True, index=df.index)
    speakers = df.loc[target, ["speaker", "gender"]].drop_duplicates("speaker")
    groups = {
        "M": sorted(speakers.loc[speakers["gender"] == "M", "speaker"].astype(str)),
        "F": sorted(speakers.loc[speakers["gender"] == "F", "speaker"].astype(str)),
        "NA": sorted(speakers.loc[speakers["gender"].isna(), "speaker"].astype(str)),
    }
    present = [len(groups[g]) for g in ("M", "F") if groups[g]]
    k = min(present) if present else len(groups["NA"])
    split_of: dict[str, str] = {}
    for gi, g in enumerate(("M", "F", "NA")):
        names = groups[g]
        if not names:
            continue
        kk = k if g != "NA" else len(names)
        n = len(names)
        n_test = max(1, round(n * fractions[2])) if (kk >= 2 and fractions[2] > 0) else 0
        n_dev = max(1, round(n * fractions[1])) if (kk >= 3 and fractions[1] > 0) else 0
        while n - n_test - n_dev < 1:
            if n_dev > 1 and n_dev >= n_test:
                n_dev -= 1
            elif n_test > 1:
                n_test -= 1
            else:
                break
        order = np.random.default_rng([int(seed) & 0xFFFFFFFF, gi]).permutation(n)
        for rank, idx in enumerate(order):
            name = names[int(idx)]
            split_of[name] = "test" if rank < n_test else "dev" if rank < n_test + n_dev \
                else "train"
    new = df["speaker"].astype(str).map(split_of)
    if "split" not in df.columns:
        df["split"] = pd.Series(pd.NA, index=df.index, dtype="string")
    df["split"] = df["split"].astype("string")
    df.loc[target, "split"] = new[target].astype("string")
    return df
