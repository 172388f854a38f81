"""PDFs with compressed streams and the ways to damage them, shared by the hypothesis fuzz test
(tests/test_fuzz.py) and the measuring script (bench/fuzz_pdfs.py).

An uncompressed PDF never reaches pypdf's filter code; these seeds hold Flate-compressed page
contents, so a mutation lands in a filter name, its parameters, the compressed bytes or the
object references around them.
"""

from __future__ import annotations

import io
import re

from pypdf import PdfReader, PdfWriter
from test_loaders import make_pdf

# Tokens a mutation replaces, and what it puts there: other filters (some pypdf cannot decode),
# the "/Fl" abbreviation pypdf refuses, broken references, stray syntax.
TOKENS = (b"/FlateDecode", b"/Filter", b"/Length", b" 0 R", b" obj", b"stream", b"endstream", b"/Contents",
          b"/Font", b"/Pages", b"/Kids", b"/Root", b"/Type", b"/Resources", b"/Count", b"xref", b"/Size",
          b"/ObjStm", b"/N ", b"/First", b"/Info", b"/Title", b"/Parent", b"trailer", b"startxref")
REPLACEMENTS = (b"/FlateDe@ode", b"/Fl", b"/LZWDecode", b"/ASCII85Decode", b"/ASCIIHexDecode",
                b"/RunLengthDecode", b"/DCTDecode", b"/CCITTFaxDecode", b"/JBIG2Decode", b"/Crypt", b"/JPXDecode",
                b"", b" 99 0 R", b" 1 0 R", b" -1 0 R", b"[", b"]", b"<<", b">>", b"null", b"0", b"-5",
                b"99999999999", b"(", b"/Filter [/FlateDecode /FlateDecode]", b"/DecodeParms << /Predictor 12 >>")

# Values of the wrong kind for a key, or in place of a whole object ("5" where a stream belongs).
KEYS = (b"/Length", b"/Filter", b"/Contents", b"/Resources", b"/Font", b"/F1", b"/Kids", b"/Count", b"/Pages",
        b"/MediaBox", b"/Root", b"/Info", b"/Parent", b"/Title", b"/Author", b"/Type", b"/Size")
VALUES = (b"5", b"-1", b"0", b"99999999999999999999", b"1.5e400", b"(text)", b"<feff00>", b"[ ]", b"[ 1 0 R ]",
          b"null", b"/Name", b"true", b"<< >>", b"<< /Type /Page >>", b"[ /FlateDecode /Fl ]", b"4 0 R", b"5 0 R",
          b"9 0 R", b"<< /Type /Pages /Kids [ 5 0 R ] /Count 1 >>")
_VALUE = {key: re.compile(re.escape(key) + rb" ([^\n/>]+)") for key in KEYS}
_OBJECT = re.compile(rb"\d+ 0 obj\n(<<.*?>>)\n(?:stream|endobj)", re.S)


def _compressed(data: bytes) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    for page in writer.pages:
        page.compress_content_streams()
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def seeds() -> tuple[bytes, ...]:
    """Three readable PDFs whose page contents are Flate-compressed."""
    lines = [["Cats sleep for most of the day.", "They hunt (at dawn)."], [], ["Page three holds more text."]]
    plain = make_pdf(lines, title="Cats", author="Ada Lovelace; Alan Turing")
    return (_compressed(plain), _compressed(make_pdf([["One page of text about owls."]] * 2)),
            _compressed(make_pdf([["Scanned, with a line of text."]], image=True, title="Scan")))


def mutate(seed: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    """Apply ``(kind, position, payload)`` edits: overwrite, insert, token swap, a key's value or a
    whole object replaced by one of the wrong kind, flip, truncate."""
    data = bytearray(seed)
    for kind, position, payload in edits:
        if not data:
            break
        at = position % len(data)
        if kind == "overwrite":
            data[at : at + len(payload)] = payload
        elif kind == "insert":
            data[at:at] = payload
        elif kind == "flip":
            data[at] ^= payload[0] if payload else 0xFF
        elif kind == "truncate":
            del data[at:]
        elif kind == "token":
            token = TOKENS[position % len(TOKENS)]
            places = [i for i in range(len(data)) if data.startswith(token, i)]
            if places:
                where = places[(position // len(TOKENS)) % len(places)]
                replacement = REPLACEMENTS[payload[0] % len(REPLACEMENTS)] if payload else b""
                data[where : where + len(token)] = replacement
        elif kind in ("value", "object"):
            pattern = _VALUE[KEYS[position % len(KEYS)]] if kind == "value" else _OBJECT
            places = list(pattern.finditer(data))
            if places:
                match = places[(position // len(KEYS)) % len(places)]
                value = VALUES[payload[0] % len(VALUES)] if payload else b""
                data[match.start(1) : match.end(1)] = value
    return bytes(data)
