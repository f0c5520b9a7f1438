"""Every figure the README and the guides in docs/ quote from a benchmark is in its result file.

A figure is quoted as a Markdown link to its result file: the number is the link's text, and
after ``#`` comes where it sits in the file's ``figures`` (keys and list indices joined by
``/``), e.g. ``[0.94x](bench/results/latency.json#ratios/p50)``. The number must be the
value rounded to as many decimals as the document writes (``15.4`` holds ``15.42``); one followed
by ``%`` may also be a share (``37%`` holds ``0.37``). A link without ``#`` holds its number to any
value of the file. A link whose text has no number only points at the file.

A document may name a result file only in such a link (a file named in the text would leave the
figures beside it unchecked), and every result file it cites must come from a clean checkout
(no ``"dirty": true``). Fenced code blocks (commands) are not read.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
import re
from typing import Any

import pytest

from tests.conftest import REPO

RESULTS = REPO / "bench" / "results"
LINK = re.compile(r"\[(?P<text>[^\]\n]*)\]\((?P<target>[^)#\s]*bench/results/[^)#\s]+\.json)(?:#(?P<path>[^)\s]*))?\)")
NAMED = re.compile(r"bench/results/[\w.-]+\.json")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?P<percent>%?)")


@dataclass(frozen=True)
class Figure:
    """One number a document quotes, where it quotes it, and the value it quotes."""

    document: Path
    text: str
    result_file: Path
    path: str | None

    def where(self) -> str:
        return f"{self.document.name}: [{self.text}]({self.result_file.name}{'#' + self.path if self.path else ''})"


def documents(repo: Path = REPO) -> list[Path]:
    """The README and every guide."""
    return [repo / "README.md", *sorted((repo / "docs").glob("**/*.md"))]


def prose(markdown: str) -> str:
    """The document without its fenced code blocks."""
    return FENCE.sub("", markdown)


def quoted_figures(document: Path) -> tuple[list[Figure], list[str]]:
    """The figures a document quotes by link, and the result files it names outside a link."""
    text = prose(document.read_text())
    figures = [Figure(document, m["text"], (document.parent / m["target"]).resolve(), m["path"] or None)
               for m in LINK.finditer(text)]
    named_elsewhere = [f"{document.name}: {name} named outside a link" for name in NAMED.findall(LINK.sub("", text))]
    return figures, named_elsewhere


def _at(figures: Any, path: str) -> Any:
    """The value at ``path``: keys and list indices joined by ``/``; a key that holds a ``/``
    itself (``area_x_type/dense``) is matched whole, the longest key first."""
    value, steps = figures, path.split("/")
    while steps:
        if isinstance(value, list):
            value, steps = value[int(steps[0])], steps[1:]
            continue
        taken = next(n for n in range(len(steps), 0, -1) if "/".join(steps[:n]) in value)
        value, steps = value["/".join(steps[:taken])], steps[taken:]
    return value


def _numbers(value: Any) -> list[float]:
    """Every number in a JSON value (booleans are not numbers)."""
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]
    return []


def _rounds_to(value: float, written: str) -> bool:
    """Whether ``written`` (as a document writes it: commas, decimals) is ``value`` rounded to its decimals."""
    digits = written.replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return abs(value - float(digits)) <= 0.5 * 10 ** -decimals + 1e-9


def check(figure: Figure, results: Path = RESULTS) -> str | None:
    """Why the document's figure is not in its result file, or None when it is."""
    if not figure.result_file.is_file():
        return f"{figure.where()}: no such result file"
    if figure.result_file.parent != results.resolve():
        return f"{figure.where()}: not a file of bench/results/"
    record = json.loads(figure.result_file.read_text())
    if record.get("dirty") is True:
        return f"{figure.where()}: {figure.result_file.name} was written from a dirty checkout"
    numbers = list(NUMBER.finditer(figure.text))
    if not numbers:
        return None if figure.path is None else f"{figure.where()}: a path with no number to check"
    if len(numbers) > 1:
        return f"{figure.where()}: one number per link ({len(numbers)} here)"
    written, percent = numbers[0].group(0).rstrip("%"), bool(numbers[0]["percent"])
    try:
        values = _numbers(record["figures"] if figure.path is None else _at(record["figures"], figure.path))
    except (KeyError, IndexError, ValueError, TypeError, StopIteration):
        return f"{figure.where()}: {figure.path} is not in the file's figures"
    candidates = values + ([v * 100 for v in values] if percent else [])
    if any(_rounds_to(v, written) for v in candidates):
        return None
    shown = values[0] if figure.path is not None and len(values) == 1 else f"{len(values)} values"
    return f"{figure.where()}: the file holds {shown}, not {written}{'%' if percent else ''}"


