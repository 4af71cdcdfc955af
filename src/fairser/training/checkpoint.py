"""Checkpoints: safetensors files with JSON metadata, written atomically.

``last.safetensors`` holds the model, the optimizer state and the method's weight table after
the latest finished epoch, with the loop's bookkeeping (stage, epoch, best score, history) in
its metadata; ``best.safetensors`` holds the best model of the current stage. Each file is one
atomic ``os.replace``, so a kill at any moment leaves a consistent pair to resume from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from fairser._io import atomic_path, atomic_write_text
from fairser.errors import TrainingError

__all__ = [
    "Checkpointer",
    "atomic_write_text",
    "load_tensors",
    "optimizer_from_tensors",
    "optimizer_to_tensors",
    "save_tensors",
]


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Atomically save ``tensors`` with ``meta`` (JSON) as a safetensors file."""
    clean = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(clean, tmp, metadata={"fairser": json.dumps(meta, sort_keys=True)})


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a file written by :func:`save_tensors`.

    Raises
    ------
    TrainingError
        When the file is unreadable or lacks fairser metadata.
    """
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
        return tensors, json.loads(meta["fairser"])
    except (OSError, SafetensorError, KeyError, json.JSONDecodeError) as exc:
        raise TrainingError(
            f"{path}: not a readable fairser checkpoint ({type(exc).__name__}); "
            "delete it to start that run afresh"
        ) from None


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    """Flatten an optimizer state dict into named tensors and JSON-able param groups."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for pid, st in sd["state"].items():
        for name, val in st.items():
            t = val if isinstance(val, torch.Tensor) else torch.tensor(val)
            tensors[f"optim.{pid}.{name}"] = t
    return tensors, sd["param_groups"]


def optimizer_from_tensors(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], param_groups: list
) -> None:
    """Inverse of :func:`optimizer_to_tensors`: load the state into ``opt``."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, val in tensors.items():
        if not key.startswith("optim."):
            continue
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = val
    opt.load_state_dict({"state": state, "param_groups": param_groups})


class Checkpointer:
    """Reads and writes the checkpoints of one run in ``root``.

    Parameters
    ----------
    root : pathlib.Path
        Folder of the run's checkpoints.
    fingerprint : dict
        Identity of the run (config, method, emotion, seed, data); a checkpoint with another
        fingerprint is never resumed.
    """

    def __init__(self, root: Path, fingerprint: dict[str, Any]) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint

    @property
    def last_path(self) -> Path:
        """Path of the latest-epoch checkpoint."""
        return self.root / "last.safetensors"

    @property
    def best_path(self) -> Path:
        """Path of the best-so-far checkpoint of the current stage."""
        return self.root / "best.safetensors"

    def load_last(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The last checkpoint (tensors, meta), or None when there is none.

        Raises
        ------
        TrainingError
            When it belongs to another run.
        """
        if not self.last_path.exists():
            return None
        tensors, meta = load_tensors(self.last_path)
        if meta.get("fingerprint") != self.fingerprint:
            raise TrainingError(
                f"{self.last_path}: checkpoint of a different run (config, data, method or "
                "seed differ); use another workdir or delete this one"
            )
        return tensors, meta

    def save_last(
        self,
        *,
        net: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None,
        table: np.ndarray,
        meta: dict[str, Any],
    ) -> None:
        """Save model, optimizer, weight table and bookkeeping in one atomic file."""
        tensors = {f"model.{k}": v for k, v in net.state_dict().items()}
        groups: list = []
        if optimizer is not None:
            opt_t, groups = optimizer_to_tensors(optimizer)
            tensors.update(opt_t)
        tensors["table"] = torch.from_numpy(np.ascontiguousarray(table, dtype=np.float64))
        save_tensors(
            self.last_path,
            tensors,
            {**meta, "fingerprint": self.fingerprint, "param_groups": groups},
        )

    def save_best(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Save the best model state of the current stage."""
        save_tensors(self.best_path, state, {**meta, "fingerprint": self.fingerprint})

    def load_best(self) -> dict[str, torch.Tensor] | None:
        """The best model state saved for this run, or None."""
        if not self.best_path.exists():
            return None
        tensors, meta = load_tensors(self.best_path)
        if meta.get("fingerprint") != self.fingerprint:
            return None
        return tensors


def model_part(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``model.*`` entries of a last checkpoint, prefix removed."""
    return {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
