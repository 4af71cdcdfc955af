"""``python -m fairser``: the ``fairser`` command (also ``torchrun -m fairser ...``)."""

from fairser.cli import main

if __name__ == "__main__":  # pragma: no branch - the module exists to be run
    raise SystemExit(main())
