"""What the Bicep compiler and ARM would reject, checked offline (issue 9): every resource body against the
published resource types, deploy-time-constant positions, and a second parser beside checkov's.

No Bicep CLI can be installed here (it downloads from outside), so these are the proofs that `azd up` gets
past compilation. Each check is also run against the files as they were before issue 9
(tests/infra/fixtures/before-issue-9/), where it must find the defect it exists for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bicep_checks import TypeData, deploy_time_problems, type_problems
from bicep_model import parse_source, read, syntax_errors
from infra_helpers import INFRA
from pycep import BicepParser
from refresh_data import missing_data_message

BEFORE = Path(__file__).parent / "fixtures" / "before-issue-9"
FILES = sorted(INFRA.rglob("*.bicep"))
IDS = [str(p.relative_to(INFRA)) for p in FILES]


@pytest.fixture(scope="module")
def types() -> TypeData:
    # Never skipped: without the type data nothing here would be proven, and that must show as a failure.
    return TypeData()


def snippet(source: str, name: str = "snippet.bicep"):
    return parse_source(INFRA / name, source.encode())


# --- the published resource types -------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_every_resource_body_matches_its_published_type(path, types):
    assert type_problems(read(path), types) == []


def test_every_declared_resource_type_and_version_is_published(types):
    declared = {d.target for p in FILES for d in read(p).resources}
    assert len(declared) >= 15
    unknown = {t for t in declared if types.resource_body(t) is None}
    assert unknown == set(), missing_data_message(", ".join(sorted(unknown)))


def test_type_check_finds_the_registry_property_the_old_api_version_lacks(types):
    problems = type_problems(read(BEFORE / "registry.bicep"), types)
    assert any("anonymousPullEnabled is not a property" in p for p in problems), problems


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("resource s 'Microsoft.Web/sites@2099-01-01' = {\n  name: 'a'\n  location: 'l'\n}\n",
         "is not a published type"),
        ("resource s 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'a'\n  location: 'l'\n  properties: {\n"
         "    siteConfig: {\n      linuxFxVersio: 'DOCKER|x'\n    }\n  }\n}\n",
         "siteConfig.linuxFxVersio is not a property of SiteConfig"),
        ("resource s 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'a'\n  location: 'l'\n  properties: {\n"
         "    defaultHostName: 'x'\n  }\n}\n",
         "defaultHostName is read-only"),
        ("resource v 'Microsoft.KeyVault/vaults@2023-07-01' = {\n  name: 'a'\n  location: 'l'\n  properties: {\n"
         "    tenantId: tenant().tenantId\n    sku: {\n      family: 'A'\n      name: 'gold'\n    }\n  }\n}\n",
         "'gold' is not allowed"),
        ("resource v 'Microsoft.KeyVault/vaults@2023-07-01' = {\n  name: 'a'\n  location: 'l'\n  properties: {\n"
         "    tenantId: tenant().tenantId\n    sku: {\n      family: 'A'\n      name: x ? 'standard' : 'gold'\n"
         "    }\n  }\n}\n",
         "'gold' is not allowed"),
        ("resource v 'Microsoft.KeyVault/vaults@2023-07-01' = {\n  name: 'a'\n  location: 'l'\n  properties: {\n"
         "    tenantId: tenant().tenantId\n    enablePurgeProtection: 'true'\n  }\n}\n",
         "required property 'sku' is missing"),
        ("resource c 'Microsoft.Web/sites/config@2024-04-01' = {\n  name: 'appsetings'\n  properties: {}\n}\n",
         "name 'appsetings' is not one of"),
        ("resource c 'Microsoft.Web/sites/config@2024-04-01' = {\n  name: 'web'\n  properties: {\n"
         "    slotName: 'x'\n  }\n}\n",
         "properties.slotName is not a property"),
        ("resource d 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {\n  name: 'a'\n"
         "  properties: {\n    logs: [\n      {\n        categoryGroups: 'allLogs'\n        enabled: true\n"
         "      }\n    ]\n  }\n}\n",
         "logs[0].categoryGroups is not a property"),
        ("resource v 'Microsoft.KeyVault/vaults@2023-07-01' = {\n  name: 'a'\n  location: 'l'\n  properties: {\n"
         "    tenantId: tenant().tenantId\n    sku: {\n      family: 'A'\n      name: 'standard'\n    }\n"
         "    enablePurgeProtection: 'true'\n  }\n}\n",
         "'true' is not allowed; the type expects Boolean"),
        ("var ident = {\n  type: 'UserAssignedd'\n}\nresource s 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'a'\n"
         "  location: 'l'\n  identity: ident\n}\n",
         "s.identity (var ident).type: 'UserAssignedd' is not allowed"),
        ("resource r 'Microsoft.ContainerRegistry/registries@2025-04-01' = {\n  name: 'cr-with-dashes'\n"
         "  location: 'l'\n  sku: {\n    name: 'Basic'\n  }\n}\n",
         "'cr-with-dashes' does not match"),
        # Sign-in (issue 13): authsettingsV2 is a discriminated element of sites/config and slots/config.
        ("resource c 'Microsoft.Web/sites/slots/config@2024-04-01' = {\n  name: 'authsettingsV2'\n  properties: {\n"
         "    globalValidation: {\n      excludedPath: [\n        '/healthz'\n      ]\n    }\n  }\n}\n",
         "globalValidation.excludedPath is not a property"),
        ("resource c 'Microsoft.Web/sites/config@2024-04-01' = {\n  name: 'authsettingsV2'\n  properties: {\n"
         "    globalValidation: {\n      unauthenticatedClientAction: 'RedirectToLogin'\n    }\n  }\n}\n",
         "'RedirectToLogin' is not allowed"),
        ("resource c 'Microsoft.Web/sites/config@2024-04-01' = {\n  name: 'authsettingsV2'\n  properties: {\n"
         "    login: {\n      tokenStore: {\n        enabled: 'true'\n      }\n    }\n  }\n}\n",
         "'true' is not allowed; the type expects Boolean"),
    ],
    ids=["unknown-api-version", "misspelt-nested-property", "read-only", "enum-value", "enum-in-ternary",
         "missing-required", "discriminator", "discriminated-element", "array-item", "value-kind", "through-a-variable",
         "name-pattern", "auth-property", "auth-enum", "auth-token-store-kind"],
)
def test_type_check_catches(source, expected, types):
    problems = type_problems(snippet(source), types)
    assert any(expected in p for p in problems), problems


def test_module_parameters_are_checked_against_the_module(types):
    problems = type_problems(snippet(
        "module w 'modules/webapp.bicep' = {\n  name: 'w'\n  params: {\n    nmae: 'x'\n  }\n}\n", "main2.bicep"), types)
    assert any("has no parameter 'nmae'" in p for p in problems)
    assert any("required parameter 'planId'" in p for p in problems)


# --- deploy-time constants (BCP177 / BCP178 / BCP120) -------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_deploy_time_constant_positions_never_depend_on_runtime_values(path, types):
    assert deploy_time_problems(read(path), types) == []


def test_deploy_time_check_finds_bcp178_in_the_old_webapp_module(types):
    problems = deploy_time_problems(read(BEFORE / "webapp.bicep"), types)
    assert len(problems) == 1, problems
    assert "for-expression's collection" in problems[0]
    assert "appInsights.properties (through var sharedSettings)" in problems[0]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("resource ai 'Microsoft.Insights/components@2020-02-02' existing = {\n  name: 'x'\n}\n"
         "var l = [for s in items({ X: ai.properties.ConnectionString }): s.key]\n",
         "for-expression's collection"),
        ("resource ai 'Microsoft.Insights/components@2020-02-02' existing = {\n  name: 'x'\n}\n"
         "var n = ai.properties.AppId\nvar m = '${n}-x'\n"
         "resource s 'Microsoft.Web/sites@2024-04-01' = {\n  name: m\n  location: 'l'\n}\n",
         "resource s: name"),
        ("module a 'modules/identity.bicep' = {\n  name: 'a'\n  params: {\n    name: 'x'\n    location: 'l'\n"
         "    tags: {}\n  }\n}\nresource r 'Microsoft.Resources/resourceGroups@2024-03-01' existing = {\n"
         "  name: a.outputs.id\n}\n",
         "a.outputs"),
        ("var ok = reference('x').enabled\nresource s 'Microsoft.Web/sites@2024-04-01' = if (ok) {\n  name: 'a'\n"
         "  location: 'l'\n}\n",
         "the if-condition"),
        ("resource kv 'Microsoft.KeyVault/vaults@2023-07-01' existing = {\n  name: 'x'\n}\n"
         "resource s 'Microsoft.Web/sites@2024-04-01' = [for k in [kv.listKeys().key1]: {\n  name: 'a'\n"
         "  location: 'l'\n}]\n",
         "kv.listKeys"),
    ],
    ids=["var-loop-over-runtime", "name-through-two-vars", "module-output-as-name", "reference-in-condition",
         "list-in-resource-loop"],
)
def test_deploy_time_check_catches(source, expected, types):
    problems = deploy_time_problems(snippet(source), types)
    assert any(expected in p for p in problems), problems


def test_ids_names_and_parameters_are_deploy_time_constants(types):
    source = ("param prefix string\nresource plan 'Microsoft.Web/serverfarms@2024-04-01' existing = {\n"
              "  name: '${prefix}-plan'\n}\nvar names = [for i in range(0, 2): '${plan.name}-${i}']\n"
              "resource s 'Microsoft.Web/sites@2024-04-01' = [for n in names: {\n  name: n\n  location: 'l'\n"
              "  properties: {\n    serverFarmId: plan.id\n    enabled: plan.properties.status == 'Ready'\n  }\n}]\n")
    assert deploy_time_problems(snippet(source), types) == []


# --- two parsers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_both_parsers_read_every_file_and_find_the_same_declarations(path):
    parsed = read(path)
    assert syntax_errors(parsed.root) == []
    # pycep (checkov's parser, pinned 0.5.1): a file it cannot parse is silently skipped by checkov.
    pycep = BicepParser().parse(file_path=path)
    for kind, key in (("resource", "resources"), ("module", "modules"), ("param", "parameters"),
                      ("var", "variables"), ("output", "outputs")):
        assert {d.symbol for d in parsed.of_kind(kind)} == set(pycep.get(key, {})), kind
    for decl in parsed.resources:
        assert pycep["resources"][decl.symbol]["type"] == decl.type_name
        assert pycep["resources"][decl.symbol]["api_version"] == decl.api_version


def test_a_construct_pycep_cannot_read_is_still_parsed_by_tree_sitter():
    source = "@description('optional')\nparam tag string?\n\nvar tags = [\n  tag ?? 'none'\n]\n"
    with pytest.raises(Exception, match="QMARK"):
        BicepParser().parse(text=source)
    parsed = snippet(source)
    assert syntax_errors(parsed.root) == [] and {d.symbol for d in parsed.of_kind("param")} == {"tag"}


def test_a_syntax_error_is_reported_by_tree_sitter():
    assert syntax_errors(snippet("resource s 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'a'\n").root)
    assert syntax_errors(snippet("var x = [for s in items(y): ]\n").root)
