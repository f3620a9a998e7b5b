"""Credential order, Key Vault failure messages and the re-read after a 401.

Key Vault and Entra ID cannot be reached from here, so two stand-ins replace only the network edges:
`StandInVault` is an azure.core AsyncHttpTransport that answers the real SecretClient pipeline the way the
vault's REST API does (auth challenge, GET /secrets/{name}), and `FakeIdentity` is an AsyncTokenCredential
that hands out a dummy token. Everything between them (SecretClient, its challenge auth policy, the
provider) is the real code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest._http_response_impl_async import AsyncHttpResponseImpl
from azure.core.utils import CaseInsensitiveDict

from voicebridge.credentials import (
    CredentialError,
    EntraIdProvider,
    KeyVaultProvider,
    StaticKeyProvider,
    build_provider,
)
from voicebridge.settings import Settings

VAULT = "https://kv-voicebridge.vault.azure.net/"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"


class FakeIdentity(AsyncTokenCredential):
    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        if self.refuse:
            raise ClientAuthenticationError("ManagedIdentityCredential: no managed identity endpoint found")
        self.scopes.append(scopes)
        return AccessToken("dummy-token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None


class _Response(AsyncHttpResponseImpl):
    def __init__(self, request, status: int, body: dict | None = None, headers: dict | None = None):
        super().__init__(
            request=request,
            internal_response=None,
            status_code=status,
            reason={200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}[status],
            content_type="application/json",
            headers=CaseInsensitiveDict({"content-type": "application/json", **(headers or {})}),
            stream_download_generator=None,
        )
        self._content = json.dumps(body).encode() if body is not None else b""
        self._is_closed = True


class StandInVault(AsyncHttpTransport):
    """The vault's REST surface as the SecretClient sees it, without a network."""

    def __init__(self, secrets: dict[str, str] | None = None, status: int | None = None, unreachable: bool = False):
        self.secrets = dict(secrets or {})
        self.status = status
        self.unreachable = unreachable
        self.reads = 0
        self.version = 0

    async def send(self, request, **kwargs):
        if self.unreachable:
            raise ServiceRequestError("Cannot connect to host kv-voicebridge.vault.azure.net:443")
        if "Authorization" not in request.headers:
            challenge = 'Bearer authorization="https://login.microsoftonline.com/tenant", resource="https://vault.azure.net"'
            return _Response(request, 401, {"error": {"code": "Unauthorized"}}, {"WWW-Authenticate": challenge})
        if self.status:
            return _Response(request, self.status, {"error": {"code": "Forbidden", "message": "Caller is not authorized"}})
        name = re.search(r"/secrets/([^/?]+)", request.url).group(1)
        if name not in self.secrets:
            return _Response(request, 404, {"error": {"code": "SecretNotFound", "message": f"{name} not found"}})
        self.reads += 1
        body = {"value": self.secrets[name], "id": f"{VAULT}secrets/{name}/v{self.version}", "attributes": {"enabled": True}}
        return _Response(request, 200, body)

    def rotate(self, name: str, value: str) -> None:
        self.secrets[name] = value
        self.version += 1

    async def open(self):
        return None

    async def close(self):
        return None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *args):
        return None


def vault_settings(**overrides) -> Settings:
    return Settings(key_vault_endpoint=VAULT, connect_timeout_s=5.0).with_overrides(**overrides)


def provider_for(vault: StandInVault, identity: FakeIdentity | None = None, **overrides) -> KeyVaultProvider:
    return KeyVaultProvider(vault_settings(**overrides), identity or FakeIdentity(), transport=vault)


@pytest.mark.parametrize(
    ("settings", "emulator_key", "kind", "source"),
    [
        (vault_settings(api_key="dev-key"), "emu", StaticKeyProvider, "built-in emulator key"),
        (vault_settings(api_key="dev-key"), None, StaticKeyProvider, "AZURE_VOICE_LIVE_API_KEY"),
        (vault_settings(client_id=CLIENT_ID), None, KeyVaultProvider, f"{VAULT}, read as the managed identity with client id {CLIENT_ID}"),
        (Settings(client_id=CLIENT_ID), None, EntraIdProvider, f"Entra ID token for the managed identity with client id {CLIENT_ID}"),
        (Settings(), None, EntraIdProvider, "Entra ID token for the default identity"),
    ],
)
def test_credential_order(settings, emulator_key, kind, source):
    provider = build_provider(settings, emulator_key=emulator_key)
    try:
        assert isinstance(provider, kind)
        assert source in provider.source
        assert "dev-key" not in provider.source, "the source is logged at startup: it must never hold the value"
    finally:
        asyncio.run(provider.close())


