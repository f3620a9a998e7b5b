"""A browser tab's session, in small rooms: see core.py for the whole and each module for its part.

- core: `BridgeSession`, the tab's frames in and what the bridge asks of it
- supervisor: connect, reconnect and stop (`Lifecycle`)
- run: one start-to-end run, built whole and dropped at its end
- events: Voice Live's server events -> tab states, audio, transcripts
- bargein, turns: interrupting the assistant, and the bookkeeping it needs
- transcripts: transcripts to the tab and the conversation history
- tab, uplink, connection, machine: the two sockets and the tab-visible state
"""

from .core import BridgeSession
from .machine import StateMachine
from .supervisor import Refusal, SessionHost, SessionOptions

__all__ = ["BridgeSession", "Refusal", "SessionHost", "SessionOptions", "StateMachine"]
