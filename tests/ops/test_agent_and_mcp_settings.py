"""Agent mode and MCP server settings (issue 25): what is refused at startup, and what goes upstream.

The header secrets are read with the real SecretClient through tests/ops/test_credentials.py's stand-in
vault transport (the vault's REST API), so nothing reaches Azure.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from ops.test_credentials import VAULT, FakeIdentity, StandInVault
from voicebridge.credentials import VaultSecrets
from voicebridge.protocol import ErrorCode
from voicebridge.settings import AgentTarget, Settings, SettingsError
from voicebridge.upstream import McpDeclarations, UpstreamError, session_config

AGENT = {"VOICE_LIVE_AGENT_NAME": "support-agent", "VOICE_LIVE_AGENT_PROJECT": "contoso-project"}
REMOTE = {"AZURE_VOICE_LIVE_ENDPOINT": "https://contoso.services.ai.azure.com/"}


def servers(*entries: dict) -> str:
    return json.dumps(list(entries))


def refused(env: dict) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    return caught.value


def test_agent_mode_needs_name_and_project_and_keeps_the_version():
    settings = Settings.from_env({**AGENT, "VOICE_LIVE_AGENT_VERSION": "3"})
    assert settings.agent_mode and settings.agent == AgentTarget("support-agent", "contoso-project", "3")
    assert refused({"VOICE_LIVE_AGENT_NAME": "support-agent"}).variable == "VOICE_LIVE_AGENT_PROJECT"
    assert refused({"VOICE_LIVE_AGENT_PROJECT": "p"}).variable == "VOICE_LIVE_AGENT_NAME"
    assert refused({"VOICE_LIVE_AGENT_VERSION": "3"}).variable == "VOICE_LIVE_AGENT_VERSION"


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("VOICE_LIVE_INSTRUCTIONS", "Be brief.", "instructions are defined in Foundry"),
        ("VOICE_LIVE_TEMPERATURE", "0.7", "model settings are defined in Foundry"),
        ("VOICEBRIDGE_TOOLS", "voicebridge.tools.clock", "tools are defined in Foundry"),
        ("VOICE_LIVE_MODEL", "gpt-realtime", "model is defined in Foundry"),
        ("VOICEBRIDGE_MCP_SERVERS", servers({"label": "docs", "url": "https://mcp.example.com/mcp"}), "MCP tools in Foundry"),
    ],
)
def test_settings_that_do_not_apply_to_an_agent_are_refused_not_dropped(variable, value, why):
    error = refused({**AGENT, variable: value})
    assert error.variable == variable
    assert "agent mode" in str(error) and why in str(error)


def test_an_agent_session_update_carries_no_instructions_and_speaks_with_azure_speech():
    config = session_config(Settings.from_env(AGENT)).as_dict()
    assert "instructions" not in config and "temperature" not in config and "tools" not in config
    assert config["input_audio_transcription"]["model"] == "azure-speech"  # the agents family's default
    assert "instructions" in session_config(Settings.from_env({})).as_dict()


def test_mcp_servers_are_parsed_from_json_or_a_file(tmp_path):
    entry = {"label": "docs", "url": "https://mcp.example.com/mcp", "allowed_tools": ["search"],
             "require_approval": {"always": ["delete_page"], "never": ["search"]}}
    inline = Settings.from_env({"VOICEBRIDGE_MCP_SERVERS": servers(entry)}).mcp_config.servers
    path = tmp_path / "mcp.json"
    path.write_text(servers(entry), encoding="utf-8")
    assert Settings.from_env({"VOICEBRIDGE_MCP_SERVERS": str(path)}).mcp_config.servers == inline
    encoded = "base64:" + base64.b64encode(servers(entry).encode()).decode()
    assert Settings.from_env({"VOICEBRIDGE_MCP_SERVERS": encoded}).mcp_config.servers == inline
    assert "not base64" in str(refused({"VOICEBRIDGE_MCP_SERVERS": "base64:%%%"}))
    (server,) = inline
    assert server.definition() == {
        "type": "mcp", "server_label": "docs", "server_url": "https://mcp.example.com/mcp",
        "allowed_tools": ["search"], "require_approval": {"always": ["delete_page"], "never": ["search"]},
    }
    assert Settings.from_env({}).mcp_config.approval_s == 30.0
    assert Settings.from_env({"VOICEBRIDGE_APPROVAL_SECONDS": "5"}).mcp_config.approval_s == 5.0
    assert Settings.from_env({"VOICEBRIDGE_APPROVAL_ARGUMENTS": "true"}).mcp_config.show_arguments


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([{"label": "a", "url": "http://mcp.example.com/mcp"}], "must use https"),
        ([{"label": "a", "url": "ftp://mcp.example.com"}], "must be an https URL"),
        ([{"label": "a", "url": "https://u:p@mcp.example.com"}], "must not carry credentials"),
        ([{"label": "a", "url": "https://x.example"}, {"label": "a", "url": "https://y.example"}], "used twice"),
        ([{"label": "bad label", "url": "https://x.example"}], "\"label\" must be"),
        ([{"label": "a", "url": "https://x.example", "require_approval": "sometimes"}], "require_approval"),
        ([{"label": "a", "url": "https://x.example", "require_approval": {"always": ["t"], "never": ["t"]}}],
         "both always and never"),
        ([{"label": "a", "url": "https://x.example", "headers": {"Authorization": "Bearer abc"}}],
         "Key Vault secrets only"),
        ([{"label": "a", "url": "https://x.example", "token": "x"}], "unknown field"),
    ],
)
def test_bad_mcp_servers_are_refused_with_what_is_accepted(entries, expected):
    error = refused({"VOICEBRIDGE_MCP_SERVERS": servers(*entries)})
    assert error.variable == "VOICEBRIDGE_MCP_SERVERS" and expected in str(error)


def test_loopback_http_is_for_the_emulator_only():
    local = servers({"label": "dev", "url": "http://127.0.0.1:8931/mcp"})
    assert Settings.from_env({"VOICEBRIDGE_MCP_SERVERS": local}).mcp_config.servers[0].loopback
    local_endpoint = {"AZURE_VOICE_LIVE_ENDPOINT": "http://127.0.0.1:8765"}  # `make emulator`
    assert Settings.from_env({**local_endpoint, "VOICEBRIDGE_MCP_SERVERS": local}).mcp_config.servers
    assert "only an emulator on this machine can reach it" in str(refused({**REMOTE, "VOICEBRIDGE_MCP_SERVERS": local}))


def test_models_that_cannot_use_mcp_are_refused_by_the_capability_table():
    error = refused({"VOICE_LIVE_MODEL": "phi4-mm-realtime",
                     "VOICEBRIDGE_MCP_SERVERS": servers({"label": "a", "url": "https://x.example"})})
    assert "phi models" in str(error) and "cannot use MCP" in str(error)


def test_header_secrets_need_a_vault():
    entry = {"label": "a", "url": "https://x.example", "headers": {"Authorization": {"secret": "mcp-token"}}}
    assert "AZURE_KEY_VAULT_ENDPOINT" in str(refused({"VOICEBRIDGE_MCP_SERVERS": servers(entry)}))
    settings = Settings.from_env({"VOICEBRIDGE_MCP_SERVERS": servers(entry), "AZURE_KEY_VAULT_ENDPOINT": VAULT})
    assert settings.mcp_config.servers[0].header_secrets == (("Authorization", "mcp-token"),)


def test_header_values_are_read_from_the_vault_when_a_session_connects():
    entry = {"label": "docs", "url": "https://x.example", "headers": {"Authorization": {"secret": "mcp-token"}}}
    settings = Settings.from_env({"VOICEBRIDGE_MCP_SERVERS": servers(entry), "AZURE_KEY_VAULT_ENDPOINT": VAULT})
    vault = StandInVault({"mcp-token": "Bearer from-the-vault"})

    async def scenario():
        declarations = McpDeclarations(settings.mcp_config.servers, VaultSecrets(settings, FakeIdentity(), transport=vault))
        (first,) = await declarations.entries()
        assert first["headers"] == {"Authorization": "Bearer from-the-vault"}
        await declarations.entries()
        assert vault.reads == 1  # cached between sessions
        await declarations.close()

    asyncio.run(scenario())


def test_a_missing_header_secret_fails_the_session_start_naming_the_server_and_secret():
    entry = {"label": "docs", "url": "https://x.example", "headers": {"X-Api-Key": {"secret": "absent"}}}
    settings = Settings.from_env({"VOICEBRIDGE_MCP_SERVERS": servers(entry), "AZURE_KEY_VAULT_ENDPOINT": VAULT})

    async def scenario():
        declarations = McpDeclarations(settings.mcp_config.servers, VaultSecrets(settings, FakeIdentity(), transport=StandInVault()))
        with pytest.raises(UpstreamError) as caught:
            await declarations.entries()
        await declarations.close()
        return caught.value

    error = asyncio.run(scenario())
    assert error.code == ErrorCode.UPSTREAM_AUTH
    assert "MCP server 'docs'" in error.message and "no secret 'absent'" in error.message