def test_unresolved_app_service_key_vault_reference_is_never_sent_as_a_key():
    reference = f"@Microsoft.KeyVault(SecretUri={VAULT}secrets/voice-live-api-key/)"
    provider = build_provider(Settings(api_key=reference, key_vault_endpoint=VAULT))
    with pytest.raises(CredentialError, match="could not resolve it.*'Key Vault Secrets User' role"):
        asyncio.run(provider.get())
    assert asyncio.run(provider.on_unauthorized()) is False


def test_key_vault_secret_is_used_and_reread_after_401(caplog):
    caplog.set_level(logging.INFO, "voicebridge.credentials")
    vault = StandInVault({"voice-live-api-key": "key-one"})
    identity = FakeIdentity()
    provider = provider_for(vault, identity)

    async def scenario():
        first = await provider.get()
        assert isinstance(first, AzureKeyCredential) and first.key == "key-one"
        assert ("https://vault.azure.net/.default",) in identity.scopes
        await provider.get()
        assert vault.reads == 1, "the secret is cached between sessions"
        assert await provider.on_unauthorized() is False, "an unchanged secret gives no reason to retry"
        vault.rotate("voice-live-api-key", "key-two")
        assert await provider.on_unauthorized() is True
        assert (await provider.get()).key == "key-two"
        assert "version v1" in provider.source

    asyncio.run(scenario())
    assert "key-one" not in caplog.text and "key-two" not in caplog.text


def test_sessions_rejected_together_share_one_reread():
    vault = StandInVault({"voice-live-api-key": "key-one"})
    provider = provider_for(vault)

    async def scenario():
        await provider.get()
        vault.rotate("voice-live-api-key", "key-two")
        return await asyncio.gather(*(provider.on_unauthorized() for _ in range(5)))

    assert asyncio.run(scenario()) == [True] * 5
    assert vault.reads == 2, "one re-read served every rejected session"


def test_missing_secret_falls_back_to_entra_then_picks_up_a_new_secret(caplog):
    caplog.set_level(logging.INFO, "voicebridge.credentials")
    vault = StandInVault()
    identity = FakeIdentity()
    provider = provider_for(vault, identity, client_id=CLIENT_ID)

    async def scenario():
        assert await provider.get() is identity
        assert provider.source.startswith(f"Entra ID token for the managed identity with client id {CLIENT_ID}")
        assert "event=credentials.fallback" in caplog.text and "voice-live-api-key" in caplog.text
        vault.rotate("voice-live-api-key", "key-new")
        assert await provider.on_unauthorized() is True
        assert (await provider.get()).key == "key-new"

    asyncio.run(scenario())


@pytest.mark.parametrize("client_id", [CLIENT_ID, None])
@pytest.mark.parametrize(
    ("vault", "refuse", "says"),
    [
        (StandInVault(status=403), False, "HTTP 403"),
        (StandInVault(unreachable=True), False, "Cannot reach"),
        (StandInVault({"voice-live-api-key": "k"}), True, "Could not authenticate"),
    ],
    ids=["forbidden", "unreachable", "no-identity"],
)
def test_key_vault_failures_name_vault_identity_and_role(vault, refuse, says, client_id):
    provider = provider_for(vault, FakeIdentity(refuse=refuse), client_id=client_id)
    with pytest.raises(CredentialError) as caught:
        asyncio.run(provider.get())
    message = str(caught.value)
    assert says in message
    assert VAULT in message and "voice-live-api-key" in message
    assert (f"client id {CLIENT_ID}" if client_id else "the default identity") in message
    assert "'Key Vault Secrets User' role" in message


def test_reread_that_fails_does_not_retry(caplog):
    vault = StandInVault({"voice-live-api-key": "key-one"})
    provider = provider_for(vault)

    async def scenario():
        await provider.get()
        vault.status = 403
        return await provider.on_unauthorized()

    assert asyncio.run(scenario()) is False
    assert "event=credentials.reread_failed" in caplog.text


def test_each_endpoint_has_its_own_credential():
    """Several Voice Live resources (issue 23): keys in the order of the endpoints, or Key Vault secrets
    <name>, <name>-2, … (the names infra/ gives the extra regions' keys)."""
    endpoints = "https://one.services.ai.azure.com/,https://two.services.ai.azure.com/"
    keyed = Settings(endpoint=endpoints, api_key="key-one,key-two")
    assert [keyed.api_key_for(i) for i in (0, 1)] == ["key-one", "key-two"]
    assert Settings(endpoint=endpoints, api_key="shared").api_key_for(1) == "shared"
    second = build_provider(vault_settings(endpoint=endpoints), index=1)
    try:
        assert isinstance(second, KeyVaultProvider)
        assert "secret 'voice-live-api-key-2'" in second.source
    finally:
        asyncio.run(second.close())
