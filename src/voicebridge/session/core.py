"""One browser tab's session: its frames in, its lifecycle, and what it owns.

The tab's socket (runtime.TabConnection) calls `on_frame` and `on_closed`; `Bridge` calls `drain` and
`close`, and reads `closed`. The session knows the process only as its `SessionHost`. Everything runs
on the bridge's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from .. import protocol
from ..protocol import Audio, ErrorCode, Playback, ProtocolError, Start, State, Stop, Text
from ..tasks import TaskOwner
from .run import Run
from .supervisor import Lifecycle, SessionHost, Supervisor
from .tab import TabChannel, TabLink

log = logging.getLogger("voicebridge.session")

# After the run has ended, what is left (a truncate waiting for a report) needs no longer than this.
TASKS_END_S = 1.0


class BridgeSession:
    def __init__(self, channel: TabChannel, host: SessionHost):
        self.id = secrets.token_hex(6)
        self.tab = TabLink(channel, self.id)
        self.tasks = TaskOwner(f"session-{self.id}")
        self.stats = {"chunks_up": 0, "chunks_down": 0, "dropped_up": 0, "barge_ins": 0, "bad_frames": 0}
        self._host = host
        self._told: set[ErrorCode] = set()  # notices a tab gets once, not once per frame

        def new_run() -> Run:
            options = host.options
            return Run(self.id, self.tab, self.tasks, self.stats, options.record_transcripts, options.toolbox)

        self.supervisor = Supervisor(self.id, self.tab, self.tasks, host, new_run, self.stats)

    @property
    def closed(self) -> asyncio.Event:
        """Set while this tab has no upstream session open."""
        return self.supervisor.closed

    @property
    def run(self) -> Run:
        return self.supervisor.run

    # --- the tab's socket (runtime.TabHandler) ---------------------------------------------------

    def on_frame(self, frame: str | bytes) -> None:
        try:
            message = protocol.parse(frame)
        except ProtocolError as exc:
            self.stats["bad_frames"] += 1
            if self.stats["bad_frames"] == 1:
                log.info("event=tab.bad_frame session=%s code=%s", self.id, exc.code)
            self.tab.send(protocol.error(exc.code, exc.message))
            return
        if isinstance(message, Audio):
            self._audio(message)
        elif isinstance(message, Playback):
            self.run.playback(message)
        elif isinstance(message, Start):
            self.supervisor.start()
        elif isinstance(message, Stop):
            self.supervisor.stop("tab_stop")
        elif isinstance(message, Text):
            self._text(message)

    def on_closed(self) -> None:
        self.supervisor.tab_closed()
        self._host.forget(self)

    def _audio(self, message: Audio) -> None:
        run = self.run
        if run.accepts_audio():
            run.audio(message)
            return
        self.stats["dropped_up"] += 1
        if self.supervisor.lifecycle is Lifecycle.IDLE and ErrorCode.NOT_STARTED not in self._told:
            self._told.add(ErrorCode.NOT_STARTED)
            run.status.error(ErrorCode.NOT_STARTED, "Audio arrived before the session was started; send session.start first.")

    def _text(self, message: Text) -> None:
        run = self.run
        if run.accepts_audio():
            run.text(message)
        else:  # unlike audio, a typed turn is deliberate: every lost one is answered
            run.status.error(ErrorCode.NOT_STARTED, "The session is not ready for typed text yet; wait for it to be ready.")

    # --- what the bridge asks ---------------------------------------------------------------------

    def drain(self) -> None:
        """The process is going away: tell the tab to reconnect elsewhere, end the run, close the tab."""
        self.tab.send(protocol.state(State.RECONNECTING))
        self.supervisor.stop("drain")
        self.tab.close(protocol.CloseCode.SERVICE_RESTART, "service restart")

    async def close(self, timeout: float) -> bool:
        """Stop, let the run close its upstream, then end (bounded) whatever task of this session is left."""
        self.supervisor.stop("shutdown")
        try:
            async with asyncio.timeout(timeout):
                await self.closed.wait()
        except TimeoutError:
            pass
        return await self.tasks.close(TASKS_END_S)
