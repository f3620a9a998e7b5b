"""The I/O layer in process, against a fake transport (support/fake_transport.py), as websockets tests its
own Connection: each piece's rule checked where it is made, so a regression names the piece instead of
showing up end to end as "no matching message" (issue 21). Every wait is bounded (asyncio.timeout)."""

from __future__ import annotations

import array
import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import Coroutine
from typing import Any

import pytest
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side

from support.fake_transport import FakeTransport
from support.hostile import CONT, PING, TEXT, frame
from voicebridge.balance import UserBoard
from voicebridge.front import Front, FrontLimits, HttpConnection
from voicebridge.handoff import Handoff
from voicebridge.resume import ResumeTokens
from voicebridge.runtime import (
    MAX_FRAGMENTS,
    MAX_WRITE_BUFFER,
    READ_STEP,
    PacedReader,
    Reassembly,
    TabConnection,
    TabLimits,
)

DEADLINE_S = 5.0


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(DEADLINE_S):
            return await coro
    return asyncio.run(bounded())


async def turns(n: int = 1) -> None:
    """Let the loop run n iterations (what call_soon schedules runs in the next)."""
    for _ in range(n):
        await asyncio.sleep(0)


class Handler:
    """What a session is to its TabConnection (runtime.TabHandler)."""

    def __init__(self, has_session: bool = True):
        self.frames: list[str | bytes] = []
        self.released = 0
        self.gone = asyncio.Event()
        self.no_upstream = asyncio.Event()  # set while the tab holds no upstream session
        if not has_session:
            self.no_upstream.set()

    def on_frame(self, data: str | bytes) -> None:
        self.frames.append(data)

    def on_closed(self) -> None:
        self.released += 1
        self.gone.set()


def server_frames(data: bytes) -> list[Any]:
    """The frames the server wrote, parsed as a client parses them (unmasked)."""
    client = Protocol(Side.CLIENT)
    client.receive_data(data)
    return client.events_received()


def open_tab(handler: Handler | None = None, limits: TabLimits | None = None, replay: list[str] | None = None):
    handler = handler or Handler()
    tab = TabConnection(lambda channel: handler, limits, replay=replay)
    transport = FakeTransport(asyncio.get_running_loop(), tab)
    tab.connection_made(transport)
    return tab, transport, handler


# Reassembly --------------------------------------------------------------------------------------------

class Frame:
    def __init__(self, opcode: Opcode, data: bytes, fin: bool = True):
        self.opcode, self.data, self.fin = opcode, data, fin


def test_reassembly_makes_a_message_of_its_frames_and_bounds_their_number():
    parts = Reassembly()
    assert parts.add(Frame(Opcode.TEXT, b"whole")) == (Opcode.TEXT, b"whole")
    assert parts.add(Frame(Opcode.TEXT, b"he", fin=False)) is None
    assert parts.add(Frame(Opcode.CONT, b"ll", fin=False)) is None
    assert parts.add(Frame(Opcode.CONT, b"o")) == (Opcode.TEXT, b"hello")
    assert parts.add(Frame(Opcode.CONT, b"stray")) is None  # a continuation of nothing
    parts.add(Frame(Opcode.BINARY, b"", fin=False))
    for _ in range(MAX_FRAGMENTS - 1):
        parts.add(Frame(Opcode.CONT, b"", fin=False))
    with pytest.raises(OverflowError):
        parts.add(Frame(Opcode.CONT, b"", fin=False))


# PacedReader -------------------------------------------------------------------------------------------

def test_a_flood_of_input_is_parsed_one_step_per_loop_iteration_with_reading_paused():
    async def main() -> None:
        processed: list[bytes] = []
        ended = []
        transport = FakeTransport(asyncio.get_running_loop())
        reader = PacedReader(transport, asyncio.get_running_loop(), processed.append, end_of_input=lambda: ended.append(True))
        reader.feed(b"small")
        assert processed == [b"small"] and transport.reading  # small input: at once, nothing paused
        flood = os.urandom(READ_STEP * 2 + 10)
        reader.feed(flood)
        assert processed == [b"small"] and not transport.reading and reader.busy
        assert reader.defer_eof(), "the end of input waits for the backlog"
        await turns()
        assert processed[1:] == [flood[:READ_STEP]]  # one step per iteration: the other tabs go between
        await turns(2)
        assert b"".join(processed[1:]) == flood and not reader.busy
        assert ended == [True] and not transport.reading  # the end came after the backlog, in order
    run(main())


