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
        return explain_vault_error(exc, self._vault, self._name, self._who, self._timeout)


class VaultSecrets:
    """Named Key Vault secrets other than the Voice Live key (an MCP server's header values, mcp.py), read
    with the app's identity on first use and again after `max_age_s`, so a rotated token is picked up
    without a restart. A read that fails raises CredentialError naming the vault, secret and role."""

    def __init__(self, settings: Settings, identity: AsyncTokenCredential | None = None, max_age_s: float = 300.0,
                 **client_options: Any):
        assert settings.key_vault_endpoint
        self._vault = settings.key_vault_endpoint
        self._who = identity_name(settings.client_id)
        self._identity = identity
        self._client_id = settings.client_id
        self._timeout = settings.connect_timeout_s
        self._max_age = max_age_s
        self._client_options = {"retry_total": 1, "connection_timeout": self._timeout, **client_options}
        self._client: Any = None
        self._values: dict[str, tuple[str, float]] = {}  # name -> (value, read at)
        self._lock = asyncio.Lock()

    async def get(self, name: str) -> str:
        async with self._lock:
            cached = self._values.get(name)
            if cached is not None and time.monotonic() - cached[1] < self._max_age:
                return cached[0]
            value = await self._read(name)
            self._values[name] = (value, time.monotonic())
            return value

    async def _read(self, name: str) -> str:
        if self._client is None:
            from azure.keyvault.secrets.aio import SecretClient

            if self._identity is None:
                self._identity = default_identity(self._client_id)
            self._client = SecretClient(self._vault, self._identity, **self._client_options)
        try:
            async with asyncio.timeout(self._timeout):
                secret = await self._client.get_secret(name)
        except ResourceNotFoundError:
            raise CredentialError(
                f"Key Vault {self._vault} has no secret '{name}' (an MCP server header names it): "
                f"create it with az keyvault secret set --vault-name <vault> --name {name} --value <value>."
            ) from None
        except (AzureError, TimeoutError) as exc:
            raise CredentialError(explain_vault_error(exc, self._vault, name, self._who, self._timeout)) from exc
        if not secret.value:
            raise CredentialError(f"The Key Vault secret '{name}' in {self._vault} is empty.")
        return secret.value

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._identity is not None:
            await self._identity.close()


def explain_vault_error(exc: BaseException, vault: str, name: str, who: str, timeout: float) -> str:
    where = f"Key Vault {vault} (secret '{name}')"
    grant = f"{who} needs the '{SECRETS_ROLE}' role on the vault"
    status = exc.status_code if isinstance(exc, HttpResponseError) else None
    if status == 403:
        return (
            f"{who} may not read {where} (HTTP 403 Forbidden): {grant}. "
            "Set AZURE_CLIENT_ID if the app should use a different user-assigned identity."
        )
    if isinstance(exc, ClientAuthenticationError):
        return (
            f"Could not authenticate to {where} as {who}: {_first_line(exc)}. "
            f"On Azure, assign the identity to the app and set AZURE_CLIENT_ID; {grant}."
        )
    if isinstance(exc, TimeoutError):
        detail = f"no answer within {timeout:g} s"
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
