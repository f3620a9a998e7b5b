"""Which credential the bridge presents to Voice Live.

Order: AZURE_VOICE_LIVE_API_KEY (local development) → a Key Vault secret read with the app's identity →
keyless Entra ID through that identity. The built-in emulator takes any key. Only the source is ever
logged, never a value.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from azure.core.credentials import AzureKeyCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)

from .settings import Settings

log = logging.getLogger("voicebridge.credentials")

Credential = AzureKeyCredential | AsyncTokenCredential
SECRETS_ROLE = "Key Vault Secrets User"
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


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


class UnusableProvider:
    """A configuration that can never authenticate: every session start reports why, in words."""

    def __init__(self, problem: str, source: str):
        self._problem = problem
        self.source = source

    async def get(self) -> Credential:
        raise CredentialError(self._problem)

    async def on_unauthorized(self) -> bool:
        return False

    async def close(self) -> None:
        return None


def identity_name(client_id: str | None) -> str:
    return f"the managed identity with client id {client_id}" if client_id else "the default identity"


def default_identity(client_id: str | None) -> AsyncTokenCredential:
    """DefaultAzureCredential; AZURE_CLIENT_ID selects the user-assigned managed identity."""
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)


class EntraIdProvider:
    """Keyless: an Entra ID token for the app's identity (needs Cognitive Services User on the account)."""

    def __init__(self, identity: AsyncTokenCredential, who: str):
        self._credential = identity
        self.source = f"Entra ID token for {who}"

    async def get(self) -> Credential:
        return self._credential

    async def on_unauthorized(self) -> bool:
        return False

    async def close(self) -> None:
        await self._credential.close()


class KeyVaultProvider:
    """The Voice Live key from a Key Vault secret; keyless Entra ID while that secret does not exist.

    The secret is read on first use (inside the bridge's event loop, where the async client lives) and
    again once after Voice Live answers 401, so a rotated key is picked up without a restart.
    """

    def __init__(self, settings: Settings, identity: AsyncTokenCredential, **client_options: Any):
        assert settings.key_vault_endpoint
        self._vault = settings.key_vault_endpoint
        self._name = settings.key_vault_secret_name
        self._who = identity_name(settings.client_id)
        self._identity = identity
        self._timeout = settings.connect_timeout_s
        # A vault that does not answer must fail one session start within the connect timeout, not hang it.
        self._client_options = {"retry_total": 1, "connection_timeout": self._timeout, **client_options}
        self._client: Any = None
        self._key: AzureKeyCredential | None = None
        self._loaded = False
        self._changed_at = float("-inf")
        self._lock = asyncio.Lock()
        self.source = f"Key Vault secret '{self._name}' in {self._vault}, read as {self._who}"

    async def get(self) -> Credential:
        async with self._lock:
            if not self._loaded:
                await self._read()
        return self._key or self._identity

    async def on_unauthorized(self) -> bool:
        async with self._lock:
            if time.monotonic() - self._changed_at < self._timeout:
                # A handshake that began before the key just changed carried the old one: retrying helps,
                # and sessions rejected together share one re-read instead of hammering the vault.
                return True
            try:
                changed = await self._read()
            except CredentialError as exc:
                log.warning("event=credentials.reread_failed detail=%r", str(exc))
                return False
            if changed:
                self._changed_at = time.monotonic()
        log.info("event=credentials.reread changed=%s source=%r", changed, self.source)
        return changed

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        await self._identity.close()

    async def _read(self) -> bool:
        """Fetch the secret; True when the credential in use changed."""
        if self._client is None:
            from azure.keyvault.secrets.aio import SecretClient

            self._client = SecretClient(self._vault, self._identity, **self._client_options)
        try:
            async with asyncio.timeout(self._timeout):
                secret = await self._client.get_secret(self._name)
            value = secret.value or None
        except ResourceNotFoundError:
            value = None
        except (AzureError, TimeoutError) as exc:
            raise CredentialError(self._explain(exc)) from exc
        previous = self._key.key if self._key else None
        if value is None:
            self._key = None
            self.source = f"Entra ID token for {self._who} (no secret '{self._name}' in {self._vault})"
            if previous is not None or not self._loaded:
                log.warning(
                    "event=credentials.fallback vault=%s secret=%s detail=%r",
                    self._vault, self._name, "secret not found; using keyless Entra ID",
                )
        elif self._key is None:
            self._key = AzureKeyCredential(value)
            self.source = f"Key Vault secret '{self._name}' (version {secret.properties.version}) in {self._vault}"
        else:
            self._key.update(value)
            self.source = f"Key Vault secret '{self._name}' (version {secret.properties.version}) in {self._vault}"
        self._loaded = True
        return value != previous

    def _explain(self, exc: BaseException) -> str:
        where = f"Key Vault {self._vault} (secret '{self._name}')"
        grant = f"{self._who} needs the '{SECRETS_ROLE}' role on the vault"
        status = exc.status_code if isinstance(exc, HttpResponseError) else None
        if status == 403:
            return (
                f"{self._who} may not read {where} (HTTP 403 Forbidden): {grant}. "
                "Set AZURE_CLIENT_ID if the app should use a different user-assigned identity."
            )
        if isinstance(exc, ClientAuthenticationError):
            return (
                f"Could not authenticate to {where} as {self._who}: {_first_line(exc)}. "
                f"On Azure, assign the identity to the app and set AZURE_CLIENT_ID; {grant}."
            )
        if isinstance(exc, TimeoutError):
            detail = f"no answer within {self._timeout:g} s"
        else:
            detail = f"HTTP {status}" if status else _first_line(exc)
        return (
            f"Cannot reach {where}: {detail}. Check AZURE_KEY_VAULT_ENDPOINT and the network path to the vault; "
            f"once reachable, {grant}."
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def secret_name_for(settings: Settings, index: int) -> str:
    """The Key Vault secret holding the key of the endpoint at `index`: the configured name for the
    first, `<name>-2`, `<name>-3`… for the others (the names infra/ gives the extra regions' keys)."""
    return settings.key_vault_secret_name if index == 0 else f"{settings.key_vault_secret_name}-{index + 1}"


def build_provider(settings: Settings, emulator_key: str | None = None, index: int = 0) -> CredentialProvider:
    """The first usable source in the documented order, for the endpoint at `index` of
    AZURE_VOICE_LIVE_ENDPOINT; the caller logs `provider.source` at startup."""
    if emulator_key is not None:
        return StaticKeyProvider(emulator_key, "built-in emulator key")
    api_key = settings.api_key_for(index) if settings.api_key else None
    if api_key and api_key.startswith(KEY_VAULT_REFERENCE):
        # App Service leaves the reference text in place when it cannot resolve it; never send that as a key.
        return UnusableProvider(
            f"AZURE_VOICE_LIVE_API_KEY still holds the Key Vault reference {api_key}: App Service could not "
            f"resolve it. Give the app's keyVaultReferenceIdentity the '{SECRETS_ROLE}' role on the vault, or unset "
            "AZURE_VOICE_LIVE_API_KEY and set AZURE_KEY_VAULT_ENDPOINT so the app reads the secret itself.",
            "AZURE_VOICE_LIVE_API_KEY setting (unresolved Key Vault reference)",
        )
    if api_key:
        return StaticKeyProvider(api_key, "AZURE_VOICE_LIVE_API_KEY setting")
    if settings.key_vault_endpoint:
        named = settings.with_overrides(key_vault_secret_name=secret_name_for(settings, index))
        return KeyVaultProvider(named, default_identity(settings.client_id))
    return EntraIdProvider(default_identity(settings.client_id), identity_name(settings.client_id))
