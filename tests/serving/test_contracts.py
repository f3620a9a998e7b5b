"""What the serving layer relies on inside its libraries. Each test fails when a new release changes
that behaviour; pyproject.toml pins the libraries to the releases these tests passed on."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket

import pytest
from flask import Flask
from flask_sock import Sock
from websockets.exceptions import InvalidState
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State

from support.hostile import CLOSE, TEXT, frame
from voicebridge.front import _HandshakeSocket
from voicebridge.runtime import ADOPT_KEY, SOCK_SERVER_OPTIONS, adopt
from voicebridge.upstream import sdk_session_of

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def upgrade_environ(key: str) -> dict:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/ws", "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": None, "wsgi.version": (1, 0),
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "HTTP_HOST": "127.0.0.1", "HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "Upgrade",
        "HTTP_SEC_WEBSOCKET_KEY": key, "HTTP_SEC_WEBSOCKET_VERSION": "13",
    }


def test_flask_sock_and_simple_websocket_only_shake_hands_into_the_capture():
    """front.py gives simple-websocket a capturing socket as "werkzeug.socket" and a thread_class that
    never starts; the /ws route hands over and returns. The 101 must land in the capture, nothing may
    be written after it (no close frame from flask-sock), and no thread may start."""
    app = Flask(__name__)
    app.config["SOCK_SERVER_OPTIONS"] = SOCK_SERVER_OPTIONS
    sock = Sock(app)
    adopted = []

    @sock.route("/ws")
    def ws_route(ws):
        adopt(ws, attach="the attach callable", runtime=None)

    key = base64.b64encode(os.urandom(16)).decode()
    capture = _HandshakeSocket()
    environ = {**upgrade_environ(key), "werkzeug.socket": capture, ADOPT_KEY: adopted.append}
    started = []
    body = app(environ, lambda status, headers, exc_info=None: started.append(status))
    b"".join(body)
    head = bytes(capture.sent)
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    assert head.startswith(b"HTTP/1.1 101")
    assert f"Sec-WebSocket-Accept: {accept}".lower().encode() in head.lower()
    assert head.endswith(b"\r\n\r\n")  # the handshake and nothing else
    assert b"permessage-deflate" not in head.lower()  # no offer was made (app.py strips it), none accepted
    assert adopted == ["the attach callable"]
    assert started and started[0].startswith("200")  # werkzeug mode: a plain response front.py ignores


def test_websockets_sans_io_protocol_behaves_as_tab_connection_expects():
    ws = Protocol(Side.SERVER, max_size=1024)
    assert ws.state is State.OPEN  # usable right after someone else's handshake
    ws.receive_data(frame(TEXT, b'{"a":1}'))
    [event] = ws.events_received()
    assert event.opcode is Opcode.TEXT and event.fin and event.data == b'{"a":1}'
    # A protocol error: a close frame goes out, the state leaves OPEN, and sending raises.
    ws.receive_data(frame(TEXT, b"{}", rsv=0b100))
    assert ws.state is not State.OPEN
    with pytest.raises(InvalidState):
        ws.send_text(b"late")
    # The close handshake ends with the empty chunk that tells the transport to close.
    done = Protocol(Side.SERVER)
    done.receive_data(frame(CLOSE, b"\x03\xe8"))
    assert done.data_to_send()[-1] == b""
    # A fragmented message's size is bounded by max_size across its frames.
    big = Protocol(Side.SERVER, max_size=10)
    big.receive_data(frame(TEXT, b"12345678", fin=False) + frame(0, b"12345678"))
    assert big.state is not State.OPEN


def test_the_sdk_session_of_a_cancelled_connect_can_be_found_and_closed():
    """upstream.py closes the aiohttp session the SDK created for a connect that was cancelled (the
    SDK itself does not): it finds it as the local `session` of the SDK's suspended `__aenter__`."""
    from azure.ai.voicelive.aio import connect
    from azure.core.credentials import AzureKeyCredential

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(4)

    async def main():
        manager = connect(endpoint=f"http://127.0.0.1:{hung.getsockname()[1]}",
                          credential=AzureKeyCredential("k"), model="m")
        opening = asyncio.ensure_future(manager.__aenter__())
        for _ in range(200):  # until the connect waits on the network with its session made
            await asyncio.sleep(0)
            if sdk_session_of(opening) is not None:
                break
        session = sdk_session_of(opening)
        assert session is not None and not session.closed
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        assert not session.closed  # the SDK leaves it open: that is what upstream.py repairs
        await session.close()

    try:
        asyncio.run(main())
    finally:
        hung.close()


def test_the_audio_fast_path_sends_what_the_sdk_would_send_on_its_websocket():
    """upstream.send_audio writes the append event to the SDK connection's aiohttp WebSocket
    (`_connection`) itself instead of going through the SDK's JSON re-encoding."""
    import json

    from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
    from azure.ai.voicelive.aio import VoiceLiveConnection

    from voicebridge.upstream import send_audio

    class Captured:
        def __init__(self, fail: bool = False):
            self.sent: list[str] = []
            self.fail = fail

        async def send_str(self, data: str, compress=None) -> None:
            if self.fail:
                import aiohttp

                raise aiohttp.ClientConnectionResetError("gone")
            self.sent.append(data)

    data = base64.b64encode(bytes(range(256)) * 4).decode()

    async def main():
        by_sdk, by_us = Captured(), Captured()
        await VoiceLiveConnection(None, by_sdk).send({"type": "input_audio_buffer.append", "audio": data})
        conn = VoiceLiveConnection(None, by_us)
        assert conn._connection is by_us
        await send_audio(conn, data)
        assert [json.loads(s) for s in by_us.sent] == [json.loads(s) for s in by_sdk.sent]
        with pytest.raises(VoiceLiveConnectionError):
            await send_audio(VoiceLiveConnection(None, Captured(fail=True)), data)

    asyncio.run(main())
