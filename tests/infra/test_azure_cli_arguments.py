"""Every `az` command and flag the deployment scripts and workflows call exists in the real azure-cli.

Most flows run the real CLI against the fake Azure (test_deploy_real_cli.py), where a renamed flag fails by
itself; these checks also reach call sites no flow reaches and the docs' commands. The scenarios below still
use the recording stand-in az (fakecli.py): they only collect each argv for the parser, and fakecli can
answer every call site (a refused registration, a free trial) in one quick pass.
Here the real azure-cli (PyPI, pinned in tests/infra/azure-cli.txt, installed by `make test` into
.venv/azure-cli because it pins azure-keyvault-secrets 4.7 while the app needs 4.9+) is asked, command by
command, `az <command> --help` with telemetry off and a throw-away config directory; its answer is the
parser's own list of options and allowed values. Nothing is cached between runs and nothing is skipped:
without azure-cli these tests fail.

What is checked: the exact argv of every az call the scripts make in the scenarios below (run with the
stand-ins), every az command named in the scripts (so a call site no scenario reaches still has its
command checked), the az lines of the workflows, and the az commands in the docs' shell blocks.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from infra_helpers import REPO, FakeCloud

AZ = Path(sys.prefix) / "azure-cli" / "bin" / "az"
SCRIPTS = [REPO / "azdeploy.sh", REPO / "scripts" / "rollout.sh", *sorted((REPO / "scripts" / "azd-hooks").glob("*.sh"))]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))

ENV_VALUES = {"AZURE_LOCATION": "swedencentral", "AZURE_RESOURCE_GROUP": "rg-lab", "SERVICE_WEB_NAME": "app-1",
              "AZURE_CONTAINER_REGISTRY_NAME": "cr1", "SERVICE_WEB_URI": "https://app-1.azurewebsites.net"}
ROLLOUT = ("scripts/rollout.sh", "--resource-group", "rg-lab", "--app", "app-1", "--registry", "cr1", "--tag", "t1")
HOOK_ENV = {"AZURE_ENV_NAME": "lab", "AZURE_LOCATION": "swedencentral", "AZURE_SUBSCRIPTION_ID": "sub-1"}
# (argv, environment, scenario) together reaching every az call site in the scripts.
SCENARIOS = [
    (ROLLOUT, {}, {}),
    ((*ROLLOUT, "--builder", "docker"), {}, {}),
    (ROLLOUT, {}, {"acr_tasks_refused": True}),
    (("azdeploy.sh", "--full", "--env", "lab", "--location", "swedencentral", "--yes"), {},
     {"env_exists": False, "env": ENV_VALUES}),
    (("azdeploy.sh", "--full", "--env", "lab", "--yes"), {},
     {"env": ENV_VALUES, "site_exists": True, "deleted_vaults": ["kv-1"],
      "providers": {"Microsoft.Web": "NotRegistered"}}),
    (("azdeploy.sh", "--status", "--env", "lab"), {}, {"env": ENV_VALUES}),
    (("azdeploy.sh", "--teardown", "--env", "lab", "--yes"), {}, {"env": ENV_VALUES}),
    (("scripts/azd-hooks/preprovision.sh",), HOOK_ENV, {"site_exists": True}),
    (("scripts/azd-hooks/preprovision.sh",), HOOK_ENV,
     {"site_exists": True, "deleted_vaults": ["kv-1"], "providers": {"Microsoft.Web": "NotRegistered"}}),
    (("scripts/azd-hooks/predeploy.sh",), {}, {}),
    # Sign-in (issue 13): a new app registration and its service principal, one named by the environment,
    # the redirect URIs after provisioning, and azdeploy.sh --auth entra.
    (("scripts/azd-hooks/preprovision.sh",), {**HOOK_ENV, "VOICEBRIDGE_AUTH": "entra"}, {}),
    (("scripts/azd-hooks/preprovision.sh",), {**HOOK_ENV, "VOICEBRIDGE_AUTH": "entra", "VOICEBRIDGE_AUTH_CLIENT_ID": "a-1"},
     {"apps": {"x": "a-1"}}),
    (("scripts/azd-hooks/postprovision.sh",), {"VOICEBRIDGE_AUTH": "entra", "VOICEBRIDGE_AUTH_CLIENT_ID": "a-1",
                                               "SERVICE_WEB_URI": "https://app-1.azurewebsites.net",
                                               "SERVICE_WEB_STAGING_URI": "https://app-1-staging.azurewebsites.net"},
     {"apps": {"x": "a-1"}}),
    (("azdeploy.sh", "--full", "--env", "lab", "--yes", "--auth", "entra"), {}, {"env": ENV_VALUES}),
]


def az_env(config_dir: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AZD_"))},
        "AZURE_CONFIG_DIR": str(config_dir),
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        "AZURE_CORE_NO_COLOR": "true",
        "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
        # An unknown command must fail here, not go looking for an extension on the network.
        "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
    }


class AzureCli:
    """The real azure-cli's help for one command: its options and their allowed values."""

    def __init__(self, config_dir: Path):
        assert AZ.exists(), f"{AZ} is missing: `make test` installs azure-cli there (tests/infra/azure-cli.txt)"
        self.env = az_env(config_dir)
        self.help: dict[tuple[str, ...], dict[str, set[str] | None] | str] = {}

    def options(self, command: tuple[str, ...]) -> dict[str, set[str] | None] | str:
        """{option: allowed values or None}, or an error message when azure-cli has no such command."""
        if command not in self.help:
            result = subprocess.run([str(AZ), *command, "--help"], env=self.env, capture_output=True, text=True,
                                    timeout=120, stdin=subprocess.DEVNULL)
            out = result.stdout
            if result.returncode != 0 or not re.search(r"(?m)^Command\n", out):
                found = "a command group, not a command" if re.search(r"(?m)^Group\n", out) else "not a command"
                self.help[command] = f"az {' '.join(command)}: {found} ({(result.stderr or out).strip()[:200]})"
            else:
                self.help[command] = parse_help(out)
        return self.help[command]

    def problems(self, argv: list[str]) -> list[str]:
        words = command_words(argv)
        options = self.options(words)
        if isinstance(options, str):
            return [options]
        found = []
        rest = argv[len(words):]
        for i, arg in enumerate(rest):
            if not arg.startswith("-") or arg == "-":
                continue
            flag = arg.split("=", 1)[0]
            if flag not in options:
                found.append(f"az {' '.join(words)}: no option {flag}")
                continue
            allowed = options[flag]
            if allowed and i + 1 < len(rest) and not rest[i + 1].startswith(("-", "$")):
                if rest[i + 1].lower() not in allowed:
                    found.append(f"az {' '.join(words)} {flag}: {rest[i + 1]!r} is not one of {sorted(allowed)}")
        return found


