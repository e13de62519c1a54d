"""Text at the boundary: the one rule for what text may hold (`text_problem`), what a form or query value loses
before anything reads it (`printable`), and a field's name made safe to show back (`escaped`). Pure: no I/O."""

from __future__ import annotations

import re

# Unicode's control characters (category Cc): C0, DEL and C1. Tab and line feed are allowed only in free text.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_TAB_AND_NEWLINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
CONTROLS = "must not contain control characters"
SURROGATES = "must be valid Unicode text (no lone surrogates such as \\ud800)"


# What a form or query value loses before anything reads it: control characters other than tab and line breaks
# (PostgreSQL refuses NUL in text), lone surrogates (no database stores them) and Unicode's noncharacters
# (an HTML page may not hold them, so a value echoed back into a form would break the page).
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


def printable(text: str) -> str:
    """Text without the characters no form field means to hold (see _UNPRINTABLE)."""
    cleaned = _UNPRINTABLE.sub("", text)
    if any((ord(ch) & 0xFFFE) == 0xFFFE for ch in cleaned if ord(ch) > 0xFFFF):  # U+1FFFE, U+10FFFF...
        cleaned = "".join(ch for ch in cleaned if (ord(ch) & 0xFFFE) != 0xFFFE)
    return cleaned


def text_problem(value: str, *, newlines: bool = False) -> str | None:
    """The one rule for text at the boundary: it must encode as UTF-8 (a lone surrogate cannot be stored) and hold no
    control characters (tab and line feed only where `newlines`, as in free text)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATES
    if (_CONTROLS_BUT_TAB_AND_NEWLINE if newlines else _CONTROLS).search(value):
        return CONTROLS
    return None


def escaped(name: str) -> str:
    """A field's name as the caller wrote it, made safe to store in the audit and to send back."""
    return "".join(ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else f"\\u{ord(ch):04x}" for ch in name)
