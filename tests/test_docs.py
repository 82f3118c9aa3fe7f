"""The documentation holds together: every relative link in the README, the changelog and
`docs/` leads to a file that exists (and to a heading of it, when it names one), the README
stays an index, and the docs speak to a reader who arrives today."""

import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.utils.processes import REPO_ROOT

README_MOST_LINES = 200
PAGES = sorted(
    [REPO_ROOT / "README.md", REPO_ROOT / "CHANGELOG.md", *(REPO_ROOT / "docs").glob("*.md")]
)
# The changelog is the one page that tells the history.
TODAY = [page for page in PAGES if page.name != "CHANGELOG.md"]
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+).+?\1")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
# Words that tell a story of how the project got here rather than what it is.
HISTORY = re.compile(r"[Ii]ssue #?[0-9]+|this round|before this round")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(title: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, without punctuation, spaces as
    hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: Counter[str] = Counter()
    found = set()
    for line in prose_lines(page.read_text()):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
            seen[base] += 1
    return found


def relative_links(page: Path) -> list[str]:
    """Every relative link target of a page, code spans and blocks left out."""
    targets = []
    for line in prose_lines(page.read_text()):
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if not EXTERNAL.match(target):
                targets.append(target)
    return targets


def broken(page: Path, target: str) -> str | None:
    """Why a link does not resolve, or None when it does."""
    path, _, fragment = target.partition("#")
    destination = (page.parent / unquote(path)).resolve() if path else page
    if not destination.exists():
        return "no such file"
    if fragment and destination.suffix == ".md" and unquote(fragment) not in anchors(destination):
        return "no such heading"
    return None


def test_the_anchors_are_githubs() -> None:
    assert slug("What `make run` starts") == "what-make-run-starts"
    assert slug("Truffle ↔ Ashby integration") == "truffle--ashby-integration"
    assert slug("Reading histories: the codec endpoint") == "reading-histories-the-codec-endpoint"
    assert slug("A screening's life") == "a-screenings-life"


def test_the_docs_are_there_and_linked_from_the_readme() -> None:
    linked = {target.partition("#")[0] for target in relative_links(REPO_ROOT / "README.md")}
    pages = {f"docs/{page.name}" for page in (REPO_ROOT / "docs").glob("*.md")}
    assert len(pages) >= 9
    assert pages | {"CHANGELOG.md"} <= linked


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO_ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    problems = [
        f"{target}: {why}"
        for target in relative_links(page)
        if (why := broken(page, target)) is not None
    ]
    assert problems == []


def test_the_readme_stays_an_index() -> None:
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MOST_LINES


@pytest.mark.parametrize("page", TODAY, ids=[str(p.relative_to(REPO_ROOT)) for p in TODAY])
def test_the_docs_speak_to_a_reader_who_arrives_today(page: Path) -> None:
    assert HISTORY.findall(page.read_text()) == []