def is_figure(figure: Figure) -> bool:
    return NUMBER.search(figure.text) is not None


def test_every_quoted_figure_is_in_its_clean_result_file() -> None:
    quoted: list[Figure] = []
    problems: list[str] = []
    for document in documents():
        figures, named = quoted_figures(document)
        quoted += figures
        problems += named
    problems += [p for p in map(check, quoted) if p]
    checked = [f for f in quoted if is_figure(f)]
    assert problems == []
    assert sum(1 for f in checked if f.document.name == "README.md" and f.document.parent == REPO) > 0, \
        "the README quotes no headline figure by link"
    assert len(checked) > 0
    print(f"{len(checked)} figures checked in {len(documents())} documents")


# The checker itself, on documents and result files made here.

@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "docs").mkdir()
    (tmp_path / "bench" / "results" / "speed.json").write_text(json.dumps(
        {"commit": "abc", "figures": {"p50_ms": 15.42, "share": 0.371, "runs": [{"seconds": 2.39}], "n": 1388,
                                     "groups": {"area/dense": {"mase": 0.7937}}}}))
    return tmp_path


def _problems(repo: Path, markdown: str, where: str = "docs/guide.md") -> list[str]:
    document = repo / where
    document.write_text(markdown)
    figures, named = quoted_figures(document)
    return named + [p for p in (check(f, repo / "bench" / "results") for f in figures) if p]


@pytest.mark.parametrize("markdown", [
    "p50 [15.4 ms](../bench/results/speed.json#p50_ms)",
    "p50 [15.42 ms](../bench/results/speed.json#p50_ms)",
    "[37%](../bench/results/speed.json#share) of months",
    "[1,388 series](../bench/results/speed.json#n)",
    "[2.4 s](../bench/results/speed.json#runs/0/seconds)",
    "[0.794](../bench/results/speed.json#groups/area/dense/mase)",
    "[15 ms](../bench/results/speed.json)",
    "see [the file](../bench/results/speed.json)",
    "```\npython bench/speed.py > bench/results/speed.json\n```",
])
def test_a_figure_its_file_holds_passes(repo: Path, markdown: str) -> None:
    assert _problems(repo, markdown) == []


@pytest.mark.parametrize(("markdown", "why"), [
    ("p50 [15.5 ms](../bench/results/speed.json#p50_ms)", "holds 15.42, not 15.5"),
    ("p50 [15.43 ms](../bench/results/speed.json#p50_ms)", "not 15.43"),
    ("[38%](../bench/results/speed.json#share)", "not 38%"),
    ("[0.38](../bench/results/speed.json#share)", "not 0.38"),
    ("[1,389 series](../bench/results/speed.json#n)", "not 1,389"),
    ("[16 ms](../bench/results/speed.json)", "5 values, not 16"),
    ("[15.4 ms](../bench/results/speed.json#p99_ms)", "p99_ms is not in the file's figures"),
    ("[0.794](../bench/results/speed.json#groups/area/sparse/mase)", "is not in the file's figures"),
    ("[15.4 ms](../bench/results/gone.json#p50_ms)", "no such result file"),
    ("p50 [15.4 ms, p99 45 ms](../bench/results/speed.json#p50_ms)", "one number per link"),
    ("15.4 ms (`bench/results/speed.json`)", "named outside a link"),
])
def test_a_figure_its_file_does_not_hold_fails(repo: Path, markdown: str, why: str) -> None:
    problems = _problems(repo, markdown)
    assert len(problems) == 1 and why in problems[0], problems


def test_a_result_file_from_a_dirty_checkout_fails(repo: Path) -> None:
    (repo / "bench" / "results" / "speed.json").write_text(json.dumps({"dirty": True, "figures": {"p50_ms": 15.42}}))
    problems = _problems(repo, "[15.4 ms](bench/results/speed.json#p50_ms)", where="README.md")
    assert len(problems) == 1 and "dirty checkout" in problems[0]


def test_links_are_read_relative_to_their_document(repo: Path) -> None:
    assert _problems(repo, "[15.4 ms](bench/results/speed.json#p50_ms)", where="README.md") == []
    assert "no such result file" in _problems(repo, "[15.4 ms](bench/results/speed.json#p50_ms)")[0]
