"""Function tools: the extension point for what the voice agent can do besides talk.

A tool is a plain function, sync or async, decorated with `@tool` in a module named in
`VOICEBRIDGE_TOOLS`:

    from voicebridge.tools import tool

    @tool
    def get_order_status(order_id: str, verbose: bool = False) -> dict:
        \"\"\"Look up where an order is.

        Args:
            order_id: the order number the customer reads out.
        \"\"\"
        return {"status": "shipped"}

Its name is the function's name, its description the docstring's first paragraph, its parameters a JSON
schema built from the type hints (str, int, float, bool, Literal[...], list[str], `X | None` with a
default); parameters without a default are required. The schema is built when the module is imported,
so an unsupported hint stops startup instead of failing in a conversation.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Tool", "ToolLoadError", "Toolbox", "tool"]

_MARK = "__voicebridge_tool__"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
# Sync tools run here, never on the event loop. A sync tool that overruns its timeout cannot be killed,
# so the pool is bounded: runaway tools queue behind each other instead of taking every thread.
_SYNC_WORKERS = 8


class ToolLoadError(ValueError):
    """A tools module cannot be imported or declares a tool wrongly; the message is for the operator."""


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    fn: Callable[..., Any]
    label: str | None = None  # what the page shows while it runs, e.g. "Checking the time"

    def definition(self) -> dict[str, Any]:
        """The `tools` entry of session.update."""
        return {"type": "function", "name": self.name, "description": self.description, "parameters": self.parameters}


def tool(fn: Callable[..., Any] | None = None, *, label: str | None = None) -> Any:
    """Mark `fn` as a tool: `@tool`, or `@tool(label="Checking the time")` for what the page shows while
    it runs. The function itself is returned unchanged, so it stays testable as it is."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(fn, _MARK, _describe(fn, label))
        return fn

    return mark if fn is None else mark(fn)


# --- schema from the signature ----------------------------------------------------------------------


def _describe(fn: Callable[..., Any], label: str | None = None) -> Tool:
    name = fn.__name__
    if not _NAME.match(name):
        raise ToolLoadError(f"tool {name!r}: a tool name uses letters, digits, _ and -, at most 64")
    doc = inspect.getdoc(fn) or ""
    description = " ".join(doc.split("\n\n", 1)[0].split())
    if not description:
        raise ToolLoadError(f"tool {name!r}: the docstring's first paragraph is its description; it has none")
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # a hint naming something that does not exist
        raise ToolLoadError(f"tool {name!r}: cannot read its type hints ({exc})") from None
    param_docs = _param_docs(doc)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise ToolLoadError(f"tool {name!r}: parameter {param.name!r} must be a plain named parameter")
        if param.name not in hints:
            raise ToolLoadError(f"tool {name!r}: parameter {param.name!r} needs a type hint")
        optional = param.default is not param.empty
        schema = _schema(hints[param.name], optional, f"tool {name!r}, parameter {param.name!r}")
        if param.name in param_docs:
            schema["description"] = param_docs[param.name]
        properties[param.name] = schema
        if not optional:
            required.append(param.name)
    parameters = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return Tool(name, description, parameters, fn, label)


def _schema(hint: Any, optional: bool, where: str) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(args) != 2:
            raise ToolLoadError(f"{where}: only `X | None` unions are supported")
        if not optional:
            raise ToolLoadError(f"{where}: `X | None` needs a default value")
        return _schema(rest[0], optional, where)
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if origin is Literal:
        kinds = {type(a) for a in args}
        if len(kinds) != 1 or next(iter(kinds)) not in _SCALARS:
            raise ToolLoadError(f"{where}: Literal values must all be str, int, float or bool")
        return {"type": _SCALARS[next(iter(kinds))], "enum": list(args)}
    if origin is list and args == (str,):
        return {"type": "array", "items": {"type": "string"}}
    raise ToolLoadError(f"{where}: unsupported type {hint!r} (use str, int, float, bool, Literal[...], list[str])")


