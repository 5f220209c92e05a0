"""The repository's own documentation: citations of docs/theory.md resolve, nothing points outside.

Pure Python (git ls-files and text scans): no JAX, well under a second.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
THEORY = ROOT / "docs" / "theory.md"
SECTION = "\u00a7"  # the section sign, spelled out so that this file cites nothing
CITATION = re.compile(SECTION + r"(\d+(?:\.\d+)?)")
HEADING = re.compile(r"^(##|###) (\d+)\.(\d+)? ", re.MULTILINE)
# Written in pieces so that this file does not contain them itself.
FORBIDDEN = ("../" + "shared", "THEORY" + ".md", "ENGINEERING" + "-NOTES")
# The numbering the code cites (docs/theory.md must have exactly these sections).
SECTIONS = {str(n) for n in range(1, 12)} | {
    "4.1",
    "4.2",
    "4.3",
    "6.1",
    "6.2",
    "6.3",
    "6.4",
    "7.1",
    "7.2",
    "8.1",
    "8.2",
    "8.3",
    "8.4",
    "11.1",
    "11.2",
    "11.3",
    "11.4",
    "11.5",
    "11.6",
    "11.7",
    "11.8",
}


def _repo_files() -> list[Path]:
    """Tracked files plus untracked ones that git does not ignore (so new files count too)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no file list to scan")
    names = sorted({n for n in out.decode().split("\0") if n})
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def _text_files() -> dict[str, str]:
    texts = {}
    for path in _repo_files():
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary (figures, npz)
        try:
            texts[path.relative_to(ROOT).as_posix()] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def theory_sections(text: str) -> set[str]:
    """Section numbers of the headings ``## N. Title`` and ``### N.M Title``."""
    found = set()
    for level, major, minor in HEADING.findall(text):
        if level == "##" and not minor:
            found.add(major)
    found |= set(re.findall(r"^### (\d+\.\d+) ", text, re.MULTILINE))
    return found


def test_theory_has_exactly_the_cited_numbering():
    sections = theory_sections(THEORY.read_text())
    assert sections == SECTIONS, (
        f"missing {sorted(SECTIONS - sections)}, unexpected {sorted(sections - SECTIONS)}"
    )


def test_section_parser_reads_headings_only():
    text = "## 3. Per-feature ODEs\n### 4.1 JEPA\ntext ## 5. not a heading\n#### 9.9 deeper\n"
    assert theory_sections(text) == {"3", "4.1"}


def test_every_citation_names_an_existing_section():
    sections = theory_sections(THEORY.read_text())
    texts = _text_files()
    assert "jepa_flow/__init__.py" in texts  # the scan sees the package
    cited = {}
    for name, text in texts.items():
        for number in CITATION.findall(text):
            cited.setdefault(number, []).append(name)
    assert len(cited) >= 8  # the code does cite the theory
    missing = {n: sorted(set(files)) for n, files in cited.items() if n not in sections}
    assert not missing, f"citations of sections that docs/theory.md lacks: {missing}"


def test_citation_pattern():
    text = f"theory {SECTION}3-{SECTION}4, {SECTION}6.2's rule, see {SECTION}4."
    assert CITATION.findall(text) == ["3", "4", "6.2", "4"]


def test_no_file_points_outside_the_repository():
    offenders = [
        f"{name}: {word}"
        for name, text in _text_files().items()
        for word in FORBIDDEN
        if word in text
    ]
    assert not offenders, offenders