def test_a_closing_transport_stops_the_reader_and_drops_the_backlog():
    async def main() -> None:
        processed: list[bytes] = []
        transport = FakeTransport(asyncio.get_running_loop())
        reader = PacedReader(transport, asyncio.get_running_loop(), processed.append, end_of_input=lambda: None)
        reader.feed(b"x" * (READ_STEP * 3))
        transport.close()
        await turns(3)
        assert processed == [] and not reader.busy
    run(main())


# TabConnection -----------------------------------------------------------------------------------------

def test_a_tab_gets_replayed_frames_first_then_whole_messages():
    async def main() -> None:
        tab, transport, handler = open_tab(replay=['{"type":"session.resume"}'])
        assert handler.frames == ['{"type":"session.resume"}']
        tab.data_received(frame(TEXT, b"hel", fin=False) + frame(CONT, b"lo"))
        tab.data_received(frame(TEXT, b"\xff\xfe"))  # not UTF-8: handed on as a non-text frame
        tab.data_received(frame(0x2, b"\x00\x01"))
        assert handler.frames[1:] == ["hello", b"", b"\x00\x01"]
        tab.send('{"type":"state"}')
        (sent,) = server_frames(transport.take())
        assert sent.opcode is Opcode.TEXT and sent.data == b'{"type":"state"}'
    run(main())


def test_a_ping_flood_is_refused_with_1008_and_the_session_released_once():
    async def main() -> None:
        tab, transport, handler = open_tab()
        tab.data_received(frame(PING, b"") * 65)
        frames = server_frames(transport.take())
        assert frames[-1].opcode is Opcode.CLOSE and frames[-1].data[:2] == (1008).to_bytes(2, "big")
        assert tab.refused and transport.closing and handler.released == 1
        await transport.lost.wait()
        assert handler.released == 1
    run(main())


def test_too_many_fragments_are_refused_with_1009():
    async def main() -> None:
        tab, transport, handler = open_tab()
        tab.data_received(frame(TEXT, b"", fin=False) + frame(CONT, b"", fin=False) * MAX_FRAGMENTS)
        close = server_frames(transport.take())[-1]
        assert close.opcode is Opcode.CLOSE and close.data[:2] == (1009).to_bytes(2, "big")
        assert tab.refused and handler.frames == []
    run(main())


def test_a_close_from_the_tab_is_answered_and_ends_its_session_but_leaves_it_resumable():
    async def main() -> None:
        tab, transport, handler = open_tab()
        tab.data_received(frame(0x8, (1001).to_bytes(2, "big")))
        close = server_frames(transport.take())[-1]
        assert close.opcode is Opcode.CLOSE and close.data[:2] == (1001).to_bytes(2, "big")
        assert handler.released == 1 and not tab.open and not tab.refused
        tab.send("after the close")
        assert transport.take() == b""  # nothing more may be sent
    run(main())


def test_a_tab_that_does_not_read_is_cut_off():
    async def main() -> None:
        tab, transport, handler = open_tab()
        transport.buffered = MAX_WRITE_BUFFER + 1
        tab.send("one more")
        assert transport.aborted and tab.refused and handler.released == 1
    run(main())


def test_a_handed_over_tab_lets_go_without_a_word_and_without_ending_its_session():
    async def main() -> None:
        mine, theirs = socket.socketpair()
        try:
            handler = Handler()
            tab = TabConnection(lambda channel: handler)
            transport = FakeTransport(asyncio.get_running_loop(), tab, sock=mine)
            tab.connection_made(transport)
            passed = []
            assert tab.hand_over(lambda sock: passed.append(sock) or True)
            assert passed == [mine] and transport.aborted and transport.take() == b""
            await transport.lost.wait()
            assert handler.released == 0, "its session lives on in the sibling"
            assert not TabConnection(lambda channel: handler).hand_over(lambda sock: True)  # not connected: no
        finally:
            mine.close()
            theirs.close()
    run(main())


# Keepalive ---------------------------------------------------------------------------------------------