_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _param_docs(doc: str) -> dict[str, str]:
    """`name: text` lines of a Google-style `Args:` section."""
    found: dict[str, str] = {}
    match = re.search(r"^Args:\s*\n((?:[ \t]+.*\n?)+)", doc, re.M)
    if match:
        for line in match.group(1).splitlines():
            item = re.match(r"\s+(\w+)\s*(?:\([^)]*\))?:\s*(.+)", line)
            if item:
                found[item.group(1)] = item.group(2).strip()
    return found


# --- arguments ------------------------------------------------------------------------------------


class BadArguments(ValueError):
    pass


def _check(value: Any, schema: dict[str, Any], name: str) -> None:
    kind = schema["type"]
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[kind]
    if not ok:
        raise BadArguments(f"argument {name!r} must be of type {kind}")
    if "enum" in schema and value not in schema["enum"]:
        raise BadArguments(f"argument {name!r} must be one of {schema['enum']}")


def parse_arguments(tool_: Tool, arguments: str) -> dict[str, Any]:
    try:
        values = json.loads(arguments or "{}")
    except ValueError:
        raise BadArguments("the arguments are not valid JSON") from None
    if not isinstance(values, dict):
        raise BadArguments("the arguments must be a JSON object")
    properties = tool_.parameters["properties"]
    unknown = sorted(set(values) - set(properties))
    if unknown:
        raise BadArguments(f"unknown argument(s): {', '.join(unknown)}")
    missing = [n for n in tool_.parameters["required"] if n not in values]
    if missing:
        raise BadArguments(f"missing argument(s): {', '.join(missing)}")
    for name, value in values.items():
        if value is None and name not in tool_.parameters["required"]:
            continue  # `X | None = default`: null means "use the default"
        _check(value, properties[name], name)
    return {k: v for k, v in values.items() if v is not None}


# --- the set of tools a process offers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    output: str  # JSON text for function_call_output
    status: Literal["done", "failed"]
    reason: str  # "ok", "unknown_tool", "bad_arguments", "exception", "timeout"


class Toolbox:
    """The tools of `VOICEBRIDGE_TOOLS`, and running one call with a timeout."""

    def __init__(self, tools: Iterable[Tool] = (), timeout_s: float = 10.0):
        self.tools: dict[str, Tool] = {}
        for t in tools:
            if t.name in self.tools:
                raise ToolLoadError(f"two tools are named {t.name!r}")
            self.tools[t.name] = t
        self.timeout_s = timeout_s
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def load(cls, modules: Iterable[str], timeout_s: float = 10.0) -> Toolbox:
        found: list[Tool] = []
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise ToolLoadError(f"cannot import tools module {module_name!r}: {exc}") from None
            tools = [getattr(v, _MARK) for v in vars(module).values() if callable(v) and hasattr(v, _MARK)]
            if not tools:
                raise ToolLoadError(f"module {module_name!r} defines no @tool functions")
            found.extend(tools)
        return cls(found, timeout_s)

    def __bool__(self) -> bool:
        return bool(self.tools)

    def definitions(self) -> list[dict[str, Any]]:
        return [t.definition() for t in self.tools.values()]

    async def run(self, name: str, arguments: str) -> Outcome:
        """Run one call. Never raises: every failure becomes an `{"error": …}` output the model can read."""
        tool_ = self.tools.get(name)
        if tool_ is None:
            return _failed("unknown_tool", f"there is no tool named {name!r}")
        try:
            kwargs = parse_arguments(tool_, arguments)
        except BadArguments as exc:
            return _failed("bad_arguments", str(exc))
        try:
            async with asyncio.timeout(self.timeout_s):
                if inspect.iscoroutinefunction(tool_.fn):
                    result = await tool_.fn(**kwargs)
                else:
                    loop = asyncio.get_running_loop()
                    result = await loop.run_in_executor(self._executor(), lambda: tool_.fn(**kwargs))
        except TimeoutError:
            return _failed("timeout", f"{name} did not answer within {self.timeout_s:g} s")
        except Exception as exc:
            return _failed("exception", f"{name} failed: {type(exc).__name__}: {exc}"[:500])
        return Outcome(json.dumps(result, ensure_ascii=False, default=str), "done", "ok")

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=_SYNC_WORKERS, thread_name_prefix="voicebridge-tool")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _failed(reason: str, message: str) -> Outcome:
    return Outcome(json.dumps({"error": message}, ensure_ascii=False), "failed", reason)
