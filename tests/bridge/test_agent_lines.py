"""The response gate's side of the agent's own lines (issue 24, ResponseGate.say): a line goes only into
silence and is never held; while it plays a reply waits for its response.done; a refused line never blocks
the gate and is never retried as a plain response.create (that would make the model speak instead)."""

from __future__ import annotations

from voicebridge.session.gate import ACTIVE_RESPONSE, CREATE_PARAMS, ResponseGate
from voicebridge.session.initiative import pre_generated


def gate():
    sent: list[dict] = []
    return ResponseGate("s1", lambda event, name: sent.append(event)), sent


def test_a_line_goes_only_when_nothing_is_active_or_asked_for_and_is_never_held():
    g, sent = gate()
    g.created("resp_1")  # the service's own response (server VAD)
    assert g.say(pre_generated("One moment."), "filler") is False
    g.done("resp_1")
    assert sent == [], "a line that could not go is dropped, not sent late"
    assert g.say(pre_generated("One moment."), "filler") is True
    assert sent[-1]["response"]["pre_generated_assistant_message"]["content"] == [{"type": "text", "text": "One moment."}]
    assert g.busy, "asked for: the next request waits for this one"
    assert g.say(None, "reprompt") is False


def test_a_reply_asked_for_during_a_line_goes_after_the_lines_response_done():
    g, sent = gate()
    g.say(pre_generated("One moment."), "filler")
    g.created("resp_line")
    g.create("tool")
    assert len(sent) == 1
    g.done("resp_line")
    assert [e.get("response") for e in sent] == [{**pre_generated("One moment."), "cancel_previous": False},
                                                 {"cancel_previous": False}]


def test_no_create_asks_the_service_to_cancel_what_it_is_saying():
    """[SDK] cancel_previous defaults to true: every create says false, so one that meets a response the
    service started itself is refused (the gate retries or drops it) and never cuts that response off."""
    g, sent = gate()
    g.say(None, "greeting")
    g.created("resp_greeting")
    g.create("text")
    g.done("resp_greeting")
    g.created("resp_text")
    g.done("resp_text")
    g.say(pre_generated("Are you still there?"), "reprompt")
    assert len(sent) == 3 and all(e["response"]["cancel_previous"] is False for e in sent), sent
    assert CREATE_PARAMS == {"cancel_previous": False}


def test_a_line_refused_in_a_race_is_benign_and_not_retried_with_or_without_event_id():
    for named in (True, False):
        g, sent = gate()
        g.say(pre_generated("Are you still there?"), "reprompt")
        verdict = g.judge({"code": ACTIVE_RESPONSE, "event_id": sent[0]["event_id"] if named else None})
        assert verdict.benign and verdict.kind == "line"
        assert not g.busy
        g.created("resp_vad")
        g.done("resp_vad")
        assert len(sent) == 1, "no plain response.create was retried in the line's place"


def test_a_line_refused_for_another_reason_is_reported_and_unblocks_the_gate():
    g, sent = gate()
    g.say(pre_generated("Hello."), "greeting")
    verdict = g.judge({"code": "invalid_value", "event_id": sent[0]["event_id"]})
    assert verdict.kind == "line" and not verdict.benign
    assert not g.busy
    g.create("text")
    assert len(sent) == 2 and sent[1]["response"] == CREATE_PARAMS  # a reply of the model, not the line
