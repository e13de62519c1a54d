import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hub.pdf import make_letter_pdf

ROOT = Path(__file__).parent.parent
MAPS = ROOT / "static" / "maps"
SVG = "{http://www.w3.org/2000/svg}"


def _xref(pdf: bytes) -> tuple[int, list[int]]:
    """Return the startxref offset and the in-use object offsets (index 0 is object 1)."""
    match = re.search(rb"startxref\n(\d+)\n%%EOF\n$", pdf)
    assert match, "trailer must end with startxref, an offset and %%EOF"
    start = int(match.group(1))
    assert pdf[start : start + 5] == b"xref\n"
    header = re.match(rb"xref\n0 (\d+)\n", pdf[start:])
    assert header
    count = int(header.group(1))
    table = pdf[start + header.end() : start + header.end() + 20 * count]
    entries = [table[i : i + 20] for i in range(0, len(table), 20)]
    assert len(entries) == count
    assert entries[0] == b"0000000000 65535 f \n"
    offsets = []
    for entry in entries[1:]:
        assert re.fullmatch(rb"\d{10} 00000 n \n", entry), entry
        offsets.append(int(entry[:10]))
    assert pdf[start + header.end() + 20 * count :].startswith(b"trailer\n")
    assert re.search(rb"/Size %d\b" % count, pdf)
    return start, offsets


def _streams(pdf: bytes) -> list[bytes]:
    streams = []
    for match in re.finditer(rb"<< /Length (\d+) >>\nstream\n", pdf):
        end = match.end() + int(match.group(1))
        assert pdf[end : end + 10] == b"\nendstream", "stream /Length must be exact"
        streams.append(pdf[match.end() : end])
    return streams


def _page_count(pdf: bytes) -> int:
    match = re.search(rb"/Type /Pages /Kids \[([^\]]*)\] /Count (\d+)", pdf)
    assert match
    assert len(re.findall(rb"\d+ 0 R", match.group(1))) == int(match.group(2))
    return int(match.group(2))


def test_starts_with_magic_and_ends_with_eof() -> None:
    pdf = make_letter_pdf(title="Your appointment", lines=["Hello"])
    assert pdf.startswith(b"%PDF-1.4\n")
    assert pdf.endswith(b"%%EOF\n")


def test_xref_offsets_point_at_each_object() -> None:
    pdf = make_letter_pdf(title="Your appointment", lines=[f"Line {n}" for n in range(120)])
    _, offsets = _xref(pdf)
    assert len(offsets) >= 7
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number), number


def test_catalog_has_language_and_info_has_title() -> None:
    pdf = make_letter_pdf(title="Hi", lines=[])
    assert b"/Lang (en-GB)" in pdf
    assert b"/Title <FEFF00480069>" in pdf
    assert b"/BaseFont /Helvetica-Bold" in pdf
    assert b"/F2 16 Tf 1 0 0 1 56 766 Tm (Hi) Tj" in _streams(pdf)[0]


def test_short_letter_is_one_page() -> None:
    pdf = make_letter_pdf(title="Your appointment", lines=["Hello", "", "Goodbye"])
    assert _page_count(pdf) == 1
    assert len(_streams(pdf)) == 1


def test_long_letter_makes_more_pages_and_keeps_every_line() -> None:
    lines = [f"Line {n:03d}" for n in range(200)]
    pdf = make_letter_pdf(title="Your appointment", lines=lines)
    pages = _page_count(pdf)
    assert pages > 1
    streams = _streams(pdf)
    assert len(streams) == pages
    shown = [m.decode() for s in streams for m in re.findall(rb"\((Line \d{3})\) Tj", s)]
    assert shown == lines
    assert b"(Page 1 of %d) Tj" % pages in streams[0]


def test_long_lines_wrap_at_about_90_characters() -> None:
    pdf = make_letter_pdf(title="T", lines=["word " * 100])
    shown = re.findall(rb"/F1 10 Tf 1 0 0 1 56 \d+ Tm \((word[ a-z]*)\) Tj", _streams(pdf)[0])
    assert len(shown) >= 5
    assert all(len(text) <= 90 for text in shown)


def test_parentheses_and_backslashes_are_escaped() -> None:
    pdf = make_letter_pdf(title="Clinic (room 3)", lines=["a(b)c", "C:\\temp", "unbalanced ("])
    stream = _streams(pdf)[0]
    assert rb"(a\(b\)c) Tj" in stream
    assert rb"(C:\\temp) Tj" in stream
    assert rb"(unbalanced \() Tj" in stream
    assert rb"(Clinic \(room 3\)) Tj" in stream
    # With every well-formed literal string removed, no stray parenthesis may remain.
    rest = re.sub(rb"\((?:[^\\()]|\\.)*\)", b"", stream)
    assert b"(" not in rest and b")" not in rest


def test_text_outside_the_font_encoding_becomes_a_question_mark() -> None:
    pdf = make_letter_pdf(title="Łódź 😀", lines=["Zoë said “hi” – £5 €5 😀 日本", "tab\there\x00"])
    stream = _streams(pdf)[0]
    assert "(Zoë said “hi” – £5 €5 ? ??) Tj".encode("cp1252") in stream
    assert b"(tab     here?) Tj" in stream
    assert "(?ód? ?) Tj".encode("cp1252") in stream
    _xref(pdf)


def test_text_can_be_extracted_when_pdftotext_is_installed(tmp_path: Path) -> None:
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "letter.pdf"
    path.write_bytes(make_letter_pdf(title="Your appointment", lines=[f"Line {n}" for n in range(200)]))
    text = subprocess.run([pdftotext, "-layout", str(path), "-"], capture_output=True, check=True, text=True).stdout
    assert "Your appointment" in text
    assert "Line 0" in text and "Line 199" in text


def test_both_demo_site_maps_exist() -> None:
    assert {path.name for path in MAPS.glob("*.svg")} >= {"rfh.svg", "bch.svg"}


@pytest.mark.parametrize("path", sorted(MAPS.glob("*.svg")), ids=lambda path: path.name)
def test_site_map_is_accessible_standalone_svg(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert len(source.encode("utf-8")) < 12_000
    root = ET.fromstring(source)
    assert root.tag == f"{SVG}svg"
    assert len(root.get("viewBox", "").split()) == 4
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and (title.text or "").strip()
    assert desc is not None and len((desc.text or "").strip()) > 100
    assert set((root.get("aria-labelledby") or "").split()) == {title.get("id"), desc.get("id")}
    for element in root.iter():
        assert element.tag.rpartition("}")[2] not in {"script", "foreignObject", "image", "style"}
        for name, value in element.attrib.items():
            assert not name.startswith("on"), name
            if name.rpartition("}")[2] == "href":
                assert value.startswith("#"), value
    assert not re.search(r"url\(\s*['\"]?(?!#)", source)
    sizes = [float(size) for size in re.findall(r'font-size="([\d.]+)"', source)]
    assert sizes and min(sizes) >= 14
