"""Structure of the parsed Bicep (pycep-parser, the parser checkov uses): every resource and setting issue 4
asks for, roles scoped to the resource they grant, and outputs azd needs without any secret.

pycep renders identifiers and string literals alike as plain strings, so `"vault"` below means the
symbolic resource `vault` where it stands for a scope or parent."""

from __future__ import annotations

import json
import re

import pytest
from infra_helpers import INFRA, body

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
KV_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
COGNITIVE_SERVICES_USER = "a97b65f3-24c7-4388-baec-2e87135dc908"
AZURE_AI_USER = "53ca6127-db72-4b80-b1b0-d745d6d5456d"
# Types that carry no tags of their own (extensions and child configuration).
UNTAGGED = ("Microsoft.Authorization/", "Microsoft.Insights/diagnosticSettings", "Microsoft.Web/sites/config",
            "Microsoft.Web/sites/slots/config",
            "Microsoft.Web/sites/basicPublishingCredentialsPolicies", "Microsoft.Web/sites/slots/basicPublishing",
            "Microsoft.CognitiveServices/accounts/deployments", "Microsoft.KeyVault/vaults/secrets")


def ref(expression) -> str:
    """A parsed reference such as identity.outputs.clientId or account.listKeys().key1, as Bicep spells it."""
    if isinstance(expression, str):
        return expression
    operator = expression["operator"]
    operands = operator["operands"]
    if operator["type"] == "function_accessor":
        return f"{ref(operands['operand_1'])}.{operands['func_name']}()"
    assert operator["type"] == "property_accessor", operator
    return f"{ref(operands['operand_1'])}.{ref(operands['operand_2'])}"


def resource(bicep, module: str, name: str) -> dict:
    return bicep[f"modules/{module}.bicep"]["resources"][name]


def variables(bicep, module: str) -> dict:
    return {k: v["value"] for k, v in bicep[f"modules/{module}.bicep"]["variables"].items()}


def params(bicep, module: str) -> dict:
    return bicep[f"modules/{module}.bicep"]["parameters"]


def test_every_resource_is_tagged_and_only_the_site_names_the_azd_service(bicep):
    tagged = []
    for path, document in bicep.items():
        for name, res in document.get("resources", {}).items():
            if res["existing"] or res["type"].startswith(UNTAGGED):
                continue
            tags = body(res).get("tags")
            tagged.append((path, name))
            if name == "site":
                merged = tags["function"]["parameters"]
                assert merged["arg_1"] == "tags" and merged["arg_2"] == {"'azd-service-name'": "web"}
            else:
                assert tags == "tags", f"{path}:{name} is not tagged"
    assert len(tagged) >= 12
    main = bicep["main.bicep"]
    assert main["variables"]["tags"]["value"] == {"'azd-env-name'": "environmentName"}
    for name, module in main["modules"].items():
        # A module whose resources carry no tags of their own (easyauth: child configuration) takes none.
        if "tags" in bicep[module["detail"]["path"]]["parameters"]:
            assert body(module)["params"]["tags"] == "tags", name
    assert sum(json.dumps(d).count("azd-service-name") for d in bicep.values()) == 1


def test_monitoring_is_workspace_based_and_the_workbook_reads_it(bicep):
    insights = body(resource(bicep, "monitoring", "appInsights"))
    assert ref(insights["properties"]["WorkspaceResourceId"]) == "workspace.id"
    workbook = body(resource(bicep, "workbook", "workbook"))
    assert resource(bicep, "workbook", "workbook")["type"] == "Microsoft.Insights/workbooks"
    assert workbook["properties"]["sourceId"] == "appInsightsId"
    assert workbook["properties"]["serializedData"]["function"]["parameters"]["file_path"] == "workbook.json"


