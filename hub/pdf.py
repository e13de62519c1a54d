"""A dependency-free PDF 1.4 writer for demo letters: A4, standard Helvetica fonts, WinAnsiEncoding."""

import textwrap
import unicodedata
from collections.abc import Sequence

_PAGE_WIDTH, _PAGE_HEIGHT = 595, 842  # A4 in points
_MARGIN = 56
_TOP = _PAGE_HEIGHT - _MARGIN
_BOTTOM = 72  # lowest body baseline; the page number sits below it
_BODY_SIZE, _BODY_LEADING, _BODY_WRAP = 10, 13, 90
_TITLE_SIZE, _TITLE_LEADING, _TITLE_WRAP = 16, 20, 50

_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>"

# (font resource, size, baseline y, text)
_Line = tuple[bytes, int, int, str]


def _encode(text: str) -> bytes:
    # WinAnsiEncoding is cp1252: a superset of Latin-1's printable range, so the standard fonts can also show
    # curly quotes and the euro sign. Anything else (and any control character) becomes '?'.
    text = unicodedata.normalize("NFC", text)
    text = "".join("?" if unicodedata.category(c) == "Cc" else c for c in text)
    return text.encode("cp1252", errors="replace")


def _literal(text: str) -> bytes:
    escaped = _encode(text).replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + escaped + b")"


def _text_string(text: str) -> bytes:
    # Document metadata may use any Unicode: a UTF-16BE hex string with a byte order mark needs no escaping.
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode("ascii") + b">"


def _wrap(lines: Sequence[str], width: int) -> list[str]:
    wrapped: list[str] = []
    for line in lines:
        for part in line.splitlines() or [""]:
            wrapped.extend(textwrap.wrap(part, width) or [""])
    return wrapped


def _layout(title: str, lines: Sequence[str]) -> list[list[_Line]]:
    pages: list[list[_Line]] = [[]]
    y = _TOP
    for part in _wrap([title], _TITLE_WRAP):
        y -= _TITLE_LEADING
        pages[0].append((b"F2", _TITLE_SIZE, y, part))
    y -= _BODY_LEADING  # a blank line between the title and the body
    for part in _wrap(lines, _BODY_WRAP):
        if y - _BODY_LEADING < _BOTTOM:
            pages.append([])
            y = _TOP
        y -= _BODY_LEADING
        pages[-1].append((b"F1", _BODY_SIZE, y, part))
    return pages


def _content(page: list[_Line], number: int, total: int) -> bytes:
    footer: _Line = (b"F1", _BODY_SIZE, _MARGIN - 20, f"Page {number} of {total}")
    ops = [
        b"/%s %d Tf 1 0 0 1 %d %d Tm %s Tj" % (font, size, _MARGIN, y, _literal(text))
        for font, size, y, text in [*page, footer]
        if text
    ]
    return b"BT\n" + b"\n".join(ops) + b"\nET"


def make_letter_pdf(*, title: str, lines: Sequence[str]) -> bytes:
    pages = _layout(title, lines)
    first_page = 6  # objects 1-5 are the catalog, page tree, two fonts and the document information
    kids = b" ".join(b"%d 0 R" % (first_page + 2 * i) for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Lang (en-GB) /ViewerPreferences << /DisplayDocTitle true >> >>",
        b"<< /Type /Pages /Kids [%s] /Count %d /MediaBox [0 0 %d %d]\n"
        b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>" % (kids, len(pages), _PAGE_WIDTH, _PAGE_HEIGHT),
        _FONT % b"Helvetica",
        _FONT % b"Helvetica-Bold",
        b"<< /Title %s /Producer (appointment-hub) >>" % _text_string(title),
    ]
    for number, page in enumerate(pages, start=1):
        stream = _content(page, number, len(pages))
        objects.append(b"<< /Type /Page /Parent 2 0 R /Contents %d 0 R >>" % (len(objects) + 2))
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # the binary comment tells tools the file is not text
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