def parse_help(text: str) -> dict[str, set[str] | None]:
    options: dict[str, set[str] | None] = {}
    current: list[str] = []
    description: list[str] = []

    def close():
        if current:
            joined = " ".join(description)
            match = re.search(r"Allowed values: (.*?)\.(?:\s|$)", joined)
            allowed = {v.strip().lower() for v in match.group(1).split(",")} if match else None
            for name in current:
                options[name] = allowed

    for line in text.splitlines():
        match = re.match(r"^    (-[-\w]+(?: -[-\w]+)*)\s+(?:\[Required\]\s*)?:\s?(.*)$", line)
        if match:
            close()
            current, description = match.group(1).split(), [match.group(2)]
        elif line.startswith("      ") and current:
            description.append(line.strip())
        elif not line.startswith(" "):
            close()
            current, description = [], []
    close()
    return options


def command_words(argv: list[str]) -> tuple[str, ...]:
    words = []
    for arg in argv:
        if arg.startswith("-") or not re.fullmatch(r"[a-z][a-z0-9-]*", arg):
            break
        words.append(arg)
    return tuple(words)


def commands_named_in(text: str) -> set[tuple[str, ...]]:
    """Every `az word word ...` outside comments: the command words, up to the first flag or value."""
    found = set()
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for match in re.finditer(r"(?:^|[\s(`'\"])az((?: +[a-z][a-z0-9-]*)+)", line):
            words = tuple(match.group(1).split())
            if words[0] != "azd":  # `for tool in az azd`
                found.add(words)
    return found


def workflow_az_lines() -> list[list[str]]:
    import yaml

    lines = []
    for path in WORKFLOWS:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job.get("steps", []):
                for line in step.get("run", "").replace("\\\n", " ").splitlines():
                    if line.strip().startswith("az "):
                        words = shlex.split(line.split(">", 1)[0].split("|", 1)[0])
                        lines.append(words[1:])
    return lines


DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def documented_az_commands() -> list[tuple[str, list[str]]]:
    """(file, argv) for every az command in the docs' shell blocks, `$(az ...)` substitutions included."""
    found = []
    for path in DOCS:
        for block in re.findall(r"```(?:sh|bash|shell)?\n(.*?)```", path.read_text(), re.S):
            text = block.replace("\\\n", " ")
            pieces = []
            while True:  # innermost command substitutions first, each a command of its own
                match = re.search(r"\$\(([^()]*)\)", text)
                if not match:
                    break
                pieces.append(match.group(1))
                text = text[:match.start()] + "SUBST" + text[match.end():]
            pieces.append(text)
            for piece in pieces:
                pending = ""
                for line in piece.splitlines():
                    pending += line + "\n"
                    try:
                        lexer = shlex.shlex(pending, posix=True, punctuation_chars=True)
                        lexer.whitespace_split = True
                        tokens = list(lexer)
                    except ValueError:
                        continue  # a quoted string goes on on the next line
                    pending = ""
                    for i, token in enumerate(tokens):
                        if token == "az" and i + 1 < len(tokens) and re.fullmatch(r"[a-z][a-z-]*", tokens[i + 1]):
                            argv = []
                            for word in tokens[i + 1:]:
                                if word in ("|", "||", "&&", ";", ")", ">", "&"):
                                    break
                                argv.append(word)
                            found.append((path.name, argv))
    return found


@pytest.fixture(scope="module")
def azure_cli(tmp_path_factory) -> AzureCli:
    return AzureCli(tmp_path_factory.mktemp("azure-config"))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> list[list[str]]:
    """The argv of every az call the scripts made across the scenarios."""
    calls = []
    for argv, env, scenario in SCENARIOS:
        cloud = FakeCloud(tmp_path_factory.mktemp("scenario"))
        cloud.scenario = scenario
        cloud.run(*argv, **env)
        calls += [c["argv"] for c in cloud.calls() if c["prog"] == "az"]
    return calls


def test_every_az_call_the_scripts_make_parses_in_the_real_azure_cli(recorded, azure_cli):
    assert len(recorded) > 40
    problems = sorted({p for argv in recorded for p in azure_cli.problems(argv)})
    assert problems == []


def test_the_scenarios_reach_every_az_command_the_scripts_name(recorded):
    named = set().union(*(commands_named_in(p.read_text()) for p in SCRIPTS))
    reached = {command_words(argv) for argv in recorded}
    # `az login` appears only in messages telling the user what to run.
    assert named - reached - {("login",)} == set()


def test_every_command_named_in_the_scripts_exists(azure_cli):
    named = set().union(*(commands_named_in(p.read_text()) for p in SCRIPTS))
    assert len(named) > 15
    assert sorted(m for c in named if isinstance(m := azure_cli.options(c), str)) == []


def test_the_workflows_az_lines_parse(azure_cli):
    lines = workflow_az_lines()
    assert [command_words(argv) for argv in lines] == [("bicep", "build"), ("bicep", "lint")]
    assert sorted(p for argv in lines for p in azure_cli.problems(argv)) == []


def test_the_az_commands_in_the_docs_parse(azure_cli):
    documented = documented_az_commands()
    assert len(documented) >= 10
    assert sorted({f"{name}: {p}" for name, argv in documented for p in azure_cli.problems(argv)}) == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["webapp", "config", "show", "--resource-groupp", "rg", "--name", "app"], "no option --resource-groupp"),
        (["webapp", "deployment", "slot", "swap", "--slot", "staging", "--target", "production"], "no option --target"),
        (["webapp", "config", "container", "sett", "--name", "app"], "not a command"),
        (["webapp", "config"], "a command group, not a command"),
        (["rest", "--method", "fetch", "--url", "/x"], "'fetch' is not one of"),
        (["account", "show", "--output", "tsvv"], "'tsvv' is not one of"),
        (["ad", "app", "create", "--display-name", "x", "--id-token-issuance", "true"], "no option --id-token-issuance"),
        (["ad", "app", "create", "--display-name", "x", "--sign-in-audience", "MyOrg"], "'MyOrg' is not one of"),
        (["ad", "app", "update", "--id", "x", "--reply-urls", "https://x"], "no option --reply-urls"),
    ],
    ids=["renamed-flag", "shortened-flag", "misspelt-command", "group", "method-value", "output-value",
         "graph-flag", "graph-audience", "graph-old-flag"],
)
def test_the_check_catches(argv, expected, azure_cli):
    assert any(expected in p for p in azure_cli.problems(argv)), azure_cli.problems(argv)