def test_key_vault_is_rbac_only_with_soft_delete_and_purge_protection(bicep):
    vault = body(resource(bicep, "keyvault", "vault"))["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True and vault["enablePurgeProtection"] is True
    assert vault["publicNetworkAccess"] == "publicNetworkAccess"
    main = bicep["main.bicep"]
    assert main["modules"]["keyVault"]["config"]["params"]["publicNetworkAccess"] == "keyVaultPublicNetworkAccess"
    assert main["parameters"]["keyVaultPublicNetworkAccess"]["default"] == "Enabled"


def test_registry_has_no_admin_user_and_no_anonymous_pull(bicep):
    registry = body(resource(bicep, "registry", "registry"))["properties"]
    assert registry["adminUserEnabled"] is False and registry["anonymousPullEnabled"] is False


def test_ai_services_account_is_keyless_by_default_with_the_model_deployed(bicep):
    account = resource(bicep, "aiservices", "account")
    config = body(account)
    assert config["kind"] == "AIServices"
    assert config["properties"]["customSubDomainName"] == "name"
    assert config["properties"]["disableLocalAuth"]["operator"] == {"type": "not", "operands": {"bool_value": "useKeyAuth"}}
    main = bicep["main.bicep"]
    assert main["parameters"]["useKeyAuth"]["default"] == "false"
    deployment = resource(bicep, "aiservices", "deployment")
    model = body(deployment)
    assert model["parent"] == "account"
    assert model["sku"] == {"name": "modelSkuName", "capacity": "modelCapacity"}
    assert model["properties"]["model"] == {"format": "OpenAI", "name": "modelName", "version": "modelVersion"}
    assert main["parameters"]["voiceLiveModel"]["default"] == "gpt-realtime"
    assert main["parameters"]["modelSkuName"]["default"] == "GlobalStandard"
    assert {"modelVersion", "modelCapacity"} <= set(main["parameters"])


def test_key_auth_puts_the_key_in_key_vault_inside_the_template(bicep):
    secret = resource(bicep, "aiservices", "keySecret")
    assert secret["config"]["condition"] == "useKeyAuth"
    config = body(secret)
    assert config["parent"] == "vault" and config["properties"]["contentType"]
    assert ref(config["properties"]["value"]) == "account.listKeys().key1"
    assert resource(bicep, "aiservices", "vault")["existing"] is True
    # Without key auth the app is not pointed at the vault at all, so it goes straight to its identity.
    settings = bicep["main.bicep"]["modules"]["web"]["config"]["params"]["appSettings"]
    assert settings["AZURE_KEY_VAULT_ENDPOINT"]["operator"]["type"] == "conditional"


@pytest.mark.parametrize(
    ("module", "assignment", "scope", "roles"),
    [
        ("registry", "pull", "registry", {ACR_PULL}),
        ("keyvault", "roles", "vault", {KV_SECRETS_USER}),
        ("aiservices", "roles", "account", {COGNITIVE_SERVICES_USER, AZURE_AI_USER}),
    ],
)
def test_the_identity_gets_each_role_on_the_resource_it_needs(bicep, module, assignment, scope, roles):
    config = body(resource(bicep, module, assignment))
    assert config["scope"] == scope
    role_id = config["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
    grants = variables(bicep, module).get("grants")
    if grants is None:
        assert variables(bicep, module)[role_id] in roles and config["properties"]["principalId"] == "identityPrincipalId"
        return
    granted = {variables(bicep, module)[g["role"]] for g in grants if g["principalId"] == "identityPrincipalId"}
    assert granted == roles
    assert all(g["principalType"] == "ServicePrincipal" for g in grants if g["principalId"] == "identityPrincipalId")
    # The deploying user gets the same data-plane roles for local keyless development.
    assert any(g["principalId"] == "userPrincipalId" for g in grants)


def test_one_user_assigned_identity_is_passed_to_every_role_and_the_site(bicep):
    assert resource(bicep, "identity", "identity")["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    modules = bicep["main.bicep"]["modules"]
    for name in ("keyVault", "registry", "aiServices"):
        assert ref(modules[name]["config"]["params"]["identityPrincipalId"]) == "identity.outputs.principalId"
    web = modules["web"]["config"]["params"]
    assert ref(web["identityId"]) == "identity.outputs.id"
    assert ref(web["identityClientId"]) == "identity.outputs.clientId"


def test_plan_is_linux_with_slots_and_autoscale(bicep):
    plan = body(resource(bicep, "appserviceplan", "plan"))
    assert plan["kind"] == "linux" and plan["properties"]["reserved"] is True
    allowed = bicep["main.bicep"]["parameters"]["appServiceSkuName"]
    assert all(re.fullmatch(r"S[1-3]|P\dv3", sku) for sku in allowed["decorators"][0]["argument"])
    autoscale = body(resource(bicep, "appserviceplan", "autoscale"))["properties"]
    assert autoscale["enabled"] is True
    assert ref(autoscale["targetResourceUri"]) == "plan.id"
    directions = {rule["scaleAction"]["direction"] for rule in autoscale["profiles"][0]["rules"]}
    assert directions == {"Increase", "Decrease"}
    assert autoscale["profiles"][0]["capacity"]["maximum"]["function"]["type"] == "string"


SITE_CONFIG = {
    "acrUseManagedIdentityCreds": True,
    "acrUserManagedIdentityID": "identityClientId",
    "webSocketsEnabled": True,
    "alwaysOn": True,
    "http20Enabled": True,
    "minTlsVersion": "1.2",
    "scmMinTlsVersion": "1.2",
    "ftpsState": "Disabled",
    "remoteDebuggingEnabled": False,
    "healthCheckPath": "/healthz",
}


def test_site_and_slot_share_the_hardened_container_config(bicep):
    site = body(resource(bicep, "webapp", "site"))
    slot = body(resource(bicep, "webapp", "staging"))
    assert slot["parent"] == "site" and slot["name"] == "stagingSlotName"
    assert params(bicep, "webapp")["stagingSlotName"]["default"] == "staging"
    for config in (site, slot):
        assert config["kind"] == "app,linux,container"
        assert config["identity"] == {"type": "UserAssigned", "userAssignedIdentities": "identities"}
        properties = config["properties"]
        assert properties["httpsOnly"] is True and properties["keyVaultReferenceIdentity"] == "identityId"
        assert SITE_CONFIG.items() <= properties["siteConfig"].items()
        assert "appSettings" not in properties["siteConfig"], "app settings are the appsettings config children"
    # Each runs its own image: a re-provision keeps production's and staging's (the swap-back one).
    assert site["properties"]["siteConfig"]["linuxFxVersion"] == "DOCKER|${image}"
    assert slot["properties"]["siteConfig"]["linuxFxVersion"] == "DOCKER|${stagingImage}"
    # Spelled out twice for checkov; they must not drift apart.
    rest = [{k: v for k, v in c["properties"]["siteConfig"].items() if k != "linuxFxVersion"} for c in (site, slot)]
    assert rest[0] == rest[1]
    assert variables(bicep, "webapp")["identities"] == {"'${identityId}'": {}}


def test_app_settings_give_the_bridge_everything_it_reads(bicep):
    given = set(bicep["main.bicep"]["modules"]["web"]["config"]["params"]["appSettings"])
    merged = variables(bicep, "webapp")["sharedSettings"]["function"]["parameters"]
    # The operator's tuning first: what the template sets (endpoint, identity, sign-in trust) wins a clash.
    assert (merged["arg_1"], merged["arg_2"]) == ("tuning", "appSettings")
    added = set(merged["arg_3"])
    assert {"AZURE_VOICE_LIVE_ENDPOINT", "VOICE_LIVE_MODEL", "VOICE_LIVE_VOICE", "AZURE_CLIENT_ID",
            "AZURE_KEY_VAULT_ENDPOINT", "WEBSITES_PORT"} <= given
    assert {"APPLICATIONINSIGHTS_CONNECTION_STRING", "WEBSITE_SWAP_WARMUP_PING_PATH",
            "WEBSITE_SWAP_WARMUP_PING_STATUSES"} <= added
    assert "AZURE_VOICE_LIVE_API_KEY" not in given | added, "the key comes from Key Vault, never app settings"
    shared = merged["arg_3"]
    assert shared["WEBSITE_SWAP_WARMUP_PING_PATH"] == "/healthz"
    # The connection string is read from the component, not passed through an output.
    assert ref(shared["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == "appInsights.properties.ConnectionString"


def test_the_slot_label_is_sticky_and_differs_per_slot(bicep):
    sticky = body(resource(bicep, "webapp", "stickySettings"))
    assert sticky["name"] == "slotConfigNames" and sticky["properties"]["appSettingNames"] == ["slotSetting"]
    assert variables(bicep, "webapp")["slotSetting"] == "OTEL_RESOURCE_ATTRIBUTES"
    labels = []
    for name, parent in (("siteSettings", "site"), ("stagingSettings", "staging")):
        config = body(resource(bicep, "webapp", name))
        assert config["parent"] == parent and config["name"] == "appsettings"
        merged = config["properties"]["function"]["parameters"]
        assert merged["arg_1"] == "sharedSettings"
        labels.append(merged["arg_2"])
    assert labels == [{"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=production"},
                      {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging"}]


def test_basic_publishing_credentials_are_off_on_both_slots(bicep):
    for name, parent in (("sitePublishing", "site"), ("slotPublishing", "staging")):
        policies = resource(bicep, "webapp", name)
        assert policies["config"]["loop_type"]["detail"]["array_name"] == ["ftp", "scm"]
        assert body(policies)["parent"] == parent and body(policies)["properties"] == {"allow": False}


def test_site_logs_go_to_log_analytics(bicep):
    diagnostics = body(resource(bicep, "webapp", "diagnostics"))
    assert diagnostics["scope"] == "site" and diagnostics["properties"]["workspaceId"] == "logAnalyticsWorkspaceId"


def test_every_diagnostic_setting_logs_the_allLogs_category_group(bicep):
    # App Service rejects a category its kind does not emit; a category group never names one (issue 9).
    found = 0
    for document in bicep.values():
        for res in document.get("resources", {}).values():
            if res["type"] == "Microsoft.Insights/diagnosticSettings":
                found += 1
                assert body(res)["properties"]["logs"] == [{"categoryGroup": "allLogs", "enabled": True}]
    assert found == 2


REQUIRED_OUTPUTS = {
    "AZURE_LOCATION", "AZURE_TENANT_ID", "AZURE_RESOURCE_GROUP", "AZURE_CONTAINER_REGISTRY_ENDPOINT",
    "AZURE_CONTAINER_REGISTRY_NAME", "AZURE_KEY_VAULT_ENDPOINT", "AZURE_VOICE_LIVE_ENDPOINT",
    "SERVICE_WEB_NAME", "SERVICE_WEB_URI", "SERVICE_WEB_STAGING_URI",
}


def test_outputs_give_azd_and_the_scripts_what_they_read_and_no_secret(bicep):
    outputs = bicep["main.bicep"]["outputs"]
    assert REQUIRED_OUTPUTS <= set(outputs)
    assert "AZURE_CLIENT_ID" not in outputs, "azd would export it to hooks, where credentials read it"
    for path, document in bicep.items():
        for name, output in document.get("outputs", {}).items():
            text = (name + json.dumps(output)).lower()
            assert not re.search(r"key1|key2|list_?keys|password|secret|connectionstring|instrumentationkey", text), (path, name)
            assert not any(d["type"] == "secure" for d in output["decorators"]), (path, name)


def test_parameters_file_feeds_every_required_parameter(bicep):

    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = bicep["main.bicep"]["parameters"]
    assert set(values) <= set(declared)
    required = {name for name, p in declared.items() if "default" not in p}
    assert required <= set(values)
    assert values["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert values["location"]["value"] == "${AZURE_LOCATION}"
    assert values["principalId"]["value"].startswith("${AZURE_PRINCIPAL_ID")


def test_re_provisioning_keeps_the_instance_count_autoscale_chose(bicep):
    # A literal capacity would scale production back to it on every provision (issue 9).
    plan = body(resource(bicep, "appserviceplan", "plan"))
    capacity = plan["sku"]["capacity"]["function"]
    assert capacity["type"] == "min" and capacity["parameters"] == {"arg_1": "instanceCount", "arg_2": "maxInstances"}
    main = bicep["main.bicep"]
    assert main["modules"]["plan"]["config"]["params"]["instanceCount"]["function"]["parameters"] == {"value_to_convert": "instanceCount"}


def test_re_provisioning_keeps_both_images(bicep):
    main = bicep["main.bicep"]
    web = main["modules"]["web"]["config"]["params"]
    assert web["image"] == "productionImage"
    staging = web["stagingImage"]["operator"]["operands"]
    assert staging["true_value"] == "productionImage" and staging["false_value"] == "webStagingImageName"
    production = main["variables"]["productionImage"]["value"]["operator"]["operands"]
    assert production["false_value"] == "webImageName"
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["webImageName"]["value"] == "${SERVICE_WEB_IMAGE_NAME=}"
    assert values["webStagingImageName"]["value"] == "${SERVICE_WEB_STAGING_IMAGE_NAME=}"
    assert values["instanceCount"]["value"] == "${APP_SERVICE_INSTANCE_COUNT=1}"


def test_a_soft_deleted_vault_can_be_recovered(bicep):
    vault = body(resource(bicep, "keyvault", "vault"))["properties"]
    assert vault["createMode"] == "createMode"
    allowed = params(bicep, "keyvault")["createMode"]
    assert allowed["default"] == "default"
    main = bicep["main.bicep"]
    assert main["modules"]["keyVault"]["config"]["params"]["createMode"] == "keyVaultCreateMode"
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["keyVaultCreateMode"]["value"] == "${KEY_VAULT_CREATE_MODE=default}"


def test_a_soft_deleted_ai_account_can_be_restored(bicep):
    account = body(resource(bicep, "aiservices", "account"))["properties"]
    assert account["restore"] == "restore" and params(bicep, "aiservices")["restore"]["default"] is False
    main = bicep["main.bicep"]
    restore = main["modules"]["aiServices"]["config"]["params"]["restore"]["function"]
    assert restore == {"type": "bool", "parameters": {"arg_1": "aiServicesRestore"}}


def test_every_parameter_is_described(bicep):
    for path, document in bicep.items():
        for name, param in document.get("parameters", {}).items():
            kinds = {d["type"] for d in param["decorators"]}
            assert "description" in kinds, f"{path}: param {name} has no @description"


# --- sign-in (issue 13) ---------------------------------------------------------------------------------


def sign_in_problems(bicep) -> list[str]:
    """Where the sign-in option (VOICEBRIDGE_AUTH) is not App Service Authentication with Entra ID on both
    slots, switched by the parameter, with /healthz open and the app told what to trust."""
    problems = []
    main = bicep["main.bicep"]
    auth = main["parameters"].get("auth", {})
    allowed = next((d["argument"] for d in auth.get("decorators", []) if d["type"] == "allowed"), None)
    if auth.get("default") != "none" or allowed != ["none", "entra"]:
        problems.append("param auth must allow none and entra, default none")
    if main["variables"].get("signIn", {}).get("value") != {"operator": {"type": "equals", "operands": {"operand_1": "auth", "operand_2": "entra"}}}:
        problems.append("signIn must be auth == 'entra'")
    module = main["modules"].get("easyAuth", {})
    passed = module.get("config", {}).get("params", {})
    if module.get("detail", {}).get("path") != "modules/easyauth.bicep" or passed.get("enabled") != "signIn":
        problems.append("the easyauth module must be deployed in both modes, enabled by signIn")
    if ref(passed.get("siteName", "")) != "web.outputs.name" or ref(passed.get("stagingSlotName", "")) != "web.outputs.stagingSlotName":
        problems.append("the easyauth module must configure the web module's site and staging slot")
    client = passed.get("clientId", {}).get("operator", {}).get("operands", {})
    if client.get("true_value") != "authClientId":
        problems.append("the client id must come from authClientId")
    settings = main["modules"]["web"]["config"]["params"]["appSettings"]
    if settings.get("VOICEBRIDGE_TRUST_FORWARDED") != "true":
        problems.append("App Service must always set VOICEBRIDGE_TRUST_FORWARDED=true")
    easy = settings.get("VOICEBRIDGE_TRUST_EASY_AUTH", {})
    if not isinstance(easy, dict) or easy.get("operator", {}).get("operands") != {"condition": "signIn", "true_value": "true", "false_value": "false"}:
        problems.append("VOICEBRIDGE_TRUST_EASY_AUTH must be true exactly when sign-in is on")
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    if values.get("auth", {}).get("value") != "${VOICEBRIDGE_AUTH=none}" or values.get("authClientId", {}).get("value") != "${VOICEBRIDGE_AUTH_CLIENT_ID=}":
        problems.append("main.parameters.json must feed auth and authClientId from the azd environment")
    module_file = bicep.get("modules/easyauth.bicep", {"resources": {}})
    bodies = []
    for name, kind, parent in (("siteAuth", "Microsoft.Web/sites/config", "site"),
                               ("stagingAuth", "Microsoft.Web/sites/slots/config", "staging")):
        res = module_file["resources"].get(name)
        if res is None or res["type"] != kind or body(res).get("parent") != parent or body(res).get("name") != "authsettingsV2":
            problems.append(f"{name}: authsettingsV2 of the {parent} is missing")
            continue
        switched = body(res)["properties"]
        bodies.append(switched)
        if switched != {"operator": {"type": "conditional", "operands": {
                "condition": "enabled", "true_value": "signInOn", "false_value": "signInOff"}}}:
            problems.append(f"{name}: properties must be enabled ? signInOn : signInOff")
            continue
        props = variables(bicep, "easyauth")["signInOn"]
        if variables(bicep, "easyauth")["signInOff"] != {"platform": {"enabled": False}}:
            problems.append("with sign-in off only platform.enabled: false is written")
        checks = {
            "platform on": props.get("platform", {}).get("enabled") is True,
            "authentication required": props.get("globalValidation", {}).get("requireAuthentication") is True,
            "unauthenticated browsers sent to Entra ID": props.get("globalValidation", {}).get("unauthenticatedClientAction") == "RedirectToLoginPage"
            and props["globalValidation"].get("redirectToProvider") == "azureactivedirectory",
            "/healthz excluded": props.get("globalValidation", {}).get("excludedPaths") == ["/healthz"],
            "Entra ID with the registration's client id": props.get("identityProviders", {}).get("azureActiveDirectory", {}).get("registration")
            == {"clientId": "clientId", "openIdIssuer": "issuer"},
            # Nothing reads the provider's tokens; without blob storage the store would use the file system.
            "token store off": props.get("login", {}).get("tokenStore", {}).get("enabled") is False,
        }
        problems += [f"{name}: {what}" for what, ok in checks.items() if not ok]
    if len(bodies) == 2 and bodies[0] != bodies[1]:
        problems.append("the site and the staging slot must get the same authentication settings")
    return problems


def test_sign_in_is_app_service_authentication_on_both_slots_switched_by_voicebridge_auth(bicep):
    assert sign_in_problems(bicep) == []
    assert variables(bicep, "easyauth")["issuer"] == "${environment().authentication.loginEndpoint}${tenantId}/v2.0"


def test_the_sign_in_check_catches(bicep):
    import copy

    def broken(change) -> dict:
        copied = copy.deepcopy(bicep)
        change(copied)
        return copied

    def slot(b):
        return b["modules/easyauth.bicep"]["variables"]["signInOn"]["value"]

    defects = {
        "health check behind sign-in": lambda b: slot(b)["globalValidation"].update(excludedPaths=[]),
        "token store on": lambda b: slot(b)["login"]["tokenStore"].update(enabled=True),
        "a provider configured with sign-in off": lambda b: b["modules/easyauth.bicep"]["variables"]["signInOff"]["value"].update(
            identityProviders={}),
        "staging slot left open": lambda b: b["modules/easyauth.bicep"]["resources"].pop("stagingAuth"),
        "sign-in always on": lambda b: b["main.bicep"]["parameters"]["auth"].update(default="entra"),
        "easy auth trusted without sign-in": lambda b: b["main.bicep"]["modules"]["web"]["config"]["params"]["appSettings"].update(
            VOICEBRIDGE_TRUST_EASY_AUTH="true"),
        "forwarded address not trusted": lambda b: b["main.bicep"]["modules"]["web"]["config"]["params"]["appSettings"].pop(
            "VOICEBRIDGE_TRUST_FORWARDED"),
    }
    for what, change in defects.items():
        assert sign_in_problems(broken(change)), what
