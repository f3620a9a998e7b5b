"""The package's shape, checked: layers only import downwards, no import cycles, no class over ~200 lines,
and collaborators past the third passed by name."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "voicebridge"
MAX_CLASS_LINES = 200

# Bottom to top; a module may import from its own layer or below, never above.
LAYERS = [
    ("voicebridge", "voicebridge.protocol", "voicebridge.settings", "voicebridge.logs", "voicebridge.tasks"),
    ("voicebridge.emulator", "voicebridge.credentials", "voicebridge.telemetry", "voicebridge.runtime",
     "voicebridge.balance", "voicebridge.pacer", "voicebridge.front", "voicebridge.contract", "voicebridge.smoke"),
    ("voicebridge.upstream", "voicebridge.endpoints"),
    ("voicebridge.session",),
    ("voicebridge.bridge",),
    ("voicebridge.app",),
    ("voicebridge.server", "voicebridge.worker"),
    ("voicebridge.__main__",),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports (TYPE_CHECKING imports included: they are a dependency too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from . import protocol` imports a module, `from .x import y` a name
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {f for f in found if f in known and f != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def layer(name: str) -> int:
    ranks = [i for i, group in enumerate(LAYERS) for prefix in group if name == prefix or name.startswith(prefix + ".")]
    assert ranks, f"{name} belongs to no layer: add it to LAYERS"
    return max(ranks)


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets if layer(b) > layer(a))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            found.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for target in sorted(edges.get(node, ())):
            visit(target, path + [node])
        done.add(node)

    for start in sorted(edges):
        visit(start, [])
    return found


def long_classes() -> list[str]:
    out = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                out.append(f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    return out


def positional_constructors(tree: ast.AST | None = None, prefix: str = "") -> list[str]:
    """Classes whose __init__ takes more than three arguments by position: past three, a call site reads
    as a row of values whose meaning depends on their order (the style's "keyword arguments past three")."""
    trees = [(prefix, tree)] if tree is not None else [
        (name, ast.parse(path.read_text(encoding="utf-8"))) for name, path in modules().items()
    ]
    out = []
    for name, parsed in trees:
        for node in ast.walk(parsed):
            if not isinstance(node, ast.ClassDef):
                continue
            for init in node.body:
                if isinstance(init, ast.FunctionDef) and init.name == "__init__":
                    positional = len(init.args.posonlyargs) + len(init.args.args) - 1  # without self
                    if positional > 3:
                        out.append(f"{name}.{node.name}: {positional} positional")
    return out


def test_no_module_imports_upwards():
    assert upward_imports(graph()) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_no_class_is_over_200_lines():
    assert long_classes() == []


def test_constructors_take_collaborators_past_the_third_by_name():
    assert positional_constructors() == []


def test_the_checks_catch_what_they_target():
    four = ast.parse("class A:\n    def __init__(self, a, b, c, d):\n        pass\n")
    three_and_named = ast.parse("class A:\n    def __init__(self, a, b, c, *, d):\n        pass\n")
    assert positional_constructors(four, "m") == ["m.A: 4 positional"]
    assert positional_constructors(three_and_named, "m") == []
    edges = graph()
    assert "voicebridge.protocol" in edges["voicebridge.bridge"], "imports are found"
    assert upward_imports({**edges, "voicebridge.protocol": {"voicebridge.bridge"}}) == ["voicebridge.protocol -> voicebridge.bridge"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