def test_a_silent_tab_is_pinged_then_dropped_as_gone():
    async def main() -> None:
        tab, transport, handler = open_tab(limits=TabLimits(no_session_s=60, silence_s=0.3))
        await handler.gone.wait()
        frames = server_frames(transport.take())
        assert [f.opcode for f in frames] == [Opcode.PING] * len(frames) and frames, "pinged, no close frame"
        assert transport.aborted and tab.refused
    run(main())


def test_a_tab_that_answers_pings_but_holds_no_session_is_closed_going_away():
    async def main() -> None:
        handler = Handler(has_session=False)
        tab, transport, _ = open_tab(handler, limits=TabLimits(no_session_s=0.2, silence_s=60))
        await handler.gone.wait()
        close = server_frames(transport.take())[-1]
        assert close.opcode is Opcode.CLOSE and close.data[:2] == (1001).to_bytes(2, "big")
        assert not tab.refused  # not an abuse: the page may start again
    run(main())


def test_a_tab_with_a_session_is_not_closed_for_idleness():
    async def main() -> None:
        handler = Handler(has_session=True)
        tab, transport, _ = open_tab(handler, limits=TabLimits(no_session_s=0.1, silence_s=60))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):  # five idle limits: long enough for the rule to have acted
                await handler.gone.wait()
        assert tab.open and not transport.closing
    run(main())


# HttpConnection ----------------------------------------------------------------------------------------

def wsgi(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("the app failed")
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Peer", environ["REMOTE_ADDR"])])
    return [environ["PATH_INFO"].encode()]


def http_connection(limits: FrontLimits | None = None):
    front = Front(wsgi, asyncio.get_running_loop(), limits=limits or FrontLimits())
    conn = HttpConnection(front)
    transport = FakeTransport(asyncio.get_running_loop(), conn)
    conn.connection_made(transport)
    return front, conn, transport


def responses(data: bytes) -> list[bytes]:
    return [b"HTTP/1.1" + part for part in data.split(b"HTTP/1.1")[1:]]


def test_requests_are_answered_one_at_a_time_in_order_on_one_connection():
    async def main() -> None:
        front, conn, transport = http_connection()
        conn.data_received(b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n")
        assert not transport.reading and transport.take() == b""  # runs on a later iteration, reading paused
        await turns(2)
        one, two = responses(transport.take())
        assert one.startswith(b"HTTP/1.1 200") and one.endswith(b"/one") and b"x-peer: 192.0.2.7" in one.lower()
        assert two.endswith(b"/two") and transport.reading and not transport.closing
        assert front.http == {conn}
    run(main())


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"NOT HTTP\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", b"431"),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n", b"413"),
])
def test_a_request_the_app_never_sees_is_answered_plainly_and_closed(request_bytes, status):
    async def main() -> None:
        _, conn, transport = http_connection()
        conn.data_received(request_bytes)
        written = transport.take()
        assert written.startswith(b"HTTP/1.1 " + status) and transport.closing and not transport.aborted
    run(main())


