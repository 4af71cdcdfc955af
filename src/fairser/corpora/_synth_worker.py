"""Worker process of the synthetic pair: ``python -m fairser.corpora._synth_worker ARGS_JSON``.

Runs :func:`fairser.corpora.synthetic.write_corpus` in a fresh process so espeak-ng's
process-wide synthesis state cannot make the output depend on what rendered before.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the JSON argument and synthesise one corpus; return the exit code."""
    from fairser.corpora.synthetic import write_corpus

    args = json.loads((argv if argv is not None else sys.argv[1:])[0])
    write_corpus(args["folder"], corpus=args["corpus"], seed=args["seed"],
                 config=args["config"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
