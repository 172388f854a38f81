"""Show generated prose in a terminal: tokens as they stream, then the checked version in their place."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from typing import TextIO

from rag.generate import Prose

_UP_AND_CLEAR = "\x1b[{n}A\r\x1b[J"  # cursor up n rows, to column 0, clear to the end of the screen


def prose_text(prose: Prose) -> str:
    """What the reader is left with: the checked prose, or the one line saying why there is none."""
    if prose.notice:
        return prose.notice
    if prose.text is None:
        return f"Prose withheld: {prose.withheld_because}"
    dropped = sum(not s.supported for s in prose.sentences)
    note = f"\n({dropped} sentence(s) removed: not supported by the sources.)" if dropped else ""
    return prose.text + note


def rows_taken(text: str, columns: int) -> int:
    """Terminal rows ``text`` occupies once wrapped at ``columns``."""
    return sum(max(1, -(-len(line) // columns)) for line in text.split("\n"))


def stream_then_correct(tokens: Iterable[str], checked: Callable[[], Prose], out: TextIO) -> Prose:
    """Print tokens as they arrive (on a terminal), then replace them with the checked prose."""
    streamed = ""
    if out.isatty():
        for piece in tokens:
            streamed += piece
            out.write(piece)
            out.flush()
    prose = checked()
    if streamed:
        columns = shutil.get_terminal_size().columns
        rows = rows_taken(streamed, columns)
        out.write("\r\x1b[J" if rows == 1 else _UP_AND_CLEAR.format(n=rows - 1))
    out.write(prose_text(prose) + "\n")
    out.flush()
    return prose
