"""The baseline: a minimal direct relay — one aiohttp server, one event loop, per tab one upstream socket.

It speaks only the browser contract's audio/audio.clear subset (plus the ready state the load waits
for), so the benchmark can show what any intermediary on this machine costs, and what the bridge adds
on top. Run as `python -m benchmarks.relay --port P --upstream ws://…/voice-live/realtime`.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import ClientSession, TCPConnector, WSMsgType, web

READY = json.dumps({"type": "state", "state": "ready"})
CLEAR = json.dumps({"type": "audio.clear"})
SESSION_UPDATE = json.dumps({"type": "session.update", "session": {"modalities": ["text", "audio"]}})


async def _downlink(tab: web.WebSocketResponse, upstream) -> None:
    responding = False
    async for message in upstream:
        if message.type != WSMsgType.TEXT:
            continue
        event = json.loads(message.data)
        kind = event.get("type")
        if kind == "response.audio.delta":
            await tab.send_str(
                json.dumps({"type": "audio", "data": event["delta"], "item_id": event["item_id"]})
            )
        elif kind == "input_audio_buffer.speech_started" and responding:
            await tab.send_str(CLEAR)
        elif kind == "response.created":
            responding = True
        elif kind == "response.done":
            responding = False
        elif kind == "session.updated":
            await tab.send_str(READY)


def make_app(upstream_url: str) -> web.Application:
    app = web.Application()

    async def client(app: web.Application):
        app["client"] = ClientSession(connector=TCPConnector(limit=0))
        yield
        await app["client"].close()

    async def tab(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        upstream = downlink = None
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                event = json.loads(message.data)
                kind = event.get("type")
                if kind == "audio" and upstream is not None:
                    await upstream.send_str(
                        json.dumps({"type": "input_audio_buffer.append", "audio": event["data"]})
                    )
                elif kind == "session.start" and upstream is None:
                    upstream = await app["client"].ws_connect(upstream_url, max_msg_size=4 << 20)
                    downlink = asyncio.create_task(_downlink(ws, upstream))
                    await upstream.send_str(SESSION_UPDATE)
        finally:
            if downlink is not None:
                downlink.cancel()
            if upstream is not None:
                await upstream.close()
        return ws

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.cleanup_ctx.append(client)
    app.router.add_get("/ws", tab)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.relay")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the probe's ws://…/voice-live/realtime URL")
    args = parser.parse_args()
    web.run_app(make_app(args.upstream), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
