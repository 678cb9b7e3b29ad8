"""Prints a syntax tree as canonical .trace text: fixed statement order, one per line, comments kept."""

from __future__ import annotations

from dataclasses import dataclass, field

from tracedsl.diagnostics import split_lines
from tracedsl.language import ast
from tracedsl.language.parser import parse

INDENT = "  "
# Canonical order of statements in each block, and which top-level ones share a paragraph.
TOP_ORDER = ("include", "let", "workload", "context", "block", "prefix", "turn", "request", "turns", "reset",
             "restart", "compact", "returns", "subagent", "arrivals", "latency", "class")
PARAGRAPH = {
    "include": 0,
    "let": 0,
    "workload": 1,
    "context": 2,
    "block": 2,
    "prefix": 3,
    "turn": 4,
    "request": 5,
    "turns": 6,
    "reset": 6,
    "restart": 6,
    "compact": 6,
    "returns": 6,
    "subagent": 7,  # its body's statements in TOP_ORDER, as a class's
    "arrivals": 8,
    "latency": 8,
    "class": 9,  # each class a paragraph of its own, in the order written (a body's items in TOP_ORDER)
}
# Blocks outside ITEM_ORDER: a latency's items go in this order; arrival stages keep theirs.
LATENCY_ORDER = ("prefill", "decode")
ITEM_ORDER = {
    "prefix": ("global", "groups", "session"),
    "turn": ("new_tokens", "output", "delay"),
    "delay": ("agentic", "human"),
}
REQUEST_ORDER = ("calls", "message", "think")  # a request's items (like LATENCY_ORDER, outside ITEM_ORDER)
OPTION_ORDER = ("of", "zipf", "bias", "scaling", "at turn", "truncate", "retry", "max")


def format_text(text: str, file: str = "<input>") -> str:
    """Reformat .trace text canonically (syntax must be valid; semantics are not checked)."""
    return format_spec(parse(text, file), text)


def format_spec(spec: ast.Spec, text: str = "") -> str:
    """Canonical text of a tree; ``text`` is the source the comments came from, if any."""
    notes = _attach(spec, text)
    # lets in name order (a let's place means nothing); includes as written (a later one wins)
    statements = _ordered(
        sorted(spec.statements, key=lambda s: s.name if s.keyword == "let" else ""),
        TOP_ORDER, lambda s: s.keyword,
    )
    out: list = list(notes.header)
    # A header that touched the first statement keeps touching it while it stays first.
    touching = notes.header_touches and statements and statements[0] is spec.statements[0]
    if notes.header and not touching:
        out.append("")
    previous = None
    for statement in statements:
        if previous is not None and (PARAGRAPH[previous] != PARAGRAPH[statement.keyword] or previous == "class"):
            out.append("")
        previous = statement.keyword
        _emit(statement, "", notes, out)
    if notes.trailer:
        out.extend(["", *notes.trailer] if out else notes.trailer)
    return "\n".join(_align_comments(out)) + "\n" if out else ""


def _align_comments(lines: list) -> list[str]:
    """Line up the trailing comments of consecutive lines, as people do by hand."""
    result: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(code) for code, _ in run), default=0)
        result.extend(f"{code.ljust(width)}  {comment}" for code, comment in run)
        run.clear()

    for line in lines:
        if isinstance(line, tuple):
            run.append(line)
        else:
            flush()
            result.append(line)
    flush()
    return result