def test_an_app_failure_is_a_500_and_the_connection_serves_on():
    async def main() -> None:
        _, conn, transport = http_connection()
        conn.data_received(b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n")
        await turns(2)
        assert transport.take().startswith(b"HTTP/1.1 500") and not transport.closing
    run(main())


def test_an_incomplete_request_is_dropped_at_its_deadline_without_a_reply():
    async def main() -> None:
        _, conn, transport = http_connection(FrontLimits(request_s=0.1, keepalive_s=0.1))
        conn.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n")  # slowloris: the head never ends
        await transport.lost.wait()
        assert transport.aborted and transport.take() == b""
    run(main())


def test_a_head_request_gets_the_length_without_a_body_and_draining_closes_after_the_response():
    async def main() -> None:
        front, conn, transport = http_connection()
        conn.data_received(b"HEAD /abc HTTP/1.1\r\nHost: a\r\n\r\n")
        front.drain()  # while the request waits for its turn
        await turns(2)
        written = transport.take()
        assert b"content-length: 4\r\n" in written.lower() and written.endswith(b"\r\n\r\n")
        assert b"connection: close" in written.lower() and transport.closing
    run(main())


def test_draining_closes_connections_waiting_for_a_request_at_once():
    async def main() -> None:
        front, conn, transport = http_connection()
        front.drain()
        assert transport.closing and not transport.aborted
    run(main())


# handoff -----------------------------------------------------------------------------------------------

@pytest.fixture
def handoff_dir():
    directory = tempfile.mkdtemp(prefix="vb-")  # short: a Unix socket path is at most ~100 bytes
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_a_socket_and_its_frames_reach_the_sibling_and_a_bad_message_is_dropped(handoff_dir):
    async def main() -> None:
        here, there = Handoff(handoff_dir, 0), Handoff(handoff_dir, 1)
        taken: asyncio.Queue = asyncio.Queue()
        there.listen(asyncio.get_running_loop(), lambda sock, message: taken.put_nowait((sock, message)))
        mine, peer = socket.socketpair()
        try:
            message = {"frames": ['{"type":"session.resume"}'], "user": ["address", "192.0.2.1", ""]}
            assert here.send(1, mine, message)
            sock, received = await taken.get()
            assert received == message
            sock.sendall(b"through the sibling's descriptor")
            assert peer.recv(100) == b"through the sibling's descriptor"
            sock.close()
            # No worker in slot 5: the tab starts afresh instead.
            assert not here.send(5, mine, message)
            # Too big to be a resume: refused before anything leaves.
            assert not here.send(1, mine, {"frames": ["x" * 70_000], "user": ["a", "b", ""]})
            # A malformed message (no user) with a descriptor: the descriptor is closed, nothing is taken.
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [mine.fileno()]))]
            raw.sendmsg([b'{"frames": []}'], rights, 0, os.path.join(handoff_dir, "worker-1.sock"))
            raw.close()
            await turns(5)
            assert taken.empty()
        finally:
            mine.close()
            peer.close()
            here.close()
            there.close()
        assert not os.path.exists(os.path.join(handoff_dir, "worker-0.sock"))
    run(main())


# resume ------------------------------------------------------------------------------------------------

class Parked:
    def __init__(self, session_id: str):
        self.id = session_id
        self.expired = asyncio.Event()

    def expire(self) -> None:
        self.expired.set()


def test_a_token_names_its_worker_is_single_use_and_replaced_at_each_issue():
    async def main() -> None:
        tokens = ResumeTokens(window_s=30, slot=1)
        session = Parked("s1")
        first = tokens.issue(session)
        assert first.startswith("1.") and len(first) > 40
        assert tokens.sibling_slot(first) is None, "this worker's own"
        assert tokens.sibling_slot("0." + first[2:]) == 0 and tokens.sibling_slot("x.y") is None
        second = tokens.issue(session)
        assert tokens.claim(first) is None, "replaced by the fresh one"
        assert tokens.claim(second, accept=lambda s: False) is None and len(tokens) == 1  # refused: still valid
        assert tokens.claim(second) is session and tokens.claim(second) is None and len(tokens) == 0
        assert ResumeTokens(window_s=0).issue(session) is None  # resume off
    run(main())


def test_a_parked_session_expires_after_the_window_unless_claimed():
    async def main() -> None:
        tokens = ResumeTokens(window_s=0.05)
        lost, kept = Parked("lost"), Parked("kept")
        tokens.issue(lost)
        token = tokens.issue(kept)
        assert tokens.park(lost) and tokens.park(kept)
        assert tokens.claim(token) is kept
        await lost.expired.wait()
        assert len(tokens) == 0 and not kept.expired.is_set()
        assert not tokens.park(Parked("never issued"))
    run(main())


# UserBoard ---------------------------------------------------------------------------------------------

def test_the_user_board_counts_other_workers_rows_across_fork_and_a_cleared_row_counts_nothing():
    board = UserBoard(3, buckets=1024)
    bucket = board.bucket("address\x00192.0.2.1")
    assert bucket == board.bucket("address\x00192.0.2.1") and 0 <= bucket < 1024
    pid = os.fork()
    if pid == 0:  # a sibling publishes from its own process
        board.publish(1, bucket, 2)
        board.publish(2, bucket, 40_000)  # clamped, never wraps negative
        os._exit(0)
    os.waitpid(pid, 0)
    board.publish(0, bucket, 5)
    assert board.elsewhere(0, bucket) == 2 + 32767 and board.elsewhere(1, bucket) == 5 + 32767
    board.clear(2)
    assert board.elsewhere(0, bucket) == 2
    board.publish(7, bucket, 1)  # no such slot: ignored
    assert board.elsewhere(0, bucket) == 2
