"""Clients that idle, trickle, linger, flood or misbehave cost the server nothing that matters: health
checks and new tabs keep working, memory stays bounded, nothing is logged as an ERROR (issue 10)."""

from __future__ import annotations

import base64
import contextlib
import socket

import pytest

from support import hostile
from support.audio import chunks, silence, speech
from support.hostile import CLOSE, CONT, PING, TEXT, Reader, frame, http, text, upgraded
from support.tab import Tab

pytestmark = pytest.mark.usefixtures("no_errors")


def assert_serving(small) -> None:
    """The server still answers its health check and a new tab still gets a session."""
    status, _ = http(small.port)
    assert status == 200
    tab = Tab(small.app.url)
    try:
        tab.start()
        tab.wait_state("ready")
    finally:
        tab.close()


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()


def test_idle_upgraded_sockets_hold_no_thread(small):
    """Finding 1: each open tab parked a worker thread, so a few idle sockets froze /healthz."""
    idle = [upgraded(small.port) for _ in range(40)]
    try:
        assert_serving(small)
    finally:
        close_all(idle)


def test_slowloris_holds_no_thread_and_is_dropped_at_the_request_deadline(small):
    """Finding 2: request heads were read on worker threads with no timeout."""
    slow = []
    for _ in range(40):
        sock = hostile.connect(small.port)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        slow.append(sock)
    try:
        assert_serving(small)
        # The unfinished requests are dropped at their deadline (1 s here), without an answer.
        for sock in slow:
            assert Reader(sock).at_eof()
    finally:
        close_all(slow)


def test_lingering_closes_are_finished_by_the_server(small):
    """Finding 3: tabs that send a close frame and keep the socket stalled the server one by one."""
    lingering = [upgraded(small.port) for _ in range(20)]
    try:
        for sock in lingering:
            sock.sendall(frame(CLOSE, b"\x03\xe8"))
        assert_serving(small)
        for sock in lingering:
            reader = Reader(sock)
            assert reader.close_code() == 1000
            assert reader.at_eof()  # the server closed the TCP connection itself
    finally:
        close_all(lingering)


def test_ping_flood_without_reading_is_cut_off(small):
    """Finding 4: pongs to a client that never reads bypassed the 4 MiB slow-reader cut-off."""
    sock = upgraded(small.port, rcvbuf=4096)
    batch = frame(PING, b"p" * 125) * 2000
    sent = 0
    try:
        with pytest.raises(OSError):  # reset (or a dead peer) once the server cuts the client off
            while sent < 256 * 1024 * 1024:
                sock.sendall(batch)
                sent += len(batch)
    finally:
        sock.close()
    assert_serving(small)


def test_empty_continuation_frames_count_toward_the_message_limit(small):
    """Finding 5: empty continuation frames grew a message's fragment list without bound."""
    sock = upgraded(small.port)
    try:
        sock.sendall(frame(TEXT, b'{"type":', fin=False))
        sock.sendall(frame(CONT, b"", fin=False) * 5000)
        assert Reader(sock).close_code() == 1009
    finally:
        sock.close()


def test_a_bad_frame_from_a_tab_that_stopped_reading_ends_its_upstream(small, emulator):
    """Finding 6: after the protocol error the session kept its (paid) upstream and logged tracebacks."""
    before = {s.id for s in emulator.sessions()}
    sock = upgraded(small.port, rcvbuf=4096)
    try:
        sock.sendall(text({"type": "session.start"}))
        Reader(sock).until_message(lambda m: m.get("state") == "ready")
        assert emulator.wait_until(lambda: any(s.open for s in emulator.sessions() if s.id not in before))
        [mine] = [s.id for s in emulator.sessions() if s.id not in before]

        def record():
            return next((s for s in emulator.sessions() if s.id == mine), None)

        # From here on the client reads nothing: it speaks, the assistant answers (audio piles up
        # towards the client), and in the middle of the answer comes one frame with reserved bits set.
        emulator.update_config(pace=0)  # the reply as fast as it can go: megabytes wait for the client
        for chunk in chunks(silence(200) + speech(20_000, seed=5) + silence(900), ms=100):
            sock.sendall(text({"type": "audio", "data": base64.b64encode(chunk).decode()}))
        assert emulator.wait_until(lambda: bool(record().responses), timeout=15)
        sock.sendall(frame(TEXT, b"{}", rsv=0b100))
        assert emulator.wait_until(lambda: not record().open, timeout=10)
    finally:
        emulator.update_config(pace=1.0)
        sock.close()


def test_deeply_nested_json_is_answered_bad_json(small):
    """Finding 9: ~1000 nesting levels raised RecursionError and dropped the socket."""
    tab = Tab(small.app.url)
    try:
        tab.send("[" * 5000 + "]" * 5000)
        error = tab.wait_for(lambda m: m["type"] == "error")
        assert error["code"] == "bad_json"
        tab.start()
        tab.wait_state("ready")
    finally:
        tab.close()


@pytest.mark.parametrize("scheme", ["https", "ws", "wss", "javascript"])
def test_origin_with_another_scheme_is_refused(small, scheme):
    """Finding 11: only the host:port of Origin was compared."""
    with hostile.connect(small.port) as sock:
        sock.sendall(hostile.upgrade_request(small.port, origin=f"{scheme}://127.0.0.1:{small.port}"))
        assert hostile.read_head(sock)[0] == 403


def test_same_origin_is_accepted(small):
    with hostile.connect(small.port) as sock:
        sock.sendall(hostile.upgrade_request(small.port, origin=f"http://127.0.0.1:{small.port}"))
        assert hostile.read_head(sock)[0] == 101


@pytest.mark.parametrize("host", ["rebind.example.com", "192.168.1.10", "127.0.0.1.nip.io"])
def test_a_loopback_server_refuses_other_host_names(small, host):
    """Finding 11 (DNS rebinding): a page on another site whose name resolves to 127.0.0.1."""
    assert http(small.port, "/healthz", host=f"{host}:{small.port}")[0] == 403
    assert http(small.port, "/", host=f"{host}:{small.port}")[0] == 403


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "app.localhost"])
def test_a_loopback_server_serves_loopback_names(small, host):
    assert http(small.port, "/healthz", host=f"{host}:{small.port}")[0] == 200


@pytest.mark.parametrize(("key", "version"), [(None, "13"), ("auto", None), ("not-a-key", "13"), ("auto", "8")])
def test_an_upgrade_without_a_valid_key_or_version_is_a_client_error(small, key, version):
    """Finding 11: a missing Sec-WebSocket-Key or -Version got a 500 and a traceback."""
    with hostile.connect(small.port) as sock:
        sock.sendall(hostile.upgrade_request(small.port, key=key, version=version))
        assert hostile.read_head(sock)[0] in (400, 426)


def test_malformed_and_oversized_requests_are_answered_plainly(small):
    with hostile.connect(small.port) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert hostile.read_head(sock)[0] == 400
    with hostile.connect(small.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 64 * 1024 + b"\r\n\r\n")
        assert hostile.read_head(sock)[0] in (400, 431)
    with hostile.connect(small.port) as sock:
        sock.sendall(b"POST /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\n")
        assert hostile.read_head(sock)[0] == 413
    assert_serving(small)
