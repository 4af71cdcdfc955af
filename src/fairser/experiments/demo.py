"""``fairser demo``: the built-in synthetic corpus pair end to end, in minutes on 2 CPU cores.

The source (``synth-en``) carries a planted gender shortcut (angry mostly male, happy and sad
mostly female); the target (``synth-zh``) is balanced. The demo runs every registered method
(source-only and the five fair-transfer methods) and the recommended recipe
(:data:`fairser.experiments.recipe.RECOMMENDED`) on the two emotions that carry the shortcut,
one seed, with the fast log-mel frontend and a small, briefly trained model, and writes the
same run folder as ``fairser run``: results tables, ``table.md`` and ``report.html``. Its
figures illustrate the pipeline; they are not evidence about human speech.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from fairser.experiments.backend import Backend
from fairser.experiments.config import ExperimentConfig, parse_config
from fairser.experiments.recipe import RECOMMENDED
from fairser.experiments.runner import ExperimentResult, run_experiment

__all__ = ["DEMO_SETTINGS", "demo_config", "run_demo"]

#: The demo's experiment, as a YAML file would hold it (see configs/ for real ones).
DEMO_SETTINGS: dict[str, Any] = {
    "name": "demo",
    "source": "synthetic-source:",
    "targets": ["synthetic-target:"],
    "emotions": ["angry", "happy", "sad", "neutral"],
    "features": {"frontend": "logmel"},
    "run_emotions": ["angry", "happy"],
    # "methods": every registered method (fairser.methods.METHODS) and the recipe, set in
    # demo_config (the registry imports torch)
    "seeds": [0],
    "training": {
        "stage1_epochs": 8,
        "stage2_epochs": 4,
        "patience": 3,
        "frame_stride": 4,
        "max_frames": 64,
        "batch_size": 32,
        "num_threads": 1,
        "model": {"d_model": 64, "n_layers": 1, "n_heads": 4, "ff_dim": 128, "embed_dim": 64,
                  "gc_hidden": 32},
    },
    "bootstrap": {"n_resamples": 500},
    "embeddings_per_corpus": 200,
}

def demo_config(*, synthetic_root: Path | str | None = None,
                overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """The demo's :class:`ExperimentConfig`.

    Parameters
    ----------
    synthetic_root : path, optional
        Where the synthetic pair is generated / reused (default: the fairser cache).
    overrides : dict, optional
        Top-level keys replacing the demo's (e.g. ``{"methods": ["pa"]}`` in tests).

    Returns
    -------
    ExperimentConfig
    """
    from fairser.experiments.config import _all_methods

    settings = {**DEMO_SETTINGS, "methods": [*_all_methods(), RECOMMENDED]}
    root = "" if synthetic_root is None else str(Path(synthetic_root).resolve())
    settings["source"] = f"synthetic-source:{root}"
    settings["targets"] = [f"synthetic-target:{root}"]
    settings.update(overrides or {})
    cfg = parse_config(settings, source="<demo>")
    return cfg


def run_demo(*, out_dir: Path | str = Path("runs") / "demo",
             synthetic_root: Path | str | None = None, progress: bool = True,
             console: Console | None = None, backend: Backend | None = None,
             overrides: dict[str, Any] | None = None) -> ExperimentResult:
    """Run the demo grid and write its report.

    The grid is every method and the recommended recipe x angry and happy (the emotions the
    synthetic source biases by gender) x one seed; the rows of all four emotions are kept, so
    ``rest`` is the other three.

    Parameters
    ----------
    out_dir : path, default="runs/demo"
        The run folder (a rerun reuses finished runs).
    synthetic_root : path, optional
        Folder of the synthetic pair (default: the fairser cache).
    progress : bool, default=True
        Progress bars.
    console : rich Console, optional
        Log destination.
    backend : Backend, optional
        The lower layers (default the real ones).
    overrides : dict, optional
        Top-level config keys replacing the demo's.

    Returns
    -------
    ExperimentResult
    """
    cfg = demo_config(synthetic_root=synthetic_root, overrides=overrides)
    return run_experiment(cfg, out_dir=out_dir, progress=progress, console=console,
                          backend=backend, command="fairser demo")
