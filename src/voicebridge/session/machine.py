"""The tab-visible state, driven by upstream events. Pure: each method returns the new state or None."""

from __future__ import annotations

from ..protocol import ACTIVE_STATES, State


class StateMachine:
    def __init__(self) -> None:
        self.state = State.IDLE

    def _to(self, new: State) -> State | None:
        if new == self.state:
            return None
        self.state = new
        return new

    def connecting(self, reconnect: bool) -> State | None:
        return self._to(State.RECONNECTING if reconnect else State.CONNECTING)

    def session_updated(self) -> State | None:
        return self._to(State.READY) if self.state in (State.CONNECTING, State.RECONNECTING) else None

    def speech_started(self) -> State | None:
        return self._to(State.LISTENING) if self.state in ACTIVE_STATES else None

    def speech_stopped(self) -> State | None:
        return self._to(State.PROCESSING) if self.state in ACTIVE_STATES else None

    def audio_delta(self) -> State | None:
        return self._to(State.SPEAKING) if self.state in ACTIVE_STATES else None

    def response_finished(self) -> State | None:
        return self._to(State.READY) if self.state in (State.SPEAKING, State.PROCESSING) else None

    def stopped(self) -> State | None:
        return self._to(State.STOPPED)

    def failed(self) -> State | None:
        return self._to(State.ERROR)
