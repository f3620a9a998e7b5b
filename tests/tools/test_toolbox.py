"""Tools: the schema a decorated function declares, loading modules, and running calls (issue 11)."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import types
from typing import Literal

import pytest

from voicebridge.tools import Toolbox, ToolLoadError, tool


def test_schema_comes_from_the_type_hints_and_the_docstring():
    @tool
    def book(
        room: str,
        people: int,
        hours: float,
        projector: bool,
        size: Literal["small", "large"],
        tags: list[str],
        note: str | None = None,
    ) -> dict:
        """Book a meeting room.

        More prose that is not part of the description.

        Args:
            room: the room's name.
            people: how many will come.
        """
        return {}

    t = book.__voicebridge_tool__
    assert t.name == "book" and t.description == "Book a meeting room."
    props = t.parameters["properties"]
    assert props["room"] == {"type": "string", "description": "the room's name."}
    assert props["people"] == {"type": "integer", "description": "how many will come."}
    assert props["hours"] == {"type": "number"} and props["projector"] == {"type": "boolean"}
    assert props["size"] == {"type": "string", "enum": ["small", "large"]}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["note"] == {"type": "string"}
    assert t.parameters["required"] == ["room", "people", "hours", "projector", "size", "tags"]
    assert t.definition()["type"] == "function"


@pytest.mark.parametrize(
    "source, problem",
    [
        ("def f(x: dict) -> None:\n    'Doc.'", "unsupported type"),
        ("def f(x) -> None:\n    'Doc.'", "needs a type hint"),
        ("def f(x: str | None) -> None:\n    'Doc.'", "needs a default"),
        ("def f(x: int | str = 1) -> None:\n    'Doc.'", "only `X | None`"),
        ("def f(*x: str) -> None:\n    'Doc.'", "plain named parameter"),
        ("def f(x: str) -> None:\n    pass", "docstring"),
    ],
)
def test_a_tool_declared_wrongly_is_refused_when_its_module_loads(source, problem):
    namespace: dict = {}
    exec(source, namespace)
    with pytest.raises(ToolLoadError, match=problem):
        tool(namespace["f"])


def _module(name: str, **functions) -> str:
    module = types.ModuleType(name)
    for key, fn in functions.items():
        setattr(module, key, fn)
    sys.modules[name] = module
    return name


def test_loading_finds_decorated_functions_and_names_the_bad_module():
    @tool
    def ping() -> str:
        """Answer pong."""
        return "pong"

    def helper() -> None:  # not decorated: not a tool
        pass

    box = Toolbox.load([_module("vb_test_tools_a", ping=ping, helper=helper)])
    assert [d["name"] for d in box.definitions()] == ["ping"]
    with pytest.raises(ToolLoadError, match="no_such_module_here"):
        Toolbox.load(["no_such_module_here"])
    with pytest.raises(ToolLoadError, match="defines no @tool"):
        Toolbox.load([_module("vb_test_tools_empty", helper=helper)])
    with pytest.raises(ToolLoadError, match="two tools are named 'ping'"):
        Toolbox.load(["vb_test_tools_a", _module("vb_test_tools_b", ping=ping)])


def run(box: Toolbox, name: str, arguments: str):
    return asyncio.run(box.run(name, arguments))


def test_calls_succeed_or_fail_with_an_error_output_never_an_exception():
    @tool
    async def add(a: int, b: int = 1) -> int:
        """Add."""
        return a + b

    @tool
    def boom() -> None:
        """Fail."""
        raise RuntimeError("the database is down")

    box = Toolbox([add.__voicebridge_tool__, boom.__voicebridge_tool__])
    assert run(box, "add", '{"a": 2, "b": 3}').output == "5"
    assert run(box, "add", '{"a": 2, "b": null}').output == "3"
    for arguments, reason, words in [
        ('{"a": "two"}', "bad_arguments", "must be of type integer"),
        ('{"a": true}', "bad_arguments", "must be of type integer"),
        ("{}", "bad_arguments", "missing argument(s): a"),
        ('{"a": 1, "c": 2}', "bad_arguments", "unknown argument(s): c"),
        ("[1]", "bad_arguments", "JSON object"),
        ("{nope", "bad_arguments", "not valid JSON"),
    ]:
        outcome = run(box, "add", arguments)
        assert (outcome.status, outcome.reason) == ("failed", reason)
        assert words in json.loads(outcome.output)["error"]
    outcome = run(box, "boom", "{}")
    assert outcome.reason == "exception" and "the database is down" in json.loads(outcome.output)["error"]
    outcome = run(box, "teleport", "{}")
    assert outcome.reason == "unknown_tool" and "teleport" in json.loads(outcome.output)["error"]


def test_a_tool_that_overruns_its_timeout_fails_with_timeout():
    @tool
    async def forever() -> None:
        """Never answer."""
        await asyncio.Event().wait()

    box = Toolbox([forever.__voicebridge_tool__], timeout_s=0.05)
    outcome = run(box, "forever", "{}")
    assert (outcome.status, outcome.reason) == ("failed", "timeout")
    assert "did not answer within 0.05 s" in json.loads(outcome.output)["error"]


def test_a_sync_tool_runs_off_the_event_loop():
    loop_ran = threading.Event()

    @tool
    def blocking() -> bool:
        """Wait for the loop."""
        # Set by a loop callback: if this ran on the loop, the callback could not run until it returned.
        return loop_ran.wait(10)

    box = Toolbox([blocking.__voicebridge_tool__])

    async def scenario():
        asyncio.get_running_loop().call_soon(loop_ran.set)
        return await box.run("blocking", "{}")

    assert asyncio.run(scenario()).output == "true"
    box.close()


def test_the_clock_tool_answers_for_a_real_time_zone_and_refuses_a_made_up_one():
    box = Toolbox.load(["voicebridge.tools.clock"])
    answer = json.loads(run(box, "get_current_time", '{"timezone": "Asia/Tokyo"}').output)
    assert answer["timezone"] == "Asia/Tokyo" and answer["utc_offset"] == "+0900"
    assert json.loads(run(box, "get_current_time", "{}").output)["utc_offset"] == "+0000"
    failed = run(box, "get_current_time", '{"timezone": "Mars/Olympus"}')
    assert failed.reason == "exception" and "unknown time zone" in json.loads(failed.output)["error"]
