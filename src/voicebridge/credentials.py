"""Which credential the bridge presents to Voice Live.

Order: AZURE_VOICE_LIVE_API_KEY (local development) → a Key Vault secret (managed identity) →
keyless Entra ID through the managed identity. The built-in emulator takes any key.
"""

from __future__ import annotations

import logging
from typing import Protocol

from azure.core.credentials import AzureKeyCredential
from azure.core.credentials_async import AsyncTokenCredential

from .settings import Settings

log = logging.getLogger("voicebridge.credentials")

Credential = AzureKeyCredential | AsyncTokenCredential


class CredentialError(Exception):
    """No usable credential; the message is for a person (names the vault, identity and missing role)."""


class CredentialProvider(Protocol):
    source: str

    async def get(self) -> Credential: ...

    async def on_unauthorized(self) -> bool:
        """The service answered 401: refresh what can be refreshed; True when a retry may help."""
        ...

    async def close(self) -> None: ...


class StaticKeyProvider:
    def __init__(self, key: str, source: str):
        self._credential = AzureKeyCredential(key)
        self.source = source

    async def get(self) -> Credential:
        return self._credential

    async def on_unauthorized(self) -> bool:
        return False

    async def close(self) -> None:
        return None


class EntraIdProvider:
    """Keyless: a token from DefaultAzureCredential (honours AZURE_CLIENT_ID for a user-assigned identity)."""

    def __init__(self, client_id: str | None):
        from azure.identity.aio import DefaultAzureCredential

        kwargs = {"managed_identity_client_id": client_id} if client_id else {}
        self._credential = DefaultAzureCredential(**kwargs)
        self.source = "Entra ID token (managed identity / DefaultAzureCredential)"

    async def get(self) -> Credential:
        return self._credential

    async def on_unauthorized(self) -> bool:
        return False

    async def close(self) -> None:
        await self._credential.close()


def build_provider(settings: Settings, emulator_key: str | None = None) -> CredentialProvider:
    if emulator_key is not None:
        return StaticKeyProvider(emulator_key, "built-in emulator key")
    if settings.api_key:
        return StaticKeyProvider(settings.api_key, "AZURE_VOICE_LIVE_API_KEY setting")
    return EntraIdProvider(settings.client_id)
