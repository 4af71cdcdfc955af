"""Save a randomly initialised whisper-base-sized ``WhisperModel`` into a folder, for the
``hf:FOLDER`` frontend where real weights cannot travel (a lent GPU machine): the same shapes
and compute as whisper-base's encoder (d_model 512, 6 blocks, 8 heads, ffn 2048), random values.

Usage::

    python benchmarks/random_whisper.py /tmp/enc [--small]
"""

from __future__ import annotations

import argparse

import torch
from transformers import WhisperConfig, WhisperModel

#: Encoder sizes: whisper-base's, and a tiny one for rehearsals on a CPU.
SIZES = {
    "base": dict(d_model=512, encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048),
    "small": dict(d_model=64, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=128),
}


def save_random_whisper(folder, *, small: bool = False) -> dict:
    """Save the random model (seed 0) into ``folder``; return its encoder size."""
    size = SIZES["small" if small else "base"]
    cfg = WhisperConfig(
        **size,
        decoder_layers=1,
        decoder_attention_heads=size["encoder_attention_heads"],
        decoder_ffn_dim=size["encoder_ffn_dim"],
        vocab_size=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=32,
    )
    torch.manual_seed(0)
    WhisperModel(cfg).save_pretrained(folder)
    return size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--small", action="store_true", help="d_model 64, 2 blocks (a rehearsal)")
    args = ap.parse_args()
    save_random_whisper(args.folder, small=args.small)


if __name__ == "__main__":
    main()
