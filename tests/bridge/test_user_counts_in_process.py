"""The instance-wide per-user count is published before the tab hears `stopped` (issue 13 × 21): a person
who presses Stop and, seeing `stopped`, starts again in another tab that a sibling worker serves must be
admitted. In-process, so the order is seen on the bridge's own loop, not guessed from timing."""

from __future__ import annotations

import tempfile

from support.inprocess import serve
from support.tab import Tab
from voicebridge.app import create_app
from voicebridge.balance import UserBoard
from voicebridge.bridge import Siblings
from voicebridge.handoff import Handoff
from voicebridge.protocol import State
from voicebridge.settings import Settings


class WatchedBoard(UserBoard):
    """The siblings' per-user counts, noting what the tab had been told whenever this worker publishes."""

    def __init__(self) -> None:
        super().__init__(2)
        self.published: list[tuple[int, str | None]] = []
        self.bridge = None

    def publish(self, slot: int, bucket: int, count: int) -> None:
        super().publish(slot, bucket, count)
        sessions = list(self.bridge.sessions.values()) if self.bridge is not None else []
        told = sessions[0].supervisor.run.status.state if sessions else None
        self.published.append((count, told))


def test_a_stopped_session_frees_its_place_for_the_siblings_before_the_tab_hears_stopped(request, emulator):
    board = WatchedBoard()
    siblings = Siblings(slot=0, users=board, handoff=Handoff(tempfile.mkdtemp(prefix="vb-handoff-"), 0))
    settings = Settings(endpoint=f"http://127.0.0.1:{emulator.port}", api_key="test-key", max_sessions_per_address=2)
    app = create_app(settings, siblings=siblings)
    bridge = board.bridge = app.extensions["voicebridge"]
    tab = Tab(serve(request, app))
    request.addfinalizer(tab.close)
    tab.start()
    tab.wait_state("ready")
    assert board.published[-1][0] == 1
    mark = tab.mark()
    tab.stop()
    tab.wait_state("stopped", start=mark)

    async def freed():  # read on the loop that writes it
        return [told for count, told in board.published if count == 0]

    assert bridge.runtime.run(freed(), timeout=5) == [State.READY], "freed while the tab still saw ready"
