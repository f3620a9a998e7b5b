"""Handshake, authentication and session configuration, as the unmodified SDK sees them."""

from __future__ import annotations

import aiohttp
import pytest
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import connect
from azure.ai.voicelive.models import AzureStandardVoice, RequestSession, ServerVad
from azure.core.credentials import AccessToken, AzureKeyCredential

from support.sdk_client import client, run, url


def test_session_created_describes_the_service_defaults(emulator):
    async def main():
        async with client(emulator) as c:
            created = c.events[0]
            session = created.session
            assert created.type == "session.created" and created.event_id.startswith("event_")
            assert session.id.startswith("sess_") and session.model == "gpt-realtime"
            assert session.input_audio_format == "pcm16" and session.output_audio_format == "pcm16"
            assert set(session.modalities) == {"text", "audio"}
            assert session.input_audio_transcription is None
            td = session.turn_detection
            assert (td.type, td.threshold, td.prefix_padding_ms, td.silence_duration_ms) == ("server_vad", 0.5, 300, 500)
            assert emulator.sessions()[0].id == session.id

    run(main())


def test_session_update_is_merged_and_turn_detection_keeps_the_defaults_not_sent(emulator):
    async def main():
        async with client(emulator) as c:
            await c.conn.session.update(session=RequestSession(
                instructions="Be brief.",
                voice=AzureStandardVoice(name="en-US-AvaNeural"),
                turn_detection=ServerVad(threshold=0.7, silence_duration_ms=800),
            ))
            updated = (await c.wait_for("session.updated")).session
            assert updated.voice == {"name": "en-US-AvaNeural", "type": "azure-standard"}
            # The service fills what was not sent from the session's defaults, as session.created showed them.
            assert dict(updated.turn_detection) == {"type": "server_vad", "threshold": 0.7, "silence_duration_ms": 800,
                                                    "prefix_padding_ms": 300, "create_response": True,
                                                    "interrupt_response": True}
            assert updated.instructions == "Be brief." and updated.input_audio_format == "pcm16"  # merged, not replaced
            mark = len(c.events)
            await c.conn.session.update(session={"voice": "alloy", "turn_detection": None})
            updated = (await c.wait_for("session.updated", start=mark)).session
            assert updated.voice == "alloy" and updated.turn_detection is None and updated.instructions == "Be brief."
        record = emulator.sessions()[0]
        assert record.config["voice"] == "alloy" and record.config["instructions"] == "Be brief."

    run(main())


def test_required_key_accepts_the_right_key_and_rejects_others_with_401(make_emulator):
    emu = make_emulator(required_key="right")

    async def main():
        async with client(emu, key="right") as c:
            assert c.events[0].type == "session.created"
        with pytest.raises(VoiceLiveConnectionError):
            async with connect(endpoint=url(emu), credential=AzureKeyCredential("wrong"), model="m"):
                pass
        async with aiohttp.ClientSession() as http:
            async with http.get(url(emu) + "/voice-live/realtime", headers={"api-key": "wrong"}) as response:
                assert response.status == 401

    run(main())
    assert len(emu.sessions()) == 1


def test_missing_credentials_and_reject_auth_give_401(make_emulator):
    emu = make_emulator()

    async def main():
        async with aiohttp.ClientSession() as http:
            async with http.get(url(emu) + "/voice-live/realtime?api-version=x&model=m") as response:
                assert response.status == 401
            async with http.get(url(emu) + "/openai/realtime", headers={"api-key": "k"}) as response:
                assert response.status == 404
        emu.update_config(reject_auth=True)
        with pytest.raises(VoiceLiveConnectionError):
            async with connect(endpoint=url(emu), credential=AzureKeyCredential("any"), model="m"):
                pass
        emu.update_config(reject_auth=False)
        async with client(emu):
            pass

    run(main())


class StaticToken:
    """Stand-in for Entra ID (nothing real can issue tokens here): the SDK only needs get_token."""

    def __init__(self, token: str):
        self.token = token

    async def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, 2**31)

    async def close(self):
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        pass


def test_bearer_token_is_accepted_and_checked_against_the_required_key(make_emulator):
    emu = make_emulator(required_key="tok")

    async def main():
        async with connect(endpoint=url(emu), credential=StaticToken("tok"), model="m") as conn:
            assert (await conn.recv()).type == "session.created"
        with pytest.raises(VoiceLiveConnectionError):
            async with connect(endpoint=url(emu), credential=StaticToken("other"), model="m"):
                pass

    run(main())
    assert [s.credential for s in emu.sessions()] == ["bearer"]
