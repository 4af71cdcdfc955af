"""BIIC-Podcast (Upadhyay et al., 2023), Taiwanese Mandarin podcasts labelled like MSP-Podcast.

The release follows MSP-Podcast's protocol, so this adapter accepts the same layout
(``Labels/labels_consensus.csv`` + ``Audios/``) and codes (see
:mod:`fairser.corpora.msp_podcast`). We have not seen its files: the label file, the audio
folder, every column name (``columns``), the emotion codes (``label_map``), gender spellings
(``gender_map``) and split names (``split_map``) are options, and any code the defaults do not
know is reported rather than guessed.
"""

from __future__ import annotations

from fairser.corpora._base import Adapter
from fairser.corpora.msp_podcast import LABEL_MAP, PodcastOptions, make_scan

__all__ = ["ADAPTER", "BiicPodcastOptions"]


class BiicPodcastOptions(PodcastOptions):
    """Options of the ``biic-podcast`` adapter (the same as ``msp-podcast``'s)."""


ADAPTER = Adapter(
    name="biic-podcast", scan=make_scan("biic-podcast"), options=BiicPodcastOptions,
    label_map=lambda opts: LABEL_MAP, language="zh-TW", official_splits=True,
    description="BIIC-Podcast, MSP-Podcast layout (overridable), Taiwanese Mandarin",
)
