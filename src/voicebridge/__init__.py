"""voicebridge: talk to an Azure AI Voice Live agent from a browser."""

__version__ = "0.1.0"
