"""A browser tab's session, in small rooms: see core.py for the whole and each module for its part.

- core: `BridgeSession`, the tab's frames in and what the bridge asks of it
- supervisor: start, stop, park and resume (`Lifecycle`); host: what a session knows of the process
- runloop: connect, configure, replay the conversation, relay, reconnect
- run: one start-to-end run, built whole and dropped at its end
- limits: what a run may cost (time, idle, uplink audio rate); per-user admission is Bridge.admit's
- replay: the conversation so far into a new upstream session
- events: Voice Live's server events -> tab states, audio, transcripts
- bargein, turns: interrupting the assistant, and the bookkeeping it needs
- transcripts: transcripts to the tab and the conversation history
- tab, uplink, connection, machine: the two sockets and the tab-visible state
"""

from .core import BridgeSession
from .host import Refusal, SessionHost, SessionOptions
from .machine import StateMachine

__all__ = ["BridgeSession", "Refusal", "SessionHost", "SessionOptions", "StateMachine"]