def statement_text(node: ast.Statement | ast.Component) -> str:
    """One node's first line, without comments: ``new_tokens lognormal(...) bias 1.1``."""
    if isinstance(node, ast.Component):
        head = " ".join(part for part in (node.role, node.fraction.text if node.fraction else "") if part)
        return f"{head}: {distribution_text(node.distribution)}"
    if node.keyword == "workload":
        return f"workload {quote(node.value)}"
    if node.keyword == "include":
        return f"include {quote(node.value)}"
    if node.keyword == "class":
        return f"class {node.name} {node.value.text}"
    if node.keyword in ("request", "compact", "subagent") and node.value == "none":
        return f"{node.keyword} none"
    if node.keyword == "compact":  # compact at 83% to LAW max 3 instruction 300
        options = {option.keyword: option for option in node.options}
        parts = [f"compact at {options['at'].value.text} to {distribution_text(node.value)}"]
        parts += [_option_text(options[word]) for word in ("max", "instruction") if word in options]
        return " ".join(parts)
    if node.keyword == "subagent":  # subagent 2% fanout LAW
        return f"subagent {node.value.text} fanout {distribution_text(node.options[0].value)}"
    if node.keyword == "let":
        value = node.value.text if isinstance(node.value, ast.Number) else distribution_text(node.value)
        return f"let {node.name} = {value}"
    if node.keyword == "delay" and node.items is not None:
        return "delay mix"
    if node.keyword in ("hold", "ramp"):  # an arrival stage: 5min at 1/s, 10min ramp to 8/s
        return " ".join([node.value.text, *(_option_text(o) for o in node.options)])
    parts = [node.keyword]
    if node.value == "stages":
        parts.append("stages")
    if isinstance(node.value, ast.Distribution):
        parts.append(distribution_text(node.value))
    elif isinstance(node.value, (ast.Number, ast.Reference)):
        parts.append(node.value.text)
    elif node.value == "none":
        parts.append("none")
    parts.extend(_option_text(o) for o in _options(node))
    return " ".join(parts)


def distribution_text(dist: ast.Distribution | ast.Reference) -> str:
    if isinstance(dist, ast.Reference):
        return dist.name
    arguments = [f"{a.name}={a.value.text}" if a.name else a.value.text for a in dist.arguments]
    if dist.source is not None:
        return f"{dist.name}({quote(dist.source)})"
    if dist.entries is not None:
        lines = [_entry_text(entry) for entry in dist.entries]
        return f"{dist.name} {{ {', '.join(lines + arguments)} }}"
    return f"{dist.name}({', '.join(arguments)})"


def _entry_text(entry: ast.Entry) -> str:
    head = " ".join(part for part in (entry.name, entry.key.text if entry.key else "") if part)
    value = entry.value.text if isinstance(entry.value, ast.Number) else distribution_text(entry.value)
    return f"{head}: {value}"


def quote(name: str) -> str:
    escaped = (
        name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        .replace("\r", "\\r")  # a raw CR would end the line
    )
    return f'"{escaped}"'


def _option_text(option: ast.Option) -> str:
    value = option.value
    if value is None:
        return option.keyword
    if isinstance(value, ast.TurnRange):
        opening = "[" if value.first_included else "("
        closing = "]" if value.last_included else ")"
        return f"{option.keyword} {opening}{value.first.text}, {value.last.text}{closing}"
    return f"{option.keyword} {value.text}"


def _options(node: ast.Statement) -> list[ast.Option]:
    return _ordered(node.options, OPTION_ORDER, lambda o: o.keyword)


def _ordered(nodes, order, key) -> list:
    rank = {name: index for index, name in enumerate(order)}
    return sorted(nodes, key=lambda node: rank.get(key(node), len(rank)))


