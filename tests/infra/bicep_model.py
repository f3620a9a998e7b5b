"""Bicep read with tree-sitter-bicep (a full grammar, independent of checkov's pycep) into the few things the
offline proofs need: declarations, their bodies as syntax nodes, and literal values where a value is literal.

pycep renders identifiers and string literals alike as plain strings; this keeps them apart, which the type
check (is `'Enabled'` an allowed value?) and the deploy-time-constant check (does `x` name a resource?) need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

LANGUAGE = Language(tree_sitter_bicep.language())


class NotLiteral:
    """Stands for a value known only when Bicep evaluates an expression."""

    def __repr__(self) -> str:
        return "<expression>"


EXPRESSION = NotLiteral()


def parse_bytes(source: bytes) -> Node:
    return Parser(LANGUAGE).parse(source).root_node


def syntax_errors(root: Node) -> list[str]:
    """Every ERROR or MISSING node, as 'line:column text'."""
    found: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            row, col = node.start_point
            text = node.text.decode(errors="replace")[:60] if node.text else node.type
            found.append(f"{row + 1}:{col + 1} {'missing' if node.is_missing else 'unexpected'} {text!r}")
        elif node.has_error:
            stack.extend(node.children)
    return sorted(found)


def text(node: Node) -> str:
    return node.text.decode()


def named(node: Node) -> list[Node]:
    return [c for c in node.named_children if c.type != "comment"]


def string_value(node: Node) -> str | NotLiteral:
    """A string literal's value; an interpolated string is an expression."""
    if node.type != "string":
        return EXPRESSION
    parts = []
    for child in node.named_children:
        if child.type == "interpolation":
            return EXPRESSION
        if child.type == "string_content":
            parts.append(text(child))
        elif child.type == "escape_sequence":
            parts.append({"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\$": "$"}.get(text(child), text(child)))
    return "".join(parts)


def property_key(prop: Node) -> str | NotLiteral:
    key = prop.named_children[0]
    return text(key) if key.type in ("identifier", "property_identifier") else string_value(key)


def property_value(prop: Node) -> Node:
    return named(prop)[-1]


def object_properties(node: Node) -> list[tuple[str | NotLiteral, Node, Node]]:
    """(key, value node, property node) for each property of an object literal."""
    return [(property_key(p), property_value(p), p) for p in node.named_children if p.type == "object_property"]


def literal(node: Node):
    """The Python value of a literal (string, number, bool, null, array or object of literals), else EXPRESSION."""
    kind = node.type
    if kind == "string":
        return string_value(node)
    if kind == "number":
        return int(text(node))
    if kind == "boolean":
        return text(node) == "true"
    if kind == "null":
        return None
    if kind == "array":
        items = [literal(c) for c in named(node)]
        return EXPRESSION if any(i is EXPRESSION for i in items) else items
    if kind == "object":
        out = {}
        for key, value, _ in object_properties(node):
            if key is EXPRESSION:
                return EXPRESSION
            out[key] = literal(value)
        return out
    if kind == "parenthesized_expression":
        return literal(named(node)[0])
    return EXPRESSION


def where(node: Node) -> str:
    row, col = node.start_point
    return f"{row + 1}:{col + 1}"


@dataclass
class Declaration:
    kind: str  # resource | module | param | var | output
    symbol: str
    node: Node
    value: Node | None = None  # the expression after `=` (var, output, param default)
    body: Node | None = None  # resource/module object body, under any `for` and `if`
    target: str = ""  # 'Type@version' of a resource, path of a module
    existing: bool = False
    loop_collection: Node | None = None
    loop_variables: list[str] = field(default_factory=list)
    condition: Node | None = None

    @property
    def type_name(self) -> str:
        return self.target.split("@", 1)[0]

    @property
    def api_version(self) -> str:
        return self.target.split("@", 1)[1] if "@" in self.target else ""

    def body_properties(self) -> dict[str, Node]:
        assert self.body is not None and self.body.type == "object", f"{self.symbol}: body is not an object"
        return {k: v for k, v, _ in object_properties(self.body) if k is not EXPRESSION}


@dataclass
class BicepFile:
    path: Path
    root: Node
    # Params, vars, resources and modules share one namespace; outputs have their own.
    declarations: dict[str, Declaration] = field(default_factory=dict)
    outputs: dict[str, Declaration] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Declaration]:
        return [d for d in [*self.declarations.values(), *self.outputs.values()] if d.kind == kind]

    @property
    def resources(self) -> list[Declaration]:
        return self.of_kind("resource")

    @property
    def modules(self) -> list[Declaration]:
        return self.of_kind("module")


def loop_parts(node: Node) -> tuple[list[str], Node]:
    """The variable names and the collection of `[for x in collection: ...]` or `[for (x, i) in ...]`."""
    children = node.children
    at = next(i for i, c in enumerate(children) if c.type == "in")
    variables = [text(c) for c in children[2:at] for c in ([c] if c.type == "identifier" else c.named_children)
                 if c.type == "identifier"]
    return variables, next(c for c in children[at + 1:] if c.is_named and c.type != "comment")


def _unwrap(decl: Declaration, value: Node) -> None:
    """Peel `[for x in collection: ...]` and `if (condition) ...` off a resource or module body."""
    node = value
    if node.type == "for_statement":
        decl.loop_variables, decl.loop_collection = loop_parts(node)
        node = node.child_by_field_name("body")
    if node.type == "if_statement":
        decl.condition = named(node)[0]
        node = named(node)[-1]
    decl.body = node


def read(path: Path) -> BicepFile:
    return parse_source(path, path.read_bytes())


def parse_source(path: Path, source: bytes) -> BicepFile:
    root = parse_bytes(source)
    bicep = BicepFile(path, root)
    for node in root.named_children:
        kind = node.type.removesuffix("_declaration")
        if kind not in ("resource", "module", "parameter", "variable", "output"):
            continue
        kind = {"parameter": "param", "variable": "var"}.get(kind, kind)
        children = named(node)
        symbol = text(children[0])
        decl = Declaration(kind, symbol, node)
        if kind in ("resource", "module"):
            decl.target = string_value(children[1])  # type: ignore[assignment]
            decl.existing = any(c.type == "existing" for c in node.children)
            _unwrap(decl, children[-1])
        elif kind == "var":
            decl.value = children[-1]
        elif kind == "param":
            has_default = any(c.type == "=" for c in node.children)
            decl.value = children[-1] if has_default else None
        else:
            decl.value = children[-1]
        (bicep.outputs if kind == "output" else bicep.declarations)[symbol] = decl
    return bicep


@cache
def read_cached(path: Path) -> BicepFile:
    return read(path)
