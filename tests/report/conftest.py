"""Generated results tables and embeddings for the report tests (fixed seeds, no training)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

METHODS = ("source-only", "pa", "pa-rew", "pa-fairw", "pa-adv", "pa-cfa")
EMOTIONS = ("angry", "happy", "sad", "neutral")


def make_results(
    *,
    seed: int = 0,
    methods=METHODS,
    emotions=EMOTIONS,
    seeds=(0, 1, 2),
    target: str = "casia",
    source: str = "ravdess",
    conditions=("",),
    sweep: dict[str, list[float]] | None = None,
    with_ci: bool = True,
) -> pd.DataFrame:
    """A results table shaped like `fairser run` output.

    Fairness methods reduce the source gap; the target gap stays larger (the paper's point).
    ``sweep`` maps a method to alpha values; those runs get ``sweep``/``sweep_alpha`` columns.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for condition in conditions:
        for m_i, method in enumerate(methods):
            points = [("", None)]
            if sweep and method in sweep:
                points = [(f"alpha={a}", a) for a in sweep[method]]
            for label, alpha in points:
                for e_i, emotion in enumerate(emotions):
                    for s in seeds:
                        for role, corpus in (("source", source), ("target", target)):
                            fair = 0.04 * m_i if role == "source" else 0.015 * m_i
                            shift = (alpha or 0.0) * 0.05
                            uar = 0.75 - 0.1 * (role == "target") - 0.01 * m_i + 0.01 * e_i
                            uar += rng.normal(0, 0.01) - shift / 2
                            dsp = max(0.0, 0.25 - fair - shift + rng.normal(0, 0.01))
                            deo = max(0.0, 0.3 - fair - shift + rng.normal(0, 0.01))
                            row = {
                                "method": method,
                                "emotion": emotion,
                                "seed": s,
                                "corpus": corpus,
                                "role": role,
                                "target": target,
                                "condition": condition,
                                "sweep": label,
                                "uar": uar,
                                "uar_m": uar + 0.03,
                                "uar_f": uar - 0.03,
                                "dsp": dsp,
                                "deo_max": deo,
                                "deo_sum": deo * 1.5,
                                "gc_acc": 0.9 - 0.08 * m_i if method != "source-only" else np.nan,
                                "probe": 0.85 - 0.03 * m_i,
                                "probe_input": 0.95,
                                "n": 200,
                                "n_m": 100,
                                "n_f": 100,
                                "config_hash": "abc",
                            }
                            if alpha is not None:
                                row["sweep_alpha"] = alpha
                            if with_ci:
                                for k in ("uar", "uar_m", "uar_f", "dsp", "deo_max", "deo_sum"):
                                    row[f"{k}_lo"] = row[k] - 0.04
                                    row[f"{k}_hi"] = row[k] + 0.04
                                row["confidence"] = 0.95
                            rows.append(row)
    return pd.DataFrame(rows)


def make_embeddings(seed: int = 0, n: int = 300, dim: int = 16) -> dict[str, dict]:
    """Two methods' embeddings: one with a strong gender direction, one without."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["M", "F"], n)
    corpus = np.where(np.arange(n) < n // 2, "ravdess", "casia")
    out = {}
    for name, strength in (("source-only", 3.0), ("pa-cfa", 0.2)):
        x = rng.normal(size=(n, dim))
        x[:, 0] += np.where(gender == "M", strength, -strength)
        x[:, 1] += np.where(corpus == "casia", 2.0, -2.0)
        out[name] = {"embeddings": x.astype(np.float32), "gender": gender, "corpus": corpus}
    return out


@pytest.fixture
def results() -> pd.DataFrame:
    """Six methods x four emotions x three seeds x (source, target)."""
    return make_results()


@pytest.fixture
def results_factory():
    """The :func:`make_results` factory."""
    return make_results


@pytest.fixture
def embeddings() -> dict[str, dict]:
    """Embedding samples of two methods."""
    return make_embeddings()
