"""Finding a corpus's audio files, and reporting every file a scan passes over.

:func:`find_audio` walks a folder (following symbolic links to folders, once each) and returns
the audio files an adapter reads plus a :class:`~fairser.corpora._problems.Problem` for each
thing it skips that looks like part of the corpus:

- ``unsupported-audio``: an audio file in a format the adapter does not read (``.m4a``...);
- ``broken-link``: a symbolic link whose target is missing, or a loop of links (a link with
  an audio ending is returned like a file and reported when its header is read, with its
  utterance id: no ``stat`` per file while listing, which matters for 150 000 files);
- ``unreadable-folder``: a folder it may not list (permission denied).

Hidden entries (names starting with ``.``, e.g. macOS ``._x.wav`` metadata) and files that are
not audio (``.txt``, ``.csv``, video...) are not part of a corpus and are passed over quietly.
Files it returns may still be unreadable or damaged: :func:`fairser.audio.audio_info` finds
that when the manifest is built.

:func:`read_label_table` and :func:`read_label_text` read an adapter's label files with one-line
errors that say what is wrong (permission, not UTF-8, not a table) and how to fix it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pandas as pd

from fairser.audio import AUDIO_EXTENSIONS, UNSUPPORTED_EXTENSIONS
from fairser.corpora._problems import Problem
from fairser.errors import CorpusError

__all__ = ["find_audio", "list_audio", "read_label_table", "read_label_text", "require_root"]


def require_root(root: Path, kind: str) -> Path:
    """Return ``root`` resolved, or raise CorpusError when it is not a folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CorpusError(
            f"{kind}:{root}: corpus folder not found; pass KIND:ROOT with the folder that "
            "holds the corpus"
        )
    return root.resolve()


def _link_problem(path: str) -> Problem:
    try:
        os.stat(path)
        reason = "symbolic link to a folder already scanned (a loop or a second way in); " \
            "remove the link"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            reason = "symbolic link loop; point the link at the audio file or remove it"
        else:
            reason = f"broken symbolic link to {os.readlink(path)} (target missing); fix or " \
                "remove the link"
    return Problem(kind="broken-link", path=path, reason=reason)


def list_audio(root: str | Path, *, recursive: bool = True,
               extensions: tuple[str, ...] = AUDIO_EXTENSIONS
               ) -> tuple[list[str], list[Problem]]:
    """:func:`find_audio` returning path strings (cheaper for 100 000s of files)."""
    exts = {e.lower() for e in extensions}
    looks_audio = exts | set(UNSUPPORTED_EXTENSIONS) | set(AUDIO_EXTENSIONS)
    files: list[str] = []
    problems: list[Problem] = []
    seen: set[tuple[int, int]] = set()
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                problems.append(_link_problem(folder))
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError):
            continue  # no such folder (e.g. an optional sub-folder): nothing to skip
        except PermissionError:
            problems.append(Problem(
                kind="unreadable-folder", path=folder,
                reason=f"folder not readable (permission denied); make it readable "
                f"(chmod -R a+rX {folder}) or remove it"))
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            suffix = os.path.splitext(name)[1].lower()
            if suffix in exts:  # no stat here: reading the header tells a broken link apart
                files.append(entry.path)
                continue
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                if recursive:
                    stack.append(entry.path)
            elif not is_file:
                if entry.is_symlink():
                    problems.append(_link_problem(entry.path))
            elif suffix in looks_audio:
                problems.append(Problem(
                    kind="unsupported-audio", path=entry.path, code=suffix,
                    reason=f"{suffix} files are not read by this corpus adapter; convert it "
                    f"to {' or '.join(sorted(exts & {'.flac', '.wav'})) or sorted(exts)[0]} "
                    "or remove it"))
    files.sort(key=lambda p: p.replace(os.sep, "\0"))  # Path order (part by part), fast
    return files, problems


def find_audio(root: Path, *, recursive: bool = True,
               extensions: tuple[str, ...] = AUDIO_EXTENSIONS
               ) -> tuple[list[Path], list[Problem]]:
    """Return the audio files under ``root`` and a problem for every file skipped.

    Parameters
    ----------
    root : Path
        Folder to walk.
    recursive : bool, default=True
        Walk sub-folders too (symbolic links to folders are followed, each folder once).
    extensions : tuple of str
        Endings the adapter reads (compared lower-case).

    Returns
    -------
    files : list of Path
        Sorted audio files. A file with a readable ending is returned without looking at it:
        a broken link or an unreadable file among them is reported when its header is read,
        with its utterance id.
    problems : list of Problem
        ``unsupported-audio``, ``broken-link`` (links without an audio ending, folder loops)
        and ``unreadable-folder`` problems.
    """
    files, problems = list_audio(root, recursive=recursive, extensions=extensions)
    return [Path(p) for p in files], problems


def _unreadable(path: Path, exc: BaseException, what: str) -> CorpusError:
    if isinstance(exc, PermissionError):
        fix = f"permission denied; make it readable (chmod a+r {path})"
    elif isinstance(exc, IsADirectoryError):
        fix = f"is a folder; point the option at the {what} file"
    elif isinstance(exc, UnicodeDecodeError):
        fix = f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
    elif isinstance(exc, OSError):
        fix = f"cannot read it ({exc.strerror}); check the disk or copy it again"
    else:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fix = f"cannot read the table ({first[:160]}); save it as plain CSV"
    return CorpusError(f"{path}: {what}: {fix}")


def read_label_table(path: Path, *, what: str = "label table", sep: str = ",",
                     parquet: bool = False) -> pd.DataFrame:
    """Read a label table as text cells (``dtype=str``, nothing turned into NaN).

    Missing-value spellings stay as text here; :func:`fairser.corpora.is_missing` decides
    later, in one place. ``parquet=True`` reads a parquet file with its own types.

    Raises
    ------
    CorpusError
        One line naming the file and the fix (permission, encoding, malformed table).
    """
    try:
        if parquet:
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, sep=sep, encoding="utf-8")
    except (OSError, ValueError, pd.errors.ParserError) as exc:  # UnicodeDecodeError: ValueError
        raise _unreadable(path, exc, what) from None


def read_label_text(path: Path, *, what: str = "label file") -> str:
    """Read a UTF-8 label file (undecodable bytes replaced), with one-line errors."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise _unreadable(path, exc, what) from None
