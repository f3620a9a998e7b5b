"""Issue 19 findings 9 and 4, end to end: the real app, the unmodified SDK, the emulator in its strict
(service-like) behaviour, real sockets.

- 9b: a tool's `function_call_output` goes out only after the asking response's `response.done`, as
  Microsoft's sample waits. The emulator's `function_call_done_ms` keeps the calling response active a
  while after its calls (the service takes time there too), and its record says how many client events
  had arrived by that response.done, so an output sent early shows.
- 9c: truncate's `content_index` is the audio's own (from its deltas), not 0: with `reply_text_part` the
  reply's item has a text part first, its audio at content_index 1, and the emulator refuses a
  truncate of any other part, as the service names the part to truncate.
- An item's words come once: with `reply_text_part` they are in its text part and in its audio part's
  transcript; the tab is shown them once, and a new upstream session is told them once.
- 4 (tail): `warning` and `rate_limits.updated` have handlers: logged for the operator (without a line
  per reply), the session goes on.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.apps import start_app
from support.audio import silence, speech
from support.upstreams import emulator_env, new_upstream, ready, record, running, upstream_ids
from support.waiting import until
from voicebridge.emulator import EmulatorConfig

SUPPORT = Path(__file__).resolve().parents[1] / "support"
CALLS_DONE_MS = 1500  # how long the calling response stays active after its calls: far longer than `add` takes


@pytest.fixture(scope="module")
def emulator():
    with running(EmulatorConfig(pace=1.0, function_call_done_ms=CALLS_DONE_MS)) as emu:
        yield emu


@pytest.fixture(autouse=True)
def service_defaults(emulator):
    yield
    emulator.update_config(reply_text_part=False, rate_limits=None)


@pytest.fixture(scope="module")
def app(request, emulator):
    return start_app(request, emulator_env(emulator, VOICEBRIDGE_TOOLS="tooldemo", PYTHONPATH=str(SUPPORT)))


def log_lines(app, pattern: str) -> list[str]:
    return [line for line in app.log_path.read_text().splitlines() if re.search(pattern, line)]


def test_tool_outputs_go_after_the_asking_responses_done(tabs, emulator):
    """Finding 9b: the service may refuse (or mis-order) an item added to a response still in progress;
    the output and the reply's response.create come after the calling response's response.done."""
    tab, session_id = ready(tabs, emulator)
    emulator.calls.queue([{"name": "add", "arguments": {"a": 2, "b": 3}}], session_id)
    mark = tab.mark()
    tab.send({"type": "text", "text": "Please add."})
    assert tab.wait_reply(mark)["text"].startswith("The tool answered: 5")
    rec = record(emulator, session_id)
    (asking,) = [r for r in rec.responses if r.get("function_calls")]
    assert asking["status"] == "completed"
    events = rec.events_received
    (output_at,) = [i for i, e in enumerate(events) if e.get("type") == "conversation.item.create"
                    and e["item"].get("type") == "function_call_output"]
    assert output_at >= asking["done_at_event"], "the output was sent while the asking response was in progress"
    creates = [i for i, e in enumerate(events) if e.get("type") == "response.create"]
    assert creates[-1] > output_at  # the reply is asked for after the output it answers
    assert tab.of_type("error") == []


def test_a_barge_in_truncates_the_audio_part_the_deltas_named(tabs, emulator):
    """Finding 9c: the reply's audio is content part 1 (a text part comes first); the truncate after a
    barge-in names part 1, which the emulator (like the service) accepts, and the conversation goes on."""
    tab, session_id = ready(tabs, emulator)
    emulator.update_config(reply_text_part=True)
    tab.speak(silence(200) + speech(2500, seed=43) + silence(900))
    first = tab.wait_for(lambda m: m["type"] == "audio", 15)
    mark = tab.mark()
    tab.send({"type": "text", "text": "Sorry, one thing"})
    tab.send({"type": "playback", "item_id": first["item_id"], "played_ms": 100, "cleared": True})
    assert tab.wait_reply(mark)["text"] == "You wrote: Sorry, one thing"
    assert emulator.wait_until(lambda: record(emulator, session_id).truncations, 10), "no truncation was accepted"
    (truncation,) = record(emulator, session_id).truncations
    assert (truncation["item_id"], truncation["content_index"]) == (first["item_id"], 1)
    assert tab.of_type("error") == []


def test_an_item_with_a_text_part_and_an_audio_part_says_its_words_once(tabs, emulator):
    tab, session_id = ready(tabs, emulator)
    emulator.update_config(reply_text_part=True)
    mark = tab.mark()
    tab.send({"type": "text", "text": "Only once"})
    final = tab.wait_reply(mark)
    assert final["text"] == "You wrote: Only once"
    tab.wait_state("ready", 15, mark)
    tab.report(final["item_id"], len(tab.audio(final["item_id"])) // 48)  # heard in full
    shown = [m for m in tab.messages[mark:] if m["type"] == "transcript" and m.get("item_id") == final["item_id"]]
    assert "".join(m["text"] for m in shown if not m["final"]) == final["text"], shown
    assert [m["text"] for m in shown if m["final"]] == [final["text"]], shown
    # What the bridge keeps of the conversation is what a new upstream session is told.
    known, mark = upstream_ids(emulator), tab.mark()
    emulator.drop(session_id)
    tab.wait_state("ready", 15, mark)
    second = new_upstream(emulator, known)
    told = [(e["item"]["role"], e["item"]["content"][0]["text"]) for e in second.events_received
            if e.get("type") == "conversation.item.create"]
    assert told == [("user", "Only once"), ("assistant", "You wrote: Only once")]


def test_a_warning_is_logged_for_the_operator_and_the_session_goes_on(app, tabs, emulator):
    """Finding 4: `warning` (informational, the session continues) reaches the log at WARNING with its
    code, param and message; the tab is not disturbed and the next turn is answered."""
    tab, session_id = ready(tabs, emulator)
    assert emulator.send_warning("Audio format will change soon.", code="deprecated_format",
                                 param="session.input_audio_format", session_id=session_id) == 1
    (line,) = until(lambda: log_lines(app, r"event=upstream.warning .*code=deprecated_format"), 10, "the warning log")
    assert " WARNING " in line and "param=session.input_audio_format" in line and "will change soon" in line
    mark = tab.mark()
    tab.send({"type": "text", "text": "Still there?"})
    assert tab.wait_reply(mark)["text"] == "You wrote: Still there?"
    assert tab.of_type("error") == [] and "error" not in tab.states()


def test_rate_limits_are_kept_and_tokens_running_out_is_one_warning(app, tabs, emulator):
    """Finding 4: `rate_limits.updated` comes with every reply; the operator gets the figures once at
    INFO (not per reply), one WARNING when tokens remaining reaches 0, and the session's closing line
    carries the last figures. Replies go on being answered."""
    emulator.update_config(rate_limits=[{"name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 60},
                                        {"name": "tokens", "limit": 120000, "remaining": 0, "reset_seconds": 42}])
    tab, session_id = ready(tabs, emulator)
    for text in ("One", "Two", "Three"):
        mark = tab.mark()
        tab.send({"type": "text", "text": text})
        assert tab.wait_reply(mark)["text"] == f"You wrote: {text}"
    tab.stop()
    closed = until(lambda: log_lines(app, r"event=session.closed session=\S+ .*tokens_remaining=0"), 10,
                   "the session's closing line with the rate limits")
    (session,) = {re.search(r"session=(\S+)", line).group(1) for line in closed}
    mine = log_lines(app, rf"session={session} ")
    infos = [line for line in mine if "event=upstream.rate_limits" in line]
    assert len(infos) == 1 and " INFO " in infos[0]
    assert "tokens_remaining=0 tokens_limit=120000" in infos[0] and "requests_remaining=999" in infos[0]
    (exhausted,) = [line for line in mine if "event=upstream.tokens_exhausted" in line]
    assert " WARNING " in exhausted and "reset_seconds=42" in exhausted
    assert "requests_remaining=999" in closed[0]
    assert tab.of_type("error") == []
