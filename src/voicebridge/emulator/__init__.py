"""A built-in Azure AI Voice Live emulator speaking the real wire protocol (see docs/emulator.md)."""

from .records import EmulatorConfig, SessionRecord
from .server import Emulator

__all__ = ["Emulator", "EmulatorConfig", "SessionRecord"]
