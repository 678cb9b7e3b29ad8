"""The canonical form docs/language.md states is the one fmt and decompile print, blank lines included."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from tracedsl.ir import Workload
from tracedsl.language.decompile import decompile
from tracedsl.language.format import format_text
from tracedsl.language.lower import compile_text
from tracedsl.loading import load_spec

DOC = (ROOT / "docs" / "language.md").read_text()
CANONICAL = DOC[DOC.index("## Canonical form"):]
FILES = sorted((ROOT / "specs").glob("*.trace")) + sorted((ROOT / "examples").glob("*.trace"))


def _paragraphs() -> list[list[str]]:
    """The doc's numbered list of paragraphs: the statement keywords of each, in order."""
    items = re.findall(r"^\d+\. (.+)$", CANONICAL, re.MULTILINE)
    return [[word.split()[0] for word in re.findall(r"`([^`]+)`", item)] for item in items]


def _doc_order(sentence_start: str) -> list[str]:
    sentence = CANONICAL[CANONICAL.index(sentence_start):].split(".")[0]
    return re.findall(r"`([^`]+)`", sentence)


PARAGRAPHS = _paragraphs()
PARAGRAPH_OF = {word: i for i, words in enumerate(PARAGRAPHS) for word in words}
TOP_ORDER = [word for words in PARAGRAPHS for word in words]
OPTIONS = _doc_order("A statement's options follow its value in this order")
_ITEMS = _doc_order("Inside a block, one item per line")
ITEMS = {"prefix": _ITEMS[0:3], "turn": _ITEMS[4:7], "delay": _ITEMS[8:10]}


def test_the_doc_states_the_orders_the_formatter_uses():
    from tracedsl.language import format as fmt

    assert TOP_ORDER == list(fmt.TOP_ORDER)
    assert [PARAGRAPH_OF[w] for w in fmt.TOP_ORDER] == [fmt.PARAGRAPH[w] for w in fmt.TOP_ORDER]
    assert OPTIONS == list(fmt.OPTION_ORDER)
    assert ITEMS == {block: list(order) for block, order in fmt.ITEM_ORDER.items()}


def _code(line: str) -> str:
    """A line without its trailing comment (no '#' appears inside the bundled names)."""
    return line.split("#")[0].rstrip() if "#" in line and not line.lstrip().startswith("#") else line


def _options_in(line: str) -> list[str]:
    outside = re.sub(r"\([^)]*\)|\[[^\]]*[\])]|\([^)]*\]", "", _code(line))
    words = re.findall(r"\b(of|zipf|bias|scaling|at turn|truncate|retry|max)\b", outside)
    return words


def check_rules(text: str) -> None:
    """Assert every rule of the doc's canonical form on one formatted file."""
    lines = text.split("\n")
    assert text == "" or (text.endswith("\n") and not text.endswith("\n\n")), "one final newline"
    lines = lines[:-1]
    assert all(line == line.rstrip() for line in lines), "no trailing whitespace"
    assert "\n\n\n" not in text, "never two blank lines in a row"
    stack: list[tuple[str, list[str]]] = []  # open blocks: keyword, items seen so far
    top = []  # each top-level statement: keyword, its first line's index, its last line's
    for index, line in enumerate(lines):
        stripped = _code(line).strip()
        if not stripped:
            continue
        closing = stripped.startswith("}")
        if closing:
            stack.pop()
        indent = len(line) - len(line.lstrip())
        assert indent == 2 * len(stack), f"line {index + 1}: two spaces a level"
        if stripped.startswith("#"):
            continue
        if not closing:
            word = stripped.split()[0].rstrip(":")
            if not stack:
                top.append([word, index, index])
            else:
                block, seen = stack[-1]
                order = ITEMS.get(block, [])
                own = block == "delay" and not {word, *seen} <= set(order)  # a mix's own order
                own = own or block not in ITEMS  # arrival stages keep theirs (latency: the formatter's)
                assert own or word in order and all(order.index(w) < order.index(word) for w in seen), (
                    f"line {index + 1}: {word} in {block}")
                seen.append(word)
            options = _options_in(line)
            assert options == sorted(options, key=OPTIONS.index), f"line {index + 1}: {options}"
            if stripped.endswith("{"):
                stack.append((word, []))
        if not stack:
            top[-1][2] = index
    assert not stack
    keywords = [word for word, _, _ in top]
    assert keywords == sorted(keywords, key=TOP_ORDER.index), keywords
    for (word, _, end), (following, start, _) in zip(top, top[1:], strict=False):
        between = lines[end + 1:start]
        blank = "" in between
        # each class is a paragraph of its own
        assert blank == (PARAGRAPH_OF[word] != PARAGRAPH_OF[following] or word == "class"), (word, following)
        assert between.count("") <= 1
    _check_aligned_comments(lines)


