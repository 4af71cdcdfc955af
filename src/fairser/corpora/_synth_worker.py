"""Worker process of espeak-ng synthesis: ``python -m fairser.corpora._synth_worker TASK_JSON``.

Tasks: ``{"task": "corpus", ...}`` runs :func:`fairser.corpora.synthetic.write_corpus` (one corpus
of the synthetic pair) and ``{"task": "speak", ...}`` runs
:func:`fairser.corpora._espeak.speak_task`. A fresh process per task keeps espeak-ng's
process-wide synthesis state from making the output depend on what rendered before, and keeps
anything espeak-ng does (even ``exit()``) out of the caller. A :class:`fairser.errors.FairserError`
is printed as one line on stderr with exit code 2, which the caller re-raises as it is.
"""

from __future__ import annotations

import json
import sys


def _corpus(task: dict) -> None:
    from fairser.corpora.synthetic import write_corpus

    write_corpus(task["folder"], corpus=task["corpus"], seed=task["seed"],
                 config=task["config"])


def _speak(task: dict) -> None:
    from fairser.corpora._espeak import speak_task

    speak_task(task)


def main(argv: list[str] | None = None) -> int:
    """Run the task given as a JSON argument; return the exit code (2: a FairserError)."""
    from fairser.errors import FairserError

    task = json.loads((argv if argv is not None else sys.argv[1:])[0])
    try:
        {"corpus": _corpus, "speak": _speak}[task.get("task", "corpus")](task)
    except FairserError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
