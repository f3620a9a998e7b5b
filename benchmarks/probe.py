"""The probe upstream: just enough Voice Live for the bridge's SDK and the baseline relay, plus stopwatches.

It stamps nothing it receives: every uplink chunk already carries its send time (see wire.py), so the
probe records one-way uplink latency and arrival order per tab. Per session it plays an assistant turn
every TURN_PERIOD_S: speech_started → speech_stopped → response.created → 100 ms audio deltas paced in
real time (stamped like the uplink) → response.audio.done → response.done; every BARGE_IN_EVERY-th turn
(starting with the first) a speech_started arrives mid-reply carrying its send stamp (a barge-in), then response.done cancelled.

Run as `python -m benchmarks.probe`; prints `PORT <n>`, serves until SIGTERM.
GET /stats returns everything recorded; GET /received the number of uplink chunks so far.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time

from aiohttp import WSMsgType, web

from .wire import DOWNLINK_BYTES, Sequence, chunk, read_stamp

TURN_PERIOD_S = 4.0
USER_SPEECH_S = 0.3
REPLY_DELTAS = 15  # 1.5 s of assistant audio
DELTA_PERIOD_S = 0.1
BARGE_IN_EVERY = 3
BARGE_IN_AT_DELTA = 7


class TabRecord:
    __slots__ = ("up_latency_ns", "up_order", "down_sent_ns", "barge_in_ns")

    def __init__(self) -> None:
        self.up_latency_ns: list[int] = []
        self.up_order = Sequence()
        self.down_sent_ns: list[int] = []  # index = downlink sequence number
        self.barge_in_ns: list[int] = []

    def summary(self) -> dict:
        return {
            "up_latency_ns": self.up_latency_ns,
            "up_distinct": len(self.up_order.seen),
            "up_reordered": self.up_order.reordered,
            "down_sent_ns": self.down_sent_ns,
            "barge_in_ns": self.barge_in_ns,
        }


async def _send(ws: web.WebSocketResponse, event: dict) -> None:
    await ws.send_str(json.dumps(event))


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))


class Probe:
    def __init__(self) -> None:
        self.tabs: dict[int, TabRecord] = {}
        self.received = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/voice-live/realtime", self.realtime)
        app.router.add_get("/stats", self.stats)
        app.router.add_get("/received", self.count)
        return app

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({str(tab): record.summary() for tab, record in self.tabs.items()})

    async def count(self, request: web.Request) -> web.Response:
        return web.json_response(self.received)

    async def realtime(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=8 << 20)
        await ws.prepare(request)
        await _send(ws, {"type": "session.created", "session": {"id": f"sess_{id(ws):x}"}})
        turns: asyncio.Task | None = None
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                arrived = time.monotonic_ns()
                event = json.loads(message.data)
                kind = event.get("type")
                if kind == "input_audio_buffer.append":
                    tab, seq, sent = read_stamp(event["audio"])
                    record = self.tabs.setdefault(tab, TabRecord())
                    record.up_latency_ns.append(arrived - sent)
                    record.up_order.add(seq)
                    self.received += 1
                    if turns is None:  # turns start with the tab's stream, not with its handshake
                        turns = asyncio.create_task(self._turns(ws, tab, record))
                elif kind == "session.update":
                    await _send(ws, {"type": "session.updated", "session": event.get("session") or {}})
                # response.cancel and conversation.item.truncate are accepted without a word.
        finally:
            if turns is not None:
                turns.cancel()
        return ws

    async def _turns(self, ws: web.WebSocketResponse, tab: int, record: TabRecord) -> None:
        loop = asyncio.get_running_loop()
        # Spread the tabs' turns over the period so the load is steady, as with real users.
        first = loop.time() + 0.2 + (tab * 0.618 % 1.0) * TURN_PERIOD_S
        turn = 0
        while not ws.closed:
            start = first + turn * TURN_PERIOD_S
            await _sleep_until(start)
            ids = {
                "user": f"item_u{tab}_{turn}",
                "item": f"item_a{tab}_{turn}",
                "response": f"resp_{tab}_{turn}",
            }
            await _send(
                ws, {"type": "input_audio_buffer.speech_started", "item_id": ids["user"], "audio_start_ms": 0}
            )
            await _sleep_until(start + USER_SPEECH_S)
            await _send(
                ws, {"type": "input_audio_buffer.speech_stopped", "item_id": ids["user"], "audio_end_ms": 300}
            )
            await _send(
                ws, {"type": "response.created", "response": {"id": ids["response"], "status": "in_progress"}}
            )
            barge_in = turn % BARGE_IN_EVERY == 0  # the first turn too, so short runs see barge-ins
            await self._reply(ws, tab, record, ids, start + USER_SPEECH_S, barge_in)
            turn += 1

    async def _reply(self, ws, tab: int, record: TabRecord, ids: dict, start: float, barge_in: bool) -> None:
        ref = {"response_id": ids["response"], "item_id": ids["item"], "output_index": 0, "content_index": 0}
        for k in range(REPLY_DELTAS):
            await _sleep_until(start + k * DELTA_PERIOD_S)
            if barge_in and k == BARGE_IN_AT_DELTA:
                stamp = time.monotonic_ns()
                record.barge_in_ns.append(stamp)
                await _send(
                    ws,
                    {
                        "type": "input_audio_buffer.speech_started",
                        "item_id": ids["user"] + "b",
                        "audio_start_ms": 0,
                        "bench_sent_ns": stamp,
                    },
                )
                await _send(
                    ws,
                    {
                        "type": "response.done",
                        "response": {
                            "id": ids["response"],
                            "status": "cancelled",
                            "status_details": {"reason": "turn_detected"},
                        },
                    },
                )
                return
            seq = len(record.down_sent_ns)
            record.down_sent_ns.append(time.monotonic_ns())
            await _send(ws, {"type": "response.audio.delta", **ref, "delta": chunk(tab, seq, DOWNLINK_BYTES)})
        await _send(ws, {"type": "response.audio.done", **ref})
        await _send(ws, {"type": "response.done", "response": {"id": ids["response"], "status": "completed"}})


async def _serve(host: str, port: int) -> None:
    runner = web.AppRunner(Probe().app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.probe")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