def _emit(node: ast.Statement | ast.Component, indent: str, notes: _Notes, out: list) -> None:
    for comment in notes.leading.get(id(node), ()):
        out.append(indent + comment)
    is_block = isinstance(node, ast.Statement) and node.items is not None
    if not is_block:
        out.append(_with_comment(indent + statement_text(node), notes.trailing.get(id(node))))
        return
    header = indent + statement_text(node) + " {"
    items = node.items
    if node.keyword == "latency":
        items = _ordered(items, LATENCY_ORDER, _item_key)
    elif node.keyword == "request":
        items = _ordered(items, REQUEST_ORDER, _item_key)
    elif node.keyword in ("class", "subagent"):
        items = _ordered(items, TOP_ORDER, _item_key)
    elif node.keyword == "arrivals":
        pass  # stages happen in the order written
    elif node.keyword != "delay" or all(_item_key(item) in ITEM_ORDER["delay"] for item in items):
        items = _ordered(items, ITEM_ORDER[node.keyword], _item_key)  # a mix's order is its own
    closing = "}" + "".join(
        " " + _option_text(o) for o in _options(node) if node.keyword == "delay"
    )
    if not items and id(node) not in notes.header_of:
        out.append(_with_comment(header + closing, notes.trailing.get(id(node))))
        return
    out.append(_with_comment(header, notes.header_of.get(id(node))))
    for item in items:
        _emit(item, indent + INDENT, notes, out)
    out.append(_with_comment(indent + closing, notes.trailing.get(id(node))))


def _item_key(node) -> str:
    return node.role if isinstance(node, ast.Component) else node.keyword


def _with_comment(line: str, comment: str | None) -> str | tuple[str, str]:
    return (line, comment) if comment else line


# ---------------------------------------------------------------------------------------------
# Comments: each belongs to the node it trails or, on a line of its own, to the next node.


@dataclass
class _Notes:
    header: list[str] = field(default_factory=list)  # comment lines, "" between paragraphs
    header_touches: bool = False  # no blank line between the header and the first statement
    leading: dict[int, list[str]] = field(default_factory=dict)
    trailing: dict[int, str] = field(default_factory=dict)
    header_of: dict[int, str] = field(default_factory=dict)  # after a block's opening brace
    trailer: list[str] = field(default_factory=list)


def _attach(spec: ast.Spec, text: str) -> _Notes:
    notes = _Notes()
    nodes = list(_walk(spec.statements))
    blank_lines = {i + 1 for i, line in enumerate(split_lines(text)) if not line.strip()}
    first_line = nodes[0].span.line if nodes else None
    above = [c for c in spec.comments if first_line is not None and c.line < first_line]
    # The file's header: the comments above the first statement, up to the last blank line
    # before it (the paragraph touching the statement is that statement's own); with no blank
    # line, the whole block. It stays at the top wherever the statements move.
    gaps = [b for b in blank_lines if above and above[0].line < b < first_line]
    header_end = max(gaps) if gaps else (first_line or 0)
    notes.header_touches = bool(above) and not gaps
    previous_line = None
    for comment in spec.comments:
        if first_line is not None and comment.line < header_end:
            if previous_line is not None and any(previous_line < b < comment.line for b in blank_lines):
                notes.header.append("")  # a blank line between the header's paragraphs
            notes.header.append(comment.text)
            previous_line = comment.line
            continue
        owner = _trailing_owner(nodes, comment)
        if owner is not None:
            node, slot = owner
            target = notes.header_of if slot == "header" else notes.trailing
            target[id(node)] = comment.text
            continue
        following = next((n for n in nodes if n.span.line > comment.line), None)
        if following is None:
            notes.trailer.append(comment.text)
        else:
            notes.leading.setdefault(id(following), []).append(comment.text)
    return notes


def _trailing_owner(nodes, comment: ast.Comment):
    leaves = [
        n
        for n in nodes
        if not _is_block(n)
        and n.span.end_line == comment.line
        and n.span.end_column <= comment.column
    ]
    if leaves:
        return leaves[-1], "trailing"
    for node in nodes:
        if (
            _is_block(node)
            and node.span.line == comment.line
            and node.span.end_line != comment.line
        ):
            return node, "header"
    for node in reversed(nodes):
        if _is_block(node) and node.span.end_line == comment.line:
            return node, "trailing"
    return None


def _is_block(node) -> bool:
    return isinstance(node, ast.Statement) and node.items is not None


def _walk(nodes):
    for node in nodes:
        yield node
        if isinstance(node, ast.Statement) and node.items:
            yield from _walk(node.items)
