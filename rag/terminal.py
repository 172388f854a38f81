"""What the CLI writes to a terminal: text from sources stripped of control sequences, JSON with
them escaped, one-line errors, and a quiet exit when the reader of a pipe goes away.

A source file is untrusted input: an ESC sequence in a title or passage could recolour, move
the cursor, retitle the window or hide text when printed raw, and a bidi override can reorder
what a reader sees. Only the CLI's own newlines and tabs pass.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

EXIT_CLOSED_PIPE = 141  # what a shell reports for a process ended by SIGPIPE (128 + 13)

# ESC sequences as a whole (CSI with parameters, OSC up to its terminator, two-byte escapes), so
# no "[31m" debris is left behind; then any remaining C0/C1 control, DEL, or bidi control.
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|"
                              r"\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# json.dumps escapes C0 controls but passes DEL, C1 and bidi controls through raw.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: str) -> str:
    """``text`` without terminal control sequences; newlines and tabs are kept."""
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


def one_line(text: str) -> str:
    """``text`` as a single safe line: controls stripped, line breaks turned into spaces."""
    return " ".join(strip_controls(text).split())


def json_safe(text: str) -> str:
    """JSON text with the characters ``json.dumps`` leaves raw escaped as ``\\uXXXX`` (same data)."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class CleanStream:
    """A text stream that strips control sequences from everything written to it."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(strip_controls(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding... as the real stream
        return getattr(self.stream, name)


@contextlib.contextmanager
def clean_stdout() -> Iterator[None]:
    """Strip control sequences from ``sys.stdout`` for the duration (the CLI's whole run)."""
    original = sys.stdout
    sys.stdout = CleanStream(original)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout = original


def say(line: str) -> None:
    """One line on stderr; a closed stderr is not worth a traceback."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def reader_went_away() -> int:
    """After a BrokenPipeError (``rag sources | head -1``): end quietly, as a killed pipe stage would.

    Python flushes stdout again at exit, which would raise once more and print "Exception
    ignored"; pointing stdout at /dev/null first is the remedy the Python docs give (signal module).
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_CLOSED_PIPE