def _check_aligned_comments(lines: list[str]) -> None:
    run: list[str] = []
    for line in [*lines, ""]:
        if "#" in line and not line.lstrip().startswith("#"):
            run.append(line)
            continue
        if run:
            width = max(len(_code(x)) for x in run)
            assert all(x.index("#") == width + 2 for x in run), run
        run = []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_bundled_file_is_canonical_by_the_docs_rules(path):
    text = path.read_text()
    assert format_text(text) == text
    check_rules(text)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_decompile_prints_the_same_canonical_form(path):
    loaded = load_spec(str(path))
    text = decompile(Workload(name=loaded.name, params=loaded.params), "header")
    check_rules(text)
    assert text.startswith("# header\n\nworkload ")


def _scrambled(text: str) -> str:
    """The file's top-level statements (each with the comments above it) in reverse order,
    flush left, with blank lines moved about; the header comment stays first."""
    chunks, current, header = [], [], []
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    header, lines = lines[:first], lines[first:]
    for line in lines:
        current.append(line.strip())
        if line and not line.startswith((" ", "#", "}")) and not line.rstrip().endswith("{") \
                or line.startswith("}"):
            chunks.append(current)
            current = []
    trailer = current
    # classes keep their order among themselves (it is each session's draw order), first
    classes = [chunk for chunk in chunks if any(line.startswith("class ") for line in chunk)]
    chunks = classes + list(reversed([chunk for chunk in chunks if chunk not in classes]))
    body = "\n\n\n".join("\n".join(chunk) for chunk in chunks)
    return "\n".join(header) + "\n\n" + body + "\n" + "\n".join(trailer) + "\n"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_scrambled_file_formats_back_to_the_rules_with_its_header_on_top(path):
    text = path.read_text()
    scrambled = _scrambled(text)
    assert scrambled != text
    formatted = format_text(scrambled)
    check_rules(formatted)
    assert format_text(formatted) == formatted
    # (an empirical file's path is relative to the .trace file)
    assert compile_text(formatted, str(path))[0].params == compile_text(text, str(path))[0].params
    header = [line for line in text.splitlines() if line.startswith("#")][:1]
    assert formatted.splitlines()[:1] == header
    # the same lines, only their blank lines differ
    assert [x for x in formatted.splitlines() if x] == [x for x in text.splitlines() if x]


@pytest.mark.parametrize(("source", "expected"), [
    # a header touching the first statement stays at the top when that statement moves
    ("# My workload\n# notes\nturn { output lognormal(mean=1k, median=800) }\ncontext 100k\n",
     "# My workload\n# notes\n\ncontext 100k\n\nturn {\n  output lognormal(mean=1k, median=800)\n}\n"),
    # ...and keeps touching it while it stays first
    ("# about\nworkload \"w\"\ncontext 1k\n", "# about\nworkload \"w\"\n\ncontext 1k\n"),
    # a header's paragraphs keep one blank line between them; the paragraph touching the
    # first statement is that statement's own and moves with it
    ("\n# one\n\n\n# two\n\n# the turn\nturn {}\ncontext 1k\n",
     "# one\n\n# two\n\ncontext 1k\n\n# the turn\nturn {}\n"),
    ("# only a comment\n", "# only a comment\n"),
    ("", ""),
])
def test_fmt_keeps_the_header_comment_at_the_top(source, expected):
    assert format_text(source) == expected
    assert format_text(expected) == expected


@pytest.mark.parametrize("text", [
    "context 1k\n\nblock 512\n",  # a blank line inside a paragraph
    "context 1k\nprefix {}\n",  # none between paragraphs
    "block 512\ncontext 1k\n",  # out of order
    "prefix {\n   global 1k\n}\n",  # three spaces
    "turn {\n  output lognormal(mean=1k, median=1k)\n  new_tokens lognormal(mean=1k, median=1k)\n}\n",
    "turns lognormal(mean=1, median=1, min=1, max=1) retry 3 truncate\n",  # options out of order
    "context 1k  # a\nblock 512    # b\n",  # comments not lined up
    "reset 1% \n",  # trailing space
    "context 1k\n\n",  # two final newlines
])
def test_the_rule_checker_catches_each_broken_rule(text):
    with pytest.raises(AssertionError):
        check_rules(text)
