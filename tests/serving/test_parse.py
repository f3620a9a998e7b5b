"""protocol.parse: the limits a hostile frame meets, and the audio fast path agreeing with the JSON path."""

from __future__ import annotations

import base64
import json

import pytest

from voicebridge import protocol

PCM = bytes(range(256)) * 4


@pytest.mark.parametrize("depth", [100, 1000, 100_000])
def test_deeply_nested_json_is_bad_json(depth):
    for frame in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        try:
            protocol.parse(frame)
        except protocol.ProtocolError as exc:
            assert exc.code in ("bad_json", "bad_message")
        else:
            raise AssertionError("accepted")


@pytest.mark.parametrize(
    "data",
    [base64.b64encode(PCM).decode(), "AAA=", "AAAA", "", "not base64!", r"AA\u0041A", 'AA\\"A', base64.b64encode(PCM[:3]).decode()],
)
def test_the_audio_fast_path_answers_exactly_like_the_json_path(data):
    canonical = '{"type":"audio","data":"' + data + '"}'  # the page's JSON.stringify form: the fast path
    spaced = '{"type": "audio", "data": "' + data + '"}'  # the same message that only json.loads reads

    def outcome(frame):
        try:
            return protocol.parse(frame)
        except protocol.ProtocolError as exc:
            return exc.code

    try:
        json.loads(spaced)
    except ValueError:
        assert outcome(canonical) == outcome(spaced) == "bad_json"
        return
    assert outcome(canonical) == outcome(spaced)
