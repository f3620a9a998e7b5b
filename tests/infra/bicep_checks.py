"""Two checks the Bicep compiler makes and checkov does not, done offline over tree-sitter's syntax tree:

* types: each resource's `Type@apiVersion` exists in the type data the compiler itself uses
  (Azure/bicep-types-az; the repository's subset in tests/infra/data/bicep-types), every property set is a property of that type
  (recursively, discriminated objects included), nothing read-only is set, and literal values fit the
  property (allowed string literals, kinds). Module `params` match the module's declared parameters.
* deploy-time constants (BCP177/BCP178/BCP120 and kin): for-expression collections, `if` conditions,
  resource and module names, scopes and parents, and properties the types flag deploy-time constant never
  depend, directly or through variables, on a resource's runtime properties, `reference()`, `list*()` or
  a module's outputs.

Each function returns a list of problems ('file:line:col message'); empty means clean.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from bicep_model import (
    EXPRESSION,
    BicepFile,
    Declaration,
    Node,
    literal,
    loop_parts,
    named,
    object_properties,
    read_cached,
    text,
    where,
)
from refresh_data import missing_data_message

REPO = Path(__file__).resolve().parents[2]
TYPES = Path(__file__).resolve().parent / "data" / "bicep-types"

READ_ONLY, DEPLOY_TIME_CONSTANT = 2, 8
# Keys of a resource body that are Bicep syntax rather than properties of the type.
BICEP_KEYWORDS = {"parent", "scope", "dependsOn"}
# Members of a resource that Bicep knows before the deployment starts.
CONSTANT_MEMBERS = {"id", "name", "type", "apiVersion"}


class TypeData:
    def __init__(self, root: Path = TYPES):
        if not (root / "index.json").exists():
            raise FileNotFoundError(missing_data_message(f"{root}/index.json"))
        self.root = root
        self.index = json.loads((root / "index.json").read_text())["resources"]

    @cache  # noqa: B019 - one TypeData per session
    def _file(self, relative: str) -> list[dict]:
        return json.loads((self.root / relative).read_text())

    def resource_body(self, type_at_version: str) -> tuple[list[dict], dict] | None:
        files = self.index.get(type_at_version)
        if not files:
            return None
        types = self._file(files[0])
        for entry in types:
            if entry["$type"] == "ResourceType" and entry["name"] == type_at_version:
                return types, resolve(types, entry["body"])
        return None

    def versions(self, type_name: str) -> list[str]:
        return sorted(k.split("@", 1)[1] for k in self.index if k.split("@", 1)[0] == type_name)


def resolve(types: list[dict], ref: dict) -> dict:
    return types[int(ref["$ref"].removeprefix("#/"))]


def describe(types: list[dict], typ: dict) -> str:
    kind = typ["$type"]
    if kind == "StringLiteralType":
        return repr(typ["value"])
    if kind == "UnionType":
        return " | ".join(describe(types, resolve(types, e)) for e in typ["elements"])
    return typ.get("name", kind)


def accepts(types: list[dict], typ: dict, value) -> bool:
    """Whether a literal Python value fits a type (structure of objects is checked separately)."""
    kind = typ["$type"]
    if kind in ("AnyType",) or value is None:
        return True
    if kind == "UnionType":
        return any(accepts(types, resolve(types, e), value) for e in typ["elements"])
    if kind == "StringLiteralType":
        return value == typ["value"]
    if kind == "StringType":
        return isinstance(value, str)
    if kind == "IntegerType":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "BooleanType":
        return isinstance(value, bool)
    if kind == "ArrayType":
        return isinstance(value, list)
    if kind in ("ObjectType", "DiscriminatedObjectType"):
        return isinstance(value, dict)
    return True


def string_rule_violations(typ: dict, value: str) -> list[str]:
    """Length and pattern limits a literal string breaks (patterns are .NET regexes; the common subset)."""
    found = []
    if "minLength" in typ and len(value) < typ["minLength"]:
        found.append(f"is shorter than {typ['minLength']}")
    if "maxLength" in typ and len(value) > typ["maxLength"]:
        found.append(f"is longer than {typ['maxLength']}")
    if "pattern" in typ:
        try:
            if not re.search(typ["pattern"], value):
                found.append(f"does not match {typ['pattern']}")
        except re.error:
            pass  # a .NET-only construct: the compiler checks it, not this
    return found


class TypeChecker:
    def __init__(self, data: TypeData, bicep: BicepFile):
        self.data, self.bicep = data, bicep
        self.problems: list[str] = []
        self.bindings: dict[str, object] = {}
        self.expanding: set[str] = set()

    def problem(self, node: Node, message: str) -> None:
        self.problems.append(f"{self.bicep.path.name}:{where(node)} {message}")

    def check_resource(self, decl: Declaration) -> None:
        found = self.data.resource_body(decl.target)
        if found is None:
            known = self.data.versions(decl.type_name)
            self.problem(decl.node, f"resource {decl.symbol}: {decl.target} is not a published type"
                         f" (versions here: {', '.join(known) or 'none'}); if it is published, "
                         + missing_data_message("it"))
            return
        types, body_type = found
        if decl.body is None or decl.body.type != "object":
            self.problem(decl.node, f"resource {decl.symbol}: body is not an object literal")
            return
        # A loop over a literal list (`[for policy in ['ftp', 'scm']: ...]`) is checked once per item, so a
        # discriminator such as a child's name may come from the loop variable.
        collection = literal(decl.loop_collection) if decl.loop_collection is not None else EXPRESSION
        if decl.loop_variables and isinstance(collection, list):
            for item in collection:
                self.bindings = {decl.loop_variables[0]: item}
                self.check_object(types, decl.body, body_type, f"{decl.symbol}[{item!r}]", top=True,
                                  existing=decl.existing)
            self.bindings = {}
            return
        self.check_object(types, decl.body, body_type, f"{decl.symbol}", top=True, existing=decl.existing)

    def check_value(self, types: list[dict], node: Node, typ: dict, path: str) -> None:
        kind = typ["$type"]
        if kind == "AnyType":
            return
        if node.type == "parenthesized_expression":
            self.check_value(types, named(node)[0], typ, path)
            return
        if node.type == "identifier":
            # A variable holding an object or array literal is checked where it is used.
            decl = self.bicep.declarations.get(text(node))
            if decl is not None and decl.kind == "var" and decl.value is not None and decl.value.type in ("object", "array"):
                if decl.symbol not in self.expanding:
                    self.expanding.add(decl.symbol)
                    self.check_value(types, decl.value, typ, f"{path} (var {decl.symbol})")
                    self.expanding.discard(decl.symbol)
            return
        if node.type == "ternary_expression":
            for branch in ("consequence", "alternative"):
                self.check_value(types, node.child_by_field_name(branch), typ, path)
            return
        if node.type == "object":
            target = self._object_type(types, typ)
            if target is None:
                self.problem(node, f"{path}: an object where the type expects {describe(types, typ)}")
            else:
                self.check_object(types, node, target, path)
            return
        if node.type == "array":
            if kind == "UnionType":
                arrays = [resolve(types, e) for e in typ["elements"] if resolve(types, e)["$type"] == "ArrayType"]
                typ, kind = (arrays[0], "ArrayType") if arrays else (typ, kind)
            if kind != "ArrayType":
                self.problem(node, f"{path}: an array where the type expects {describe(types, typ)}")
                return
            item = resolve(types, typ["itemType"])
            for i, element in enumerate(named(node)):
                self.check_value(types, element, item, f"{path}[{i}]")
            return
        value = literal(node)
        if value is EXPRESSION:
            return  # known only when the deployment evaluates it
        if not accepts(types, typ, value):
            self.problem(node, f"{path}: {value!r} is not allowed; the type expects {describe(types, typ)}")
        elif kind == "StringType" and isinstance(value, str):
            for rule in string_rule_violations(typ, value):
                self.problem(node, f"{path}: {value!r} {rule}")

    def _object_type(self, types: list[dict], typ: dict) -> dict | None:
        if typ["$type"] in ("ObjectType", "DiscriminatedObjectType"):
            return typ
        if typ["$type"] == "UnionType":
            for element in typ["elements"]:
                found = self._object_type(types, resolve(types, element))
                if found:
                    return found
        return None

    def check_object(self, types: list[dict], node: Node, typ: dict, path: str, top: bool = False,
                     existing: bool = False) -> None:
        if typ["$type"] == "DiscriminatedObjectType":
            typ = self._discriminated(types, node, typ, path)
            if typ is None:
                return
        properties: dict = typ.get("properties", {})
        additional = typ.get("additionalProperties")
        given = set()
        for key, value, prop in object_properties(node):
            if key is EXPRESSION:
                continue  # an interpolated key: only the deployment knows it
            given.add(key)
            if top and key in BICEP_KEYWORDS:
                continue
            if key not in properties:
                if additional is not None:
                    self.check_value(types, value, resolve(types, additional), f"{path}.{key}")
                    continue
                near = [p for p in properties if p.lower() == key.lower()]
                hint = f" (spelled {near[0]!r} in the type)" if near else ""
                self.problem(prop, f"{path}.{key} is not a property of {typ.get('name', 'this object')}{hint}")
                continue
            declared = properties[key]
            if declared.get("flags", 0) & READ_ONLY:
                self.problem(prop, f"{path}.{key} is read-only: ARM ignores or rejects a value for it")
                continue
            if existing:
                continue
            self.check_value(types, value, resolve(types, declared["type"]), f"{path}.{key}")
        if existing:
            return
        required = {k for k, p in properties.items() if p.get("flags", 0) & 1 and not p.get("flags", 0) & READ_ONLY}
        for missing in sorted(required - given):
            self.problem(node, f"{path}: required property {missing!r} is missing")

    def _discriminated(self, types: list[dict], node: Node, typ: dict, path: str) -> dict | None:
        key = typ["discriminator"]
        values = {k: self.bindings.get(text(v), EXPRESSION) if v.type == "identifier" else literal(v)
                  for k, v, _ in object_properties(node) if k is not EXPRESSION}
        chosen = values.get(key, EXPRESSION)
        elements = typ["elements"]
        if chosen is EXPRESSION or not isinstance(chosen, str):
            self.problem(node, f"{path}: {key} must be a literal to pick one of {', '.join(sorted(elements))}")
            return None
        if chosen not in elements:
            self.problem(node, f"{path}: {key} {chosen!r} is not one of {', '.join(sorted(elements))}")
            return None
        element = resolve(types, elements[chosen])
        merged = dict(typ.get("baseProperties", {}))
        merged.update(element.get("properties", {}))
        return {**element, "properties": merged}

    def check_module(self, decl: Declaration) -> None:
        target = (self.bicep.path.parent / decl.target).resolve()
        if not target.exists():
            self.problem(decl.node, f"module {decl.symbol}: {decl.target} does not exist")
            return
        declared = {d.symbol: d for d in read_cached(target).of_kind("param")}
        params = decl.body_properties().get("params")
        given: dict[str, Node] = {}
        if params is not None and params.type == "object":
            given = {k: v for k, v, _ in object_properties(params) if k is not EXPRESSION}
        for name, value in given.items():
            if name not in declared:
                self.problem(value, f"module {decl.symbol}: {target.name} has no parameter {name!r}")
        for name, param in declared.items():
            if param.value is None and name not in given:
                self.problem(decl.node, f"module {decl.symbol}: required parameter {name!r} of {target.name} is not given")


def type_problems(bicep: BicepFile, data: TypeData) -> list[str]:
    checker = TypeChecker(data, bicep)
    for decl in bicep.resources:
        checker.check_resource(decl)
    for decl in bicep.modules:
        checker.check_module(decl)
    return checker.problems


# --- deploy-time constants -------------------------------------------------------------------------------


class DeployTimeChecker:
    def __init__(self, bicep: BicepFile, data: TypeData | None = None):
        self.bicep, self.data = bicep, data
        self.memo: dict[str, list[str]] = {}
        self.problems: list[str] = []

    def runtime_sources(self, node: Node) -> list[str]:
        """What in this expression is known only at deploy time ('appInsights.properties', 'reference()')."""
        found: list[str] = []
        self._walk(node, found)
        return found

    def _var(self, symbol: str) -> list[str]:
        if symbol not in self.memo:
            self.memo[symbol] = []  # a cycle is the compiler's problem, not a runtime value
            decl = self.bicep.declarations[symbol]
            self.memo[symbol] = [f"{s} (through var {symbol})" for s in self.runtime_sources(decl.value)]
        return self.memo[symbol]

    def _walk(self, node: Node, found: list[str]) -> None:
        kind = node.type
        if kind == "object_property":
            # The key is a name, not a reference.
            self._walk(named(node)[-1], found)
            return
        if kind == "member_expression":
            base, members = node, []
            while base.type in ("member_expression", "subscript_expression"):
                if base.type == "member_expression":
                    members.append(text(base.child_by_field_name("property")))
                else:
                    self._walk(base.child_by_field_name("index"), found)
                base = base.child_by_field_name("object")
            members.reverse()
            if base.type == "identifier":
                decl = self.bicep.declarations.get(text(base))
                if decl is not None and decl.kind in ("resource", "module") and members:
                    first = members[0]
                    if first.startswith("list") or first not in CONSTANT_MEMBERS or decl.kind == "module" and first != "name":
                        found.append(f"{decl.symbol}.{first}")
                    return
            self._walk(base, found)
            return
        if kind == "call_expression":
            function = node.child_by_field_name("function")
            if function.type == "identifier" and (text(function) == "reference" or text(function).startswith("list")):
                found.append(f"{text(function)}()")
            for child in named(node):
                self._walk(child, found)
            return
        if kind == "identifier":
            decl = self.bicep.declarations.get(text(node))
            if decl is not None and decl.kind == "var":
                found.extend(self._var(decl.symbol))
            return
        for child in named(node):
            self._walk(child, found)

    def require_constant(self, node: Node | None, what: str) -> None:
        if node is None:
            return
        sources = self.runtime_sources(node)
        if sources:
            self.problems.append(
                f"{self.bicep.path.name}:{where(node)} {what} must be known when the deployment starts,"
                f" but `{text(node)[:80]}` depends on {', '.join(dict.fromkeys(sources))}"
            )

    def check(self) -> list[str]:
        stack = [self.bicep.root]
        while stack:
            node = stack.pop()
            if node.type == "for_statement":
                self.require_constant(loop_parts(node)[1], "a for-expression's collection")
            stack.extend(node.named_children)
        for decl in self.bicep.resources + self.bicep.modules:
            label = f"{decl.kind} {decl.symbol}"
            self.require_constant(decl.condition, f"{label}: the if-condition")
            if decl.body is None or decl.body.type != "object":
                continue
            properties = decl.body_properties()
            for key in ("name", "scope", "parent"):
                self.require_constant(properties.get(key), f"{label}: {key}")
            for key in self._flagged_constant(decl):
                if key not in ("name", "scope", "parent") and key in properties:
                    self.require_constant(properties[key], f"{label}: {key} (deploy-time constant in the type)")
        return self.problems

    def _flagged_constant(self, decl: Declaration) -> list[str]:
        if self.data is None or decl.kind != "resource":
            return []
        found = self.data.resource_body(decl.target)
        if found is None:
            return []
        types, body = found
        properties = body.get("properties", {})
        if body["$type"] == "DiscriminatedObjectType":
            properties = dict(body.get("baseProperties", {}))
            for element in body["elements"].values():
                properties.update(resolve(types, element).get("properties", {}))
        return [k for k, p in properties.items() if p.get("flags", 0) & DEPLOY_TIME_CONSTANT and not p.get("flags", 0) & READ_ONLY]


def deploy_time_problems(bicep: BicepFile, data: TypeData | None = None) -> list[str]:
    return DeployTimeChecker(bicep, data).check()
