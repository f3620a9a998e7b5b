"""`python -m voicebridge smoke URL`: one real session through the page's own WebSocket.

It is the deploy gate. /healthz only proves the process is up; a session that reaches `ready` also proves
the platform's front end passes WebSockets and the app reaches Voice Live with its identity.
Exit status: 0 passed, 1 the app reported an error or broke the session, 2 unreachable or unhealthy
(including a rejected WebSocket handshake), 3 timed out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

import aiohttp

from .protocol import ClientType, ErrorCode, ServerType, State

PASSED, FAILED, UNREACHABLE, TIMED_OUT = 0, 1, 2, 3

# How long to wait for the error message that explains a `state: error` before reporting the bare state.
ERROR_DETAIL_WAIT_S = 2.0

# Codes whose message alone would not tell an operator where to look.
EXPLANATIONS = {
    ErrorCode.UPSTREAM_AUTH: "Voice Live rejected the app's credentials",
    ErrorCode.UPSTREAM_UNAVAILABLE: "the app cannot connect to Voice Live",
    ErrorCode.UPSTREAM_TIMEOUT: "Voice Live did not answer the app in time",
    ErrorCode.UPSTREAM_LOST: "the app lost Voice Live and gave up reconnecting",
    ErrorCode.UPSTREAM_ERROR: "Voice Live reported an error",
    ErrorCode.TOO_MANY_SESSIONS: "the app is at its session limit",
    ErrorCode.SERVER_DRAINING: "the app is shutting down",
}


class SmokeFailure(Exception):
    def __init__(self, exit_code: int, reason: str):
        super().__init__(reason)
        self.exit_code = exit_code


def describe_error(event: dict) -> str:
    code = str(event.get("code") or "unknown")
    message = str(event.get("message") or "no message")
    lead = EXPLANATIONS.get(code)
    detail = f"{code}, upstream {event['upstream_code']}" if event.get("upstream_code") else code
    # The bridge's own wording may already lead with the explanation.
    if lead and not message.lower().startswith(lead.lower()):
        message = f"{lead}: {message}"
    return f"{message} [{detail}]"


class Smoke:
    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SmokeFailure(UNREACHABLE, f"not an http(s) URL: {url!r}")
        # The page opens /ws on its own origin, and the bridge checks the Origin header like a browser's.
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.ws_url = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}/ws"
        self.step = "connecting"

    async def run(self) -> None:
        async with aiohttp.ClientSession() as http:
            await self.check_health(http)
            self.step = "opening the WebSocket"
            try:
                ws = await http.ws_connect(self.ws_url, origin=self.origin)
            except aiohttp.WSServerHandshakeError as exc:
                raise SmokeFailure(
                    UNREACHABLE, f"WebSocket handshake to {self.ws_url} refused: HTTP {exc.status} {exc.message}"
                ) from exc
            except aiohttp.ClientError as exc:
                raise SmokeFailure(UNREACHABLE, f"cannot open {self.ws_url}: {exc}") from exc
            async with ws:
                await ws.send_json({"type": ClientType.SESSION_START})
                await self.wait_for_state(ws, State.READY)
                await ws.send_json({"type": ClientType.SESSION_STOP})
                await self.wait_for_state(ws, State.STOPPED)

    async def check_health(self, http: aiohttp.ClientSession) -> None:
        url = f"{self.origin}/healthz"
        self.step = f"GET {url}"
        try:
            async with http.get(url) as response:
                if response.status != 200:
                    body = " ".join((await response.text()).split())[:200]
                    raise SmokeFailure(
                        UNREACHABLE, f"GET {url} answered HTTP {response.status} {response.reason}: {body}"
                    )
        except aiohttp.ClientError as exc:
            raise SmokeFailure(UNREACHABLE, f"cannot reach {url}: {exc}") from exc

    async def wait_for_state(self, ws: aiohttp.ClientWebSocketResponse, wanted: State) -> None:
        self.step = f"waiting for state {wanted}"
        async for event in self.events(ws):
            if event.get("type") != ServerType.STATE:
                continue
            state = event.get("state")
            if state == wanted:
                return
            if state == State.ERROR:
                raise SmokeFailure(FAILED, await self.explain_error_state(ws))
            if state == State.STOPPED:
                raise SmokeFailure(FAILED, f"the session stopped while {self.step}")
        raise SmokeFailure(FAILED, f"the app closed the WebSocket (code {ws.close_code}) while {self.step}")

    async def explain_error_state(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """The bridge may send `state: error` just before the error message that says why."""
        try:
            async with asyncio.timeout(ERROR_DETAIL_WAIT_S):
                async for _event in self.events(ws):
                    pass
        except TimeoutError:
            pass
        return f"the session went to state error while {self.step}"

    async def events(self, ws: aiohttp.ClientWebSocketResponse):
        """JSON messages from the app; an `error` message ends the smoke test with its reason."""
        async for message in ws:
            if message.type == aiohttp.WSMsgType.ERROR:
                raise SmokeFailure(FAILED, f"WebSocket failed while {self.step}: {ws.exception()}")
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                event = json.loads(message.data)
            except ValueError as exc:
                raise SmokeFailure(FAILED, f"the app sent something that is not JSON: {message.data[:100]!r}") from exc
            if event.get("type") == ServerType.ERROR:
                raise SmokeFailure(FAILED, describe_error(event))
            yield event


async def smoke(url: str, timeout: float) -> None:
    probe = Smoke(url)
    try:
        async with asyncio.timeout(timeout):
            await probe.run()
    except TimeoutError as exc:
        raise SmokeFailure(TIMED_OUT, f"timed out after {timeout:g}s {probe.step}") from exc


def positive_seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="voicebridge smoke",
        description="Check a running voicebridge: /healthz, then one session start → ready → stop "
        "through the page's WebSocket. Exit 0 passed, 1 app/Voice Live error, 2 unreachable, 3 timeout.",
    )
    parser.add_argument("url", help="the app's address, e.g. https://app-xyz.azurewebsites.net")
    parser.add_argument("--timeout", type=positive_seconds, default=30.0, help="overall limit in seconds (30)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        asyncio.run(smoke(args.url, args.timeout))
    except SmokeFailure as failure:
        print(f"smoke FAILED for {args.url}: {failure}", file=sys.stderr)
        return failure.exit_code
    print(f"smoke OK: {args.url} healthy, session ready and stopped in {time.monotonic() - started:.1f}s")
    return PASSED
