"""One rollback rule for changes to the corpus folder: a change that fails leaves it as it was.

Adding or removing a source is two steps, a change to ``corpus/`` and a build. When the second
fails (a refused file, a broken source elsewhere, another build holding the lock, an
interrupt), the folder and ``sources.yaml`` are put back byte for byte, so what the curator sees
on disk always matches an index that was, or could be, built.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _regular_files(folder: Path) -> dict[str, os.stat_result]:
    return {entry.name: entry.stat() for entry in os.scandir(folder)
            if entry.is_file(follow_symlinks=False) and not entry.name.startswith(".")}


def _keep(source: Path, backup: Path) -> None:
    """A hard link costs no copy; a file system without them gets a copy."""
    try:
        os.link(source, backup)
    except OSError:
        shutil.copy2(source, backup)


@contextlib.contextmanager
def unchanged_on_failure(corpus_dir: Path) -> Iterator[None]:
    """Run a corpus change; on any exception restore every file it added, removed or replaced.

    Works because the corpus is only ever changed by adding new files, unlinking files and
    atomically replacing ``sources.yaml`` (a new inode): a hard link taken before the change
    still holds the old bytes afterwards.
    """
    if not corpus_dir.is_dir():
        yield  # nothing to protect; the change itself reports the missing folder
        return
    with tempfile.TemporaryDirectory(dir=corpus_dir, prefix=".rollback-") as folder:
        backup = Path(folder)
        before = _regular_files(corpus_dir)
        for name in before:
            _keep(corpus_dir / name, backup / name)
        try:
            yield
        except BaseException:
            _restore(corpus_dir, backup, before)
            raise


def _restore(corpus_dir: Path, backup: Path, before: dict[str, os.stat_result]) -> None:
    now = _regular_files(corpus_dir)
    for name in now.keys() - before.keys():
        (corpus_dir / name).unlink(missing_ok=True)
    for name, old in before.items():
        current = now.get(name)
        if current is None or (current.st_ino, current.st_mtime_ns) != (old.st_ino, old.st_mtime_ns):
            os.replace(backup / name, corpus_dir / name)
