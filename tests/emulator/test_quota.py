"""The resource quota the emulator enforces (issue 23), as the unmodified SDK meets it: HTTP 429 with
Retry-After beyond the connections per window (what aiohttp and the SDK hand the bridge), failed replies
beyond the tokens, and the usage every response.done bills."""

from __future__ import annotations

import pytest
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError

from support.sdk_client import client, run
from voicebridge.upstream import _http_status, retry_after


def test_connections_beyond_the_window_are_refused_with_429_and_retry_after(make_emulator):
    emu = make_emulator(connects_per_window=2, quota_window_s=30.0)

    async def main():
        for _ in range(2):
            async with client(emu):
                pass
        with pytest.raises(VoiceLiveConnectionError) as refused:
            async with client(emu):
                pass
        return refused.value

    refusal = run(main())
    assert _http_status(refusal) == 429
    assert 1 <= retry_after(refusal) <= 30
    assert emu.quota.refused == 1 and len(emu.sessions()) == 2


def test_replies_beyond_the_tokens_fail_with_rate_limit_exceeded_and_usage_is_billed(make_emulator):
    emu = make_emulator(tokens_per_window=10, quota_window_s=30.0)

    async def main():
        async with client(emu) as c:
            await c.conn.send({"type": "response.create"})
            first = await c.wait_for("response.done")
            mark = len(c.events)
            await c.conn.send({"type": "response.create"})
            second = await c.wait_for("response.done", start=mark)
            return first.response, second.response

    first, second = run(main())
    assert first.status == "completed"
    usage = first.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens >= 10  # a 1 s tone: 20 tokens of audio
    assert usage.output_token_details.audio_tokens >= 10
    assert second.status == "failed"
    assert second.status_details.error["code"] == "rate_limit_exceeded"
    assert list(emu.quota.billed)[0] == usage.total_tokens
