"""Finding a corpus's audio files, and reporting every file a scan passes over.

:func:`find_audio` walks a folder (following symbolic links to folders, once each) and returns
the audio files an adapter reads plus a :class:`~fairser.corpora._problems.Problem` for each
thing it skips that looks like part of the corpus:

- ``unsupported-audio``: an audio file in a format the adapter does not read (``.m4a``...);
- ``broken-link``: a symbolic link whose target is missing, or a loop of links;
- ``unreadable-folder``: a folder it may not list (permission denied).

Hidden entries (names starting with ``.``, e.g. macOS ``._x.wav`` metadata) and files that are
not audio (``.txt``, ``.csv``, video...) are not part of a corpus and are passed over quietly.
Files it returns may still be unreadable or damaged: :func:`fairser.audio.audio_info` finds
that when the manifest is built.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from fairser.audio import AUDIO_EXTENSIONS, UNSUPPORTED_EXTENSIONS
from fairser.corpora._problems import Problem
from fairser.errors import CorpusError

__all__ = ["find_audio", "require_root"]


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
        Sorted audio files.
    problems : list of Problem
        ``unsupported-audio``, ``broken-link`` and ``unreadable-folder`` problems.
    """
    exts = {e.lower() for e in extensions}
    looks_audio = exts | set(UNSUPPORTED_EXTENSIONS) | set(AUDIO_EXTENSIONS)
    files: list[Path] = []
    problems: list[Problem] = []
    seen: set[tuple[int, int]] = set()
    stack = [str(root)]
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
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                if recursive:
                    stack.append(entry.path)
                continue
            if not is_file:
                if entry.is_symlink():
                    problems.append(_link_problem(entry.path))
                continue
            suffix = os.path.splitext(entry.name)[1].lower()
            if suffix in exts:
                files.append(Path(entry.path))
            elif suffix in looks_audio:
                problems.append(Problem(
                    kind="unsupported-audio", path=entry.path, code=suffix,
                    reason=f"{suffix} files are not read by this corpus adapter; convert it "
                    f"to {' or '.join(sorted(exts & {'.flac', '.wav'})) or sorted(exts)[0]} "
                    "or remove it"))
    return sorted(files), problems
