"""Agent mode and MCP servers in the Bicep (issue 25), read from the parsed templates (pycep): the app is
told the agent and never a model in agent mode, the roles an agent in another Foundry resource needs
are granted there, and MCP header secrets get the app pointed at the vault."""

from __future__ import annotations

import json

from infra_helpers import INFRA, body
from test_bicep import ref

COGNITIVE_SERVICES_USER = "a97b65f3-24c7-4388-baec-2e87135dc908"
AZURE_AI_USER = "53ca6127-db72-4b80-b1b0-d745d6d5456d"


def app_settings(bicep) -> dict:
    return bicep["main.bicep"]["modules"]["web"]["config"]["params"]["appSettings"]


def test_agent_mode_reaches_the_app_and_empties_the_model(bicep):
    settings = app_settings(bicep)
    assert {settings[k] for k in ("VOICE_LIVE_AGENT_NAME", "VOICE_LIVE_AGENT_PROJECT", "VOICE_LIVE_AGENT_VERSION")} == {
        "voiceLiveAgentName", "voiceLiveAgentProject", "voiceLiveAgentVersion"}
    # The app refuses VOICE_LIVE_MODEL in agent mode: the template must not set it then.
    model = settings["VOICE_LIVE_MODEL"]["operator"]
    assert model["type"] == "conditional" and model["operands"]["condition"] == "agentMode"
    assert model["operands"]["true_value"] == "" and model["operands"]["false_value"] == "voiceLiveModel"
    agent_mode = bicep["main.bicep"]["variables"]["agentMode"]["value"]["operator"]  # !empty(voiceLiveAgentName)
    assert agent_mode["type"] == "not"
    assert agent_mode["operands"]["bool_value"]["function"]["parameters"]["item_to_test"] == "voiceLiveAgentName"


def test_an_agent_in_another_foundry_resource_gets_the_app_identity_its_roles_there(bicep):
    module = bicep["main.bicep"]["modules"]["agentAccess"]
    assert module["detail"]["path"] == "modules/agentaccess.bicep"
    assert module["config"]["condition"] == "agentElsewhere", "only when the agent is not in the deployed account"
    params = body(module)["params"]
    assert params["accountName"] == "voiceLiveAgentAccount"
    assert ref(params["identityPrincipalId"]) == "identity.outputs.principalId"
    access = bicep["modules/agentaccess.bicep"]
    assert access["resources"]["account"]["existing"] is True
    assert access["resources"]["account"]["type"] == "Microsoft.CognitiveServices/accounts"
    roles = access["resources"]["roles"]
    assert roles["type"] == "Microsoft.Authorization/roleAssignments"
    granted = {access["variables"][name]["value"] for name in roles["config"]["loop_type"]["detail"]["array_name"]}
    assert granted == {COGNITIVE_SERVICES_USER, AZURE_AI_USER}
    config = body(roles)
    assert config["scope"] == "account" and config["properties"]["principalId"] == "identityPrincipalId"
    assert config["properties"]["principalType"] == "ServicePrincipal"
    # The app then connects to that resource.
    endpoint = app_settings(bicep)["AZURE_VOICE_LIVE_ENDPOINT"]["operator"]
    assert endpoint["type"] == "conditional" and endpoint["operands"]["condition"] == "agentElsewhere"


def test_mcp_servers_reach_the_app_and_point_it_at_the_vault(bicep):
    settings = app_settings(bicep)
    assert settings["VOICEBRIDGE_MCP_SERVERS"] == "voicebridgeMcpServers"
    vault = settings["AZURE_KEY_VAULT_ENDPOINT"]["operator"]
    assert vault["type"] == "conditional" and vault["operands"]["condition"] == "appReadsVault"
    reads = bicep["main.bicep"]["variables"]["appReadsVault"]["value"]["operator"]
    assert reads["type"] == "or" and reads["operands"]["operand_1"] == "keyAuth"


def test_the_azd_environment_names_reach_the_parameters():
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    expected = {
        "voiceLiveAgentName": "${VOICE_LIVE_AGENT_NAME=}", "voiceLiveAgentProject": "${VOICE_LIVE_AGENT_PROJECT=}",
        "voiceLiveAgentVersion": "${VOICE_LIVE_AGENT_VERSION=}", "voiceLiveAgentAccount": "${VOICE_LIVE_AGENT_ACCOUNT=}",
        "voiceLiveAgentResourceGroup": "${VOICE_LIVE_AGENT_RESOURCE_GROUP=}",
        "voicebridgeMcpServers": "${VOICEBRIDGE_MCP_SERVERS=}",
    }
    assert {k: parameters[k]["value"] for k in expected} == expected
