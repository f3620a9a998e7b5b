"""MCP tool servers (VOICEBRIDGE_MCP_SERVERS): their configuration, and the session's `mcp` tool entries.

Voice Live itself lists an MCP server's tools and calls them (the bridge never talks to the server); the
bridge declares each server in session.update next to the `@tool` functions, relays the approval
requests to the person talking (session/approvals.py), and shows the calls like function calls.

The setting is a JSON list, the same prefixed `base64:` and base64-encoded, or the path of a file holding
one:

    [{"label": "docs", "url": "https://mcp.example.com/mcp",
      "allowed_tools": ["search"],
      "require_approval": "always" | "never" | {"always": ["delete_page"], "never": ["search"]},
      "headers": {"Authorization": {"secret": "docs-mcp-token"}}}]

A header's value is always the name of a Key Vault secret (read with the app's identity when a session
connects, credentials.VaultSecrets), never the value itself: settings are visible to anyone who can read
the app's configuration, and a token there would leak with it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

APPROVAL_MODES = ("never", "always")
# The service's own default when require_approval is absent ("always"), made explicit.
DEFAULT_APPROVAL = "always"
_LABEL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOOL = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,128}$")
_SECRET = re.compile(r"^[0-9A-Za-z-]{1,127}$")
MAX_SERVERS = 16
MAX_FILE_BYTES = 64 * 1024


class McpConfigError(ValueError):
    """A server entry is wrong; the message says which one and what is accepted."""


@dataclass(frozen=True, slots=True)
class McpServer:
    label: str
    url: str
    allowed_tools: tuple[str, ...] | None = None  # None: every tool the server lists
    # "never", "always", or per tool: (("always", ("delete",)), ("never", ("search",)))
    require_approval: str | tuple[tuple[str, tuple[str, ...]], ...] = DEFAULT_APPROVAL
    header_secrets: tuple[tuple[str, str], ...] = ()  # (header name, Key Vault secret name)

    @property
    def loopback(self) -> bool:
        return is_loopback(urlparse(self.url).hostname or "")

    def needs_approval(self, tool: str) -> bool:
        """What the service does for `tool` under this server's require_approval (unlisted tools: always)."""
        if isinstance(self.require_approval, str):
            return self.require_approval == "always"
        modes = dict(self.require_approval)
        if tool in modes.get("never", ()):
            return False
        return True

    def definition(self, headers: dict[str, str] | None = None) -> dict:
        """The session.update `tools` entry (the SDK's MCPServer), with the secrets' values as headers."""
        entry: dict = {"type": "mcp", "server_label": self.label, "server_url": self.url}
        if self.allowed_tools is not None:
            entry["allowed_tools"] = list(self.allowed_tools)
        if isinstance(self.require_approval, str):
            entry["require_approval"] = self.require_approval
        else:
            entry["require_approval"] = {mode: list(tools) for mode, tools in self.require_approval}
        if headers:
            entry["headers"] = dict(headers)
        return entry


@dataclass(frozen=True, slots=True)
class McpConfig:
    """The MCP settings: the servers, and how the page is asked about calls that need approval."""

    servers: tuple[McpServer, ...] = ()
    approval_s: float = 30.0  # a call that needs approval waits this long for the page's answer
    show_arguments: bool = False  # the approval dialog shows the call's arguments (they may be personal)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load(raw: str) -> tuple[McpServer, ...]:
    """The servers of a VOICEBRIDGE_MCP_SERVERS value: inline JSON, `base64:` and the JSON in base64 (what an
    azd environment carries into main.parameters.json unharmed: no quotes to escape), or a JSON file's path."""
    text = raw.strip()
    if text.startswith("base64:"):
        try:
            text = base64.b64decode(text[len("base64:"):], validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise McpConfigError("starts with base64: but the rest is not base64 of UTF-8 JSON") from None
    elif not text.startswith("["):
        path = Path(text)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise McpConfigError(f"the file {text} is larger than {MAX_FILE_BYTES // 1024} KiB")
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise McpConfigError(
                f"is neither a JSON list nor a readable file ({text}: {exc.strerror or exc})"
            ) from None
    try:
        entries = json.loads(text)
    except ValueError as exc:
        raise McpConfigError(f"is not valid JSON ({exc})") from None
    if not isinstance(entries, list):
        raise McpConfigError("must be a JSON list of servers, like [{\"label\": \"docs\", \"url\": \"https://...\"}]")
    if len(entries) > MAX_SERVERS:
        raise McpConfigError(f"may list at most {MAX_SERVERS} servers")
    servers, labels = [], set()
    for index, entry in enumerate(entries):
        server = _server(index, entry)
        if server.label in labels:
            raise McpConfigError(f"the label {server.label!r} is used twice: each server needs its own label")
        labels.add(server.label)
        servers.append(server)
    return tuple(servers)


def _server(index: int, entry: object) -> McpServer:
    where = f"server {index + 1}"
    if not isinstance(entry, dict):
        raise McpConfigError(f"{where} must be an object with \"label\" and \"url\"")
    unknown = set(entry) - {"label", "url", "allowed_tools", "require_approval", "headers"}
    if unknown:
        raise McpConfigError(
            f"{where} has unknown field(s) {', '.join(sorted(unknown))}; the fields are label, url, allowed_tools, "
            "require_approval, headers"
        )
    label = entry.get("label")
    if not isinstance(label, str) or not _LABEL.match(label):
        raise McpConfigError(f"{where}: \"label\" must be 1 to 64 letters, digits, _ or -, got {label!r}")
    where = f"server {label!r}"
    url = entry.get("url")
    parsed = urlparse(url) if isinstance(url, str) else None
    if parsed is None or not parsed.hostname or parsed.scheme not in ("https", "http"):
        raise McpConfigError(f"{where}: \"url\" must be an https URL such as https://mcp.example.com/mcp, got {url!r}")
    if parsed.scheme == "http" and not is_loopback(parsed.hostname):
        raise McpConfigError(
            f"{where}: \"url\" must use https (plain http is allowed only for a loopback address in development), "
            f"got {url!r}"
        )
    if parsed.username or parsed.password:
        raise McpConfigError(f"{where}: \"url\" must not carry credentials; use a header from a Key Vault secret")
    allowed = entry.get("allowed_tools")
    if allowed is not None:
        if not isinstance(allowed, list) or not all(isinstance(t, str) and _TOOL.match(t) for t in allowed):
            raise McpConfigError(f"{where}: \"allowed_tools\" must be a list of tool names")
        allowed = tuple(allowed)
    return McpServer(label, url, allowed, _approval(where, entry.get("require_approval", DEFAULT_APPROVAL)),
                     _headers(where, entry.get("headers")))


def _approval(where: str, value: object) -> str | tuple[tuple[str, tuple[str, ...]], ...]:
    if isinstance(value, str) and value in APPROVAL_MODES:
        return value
    if (
        isinstance(value, dict)
        and value
        and set(value) <= set(APPROVAL_MODES)
        and all(isinstance(v, list) and all(isinstance(t, str) and _TOOL.match(t) for t in v) for v in value.values())
    ):
        both = set(value.get("always", ())) & set(value.get("never", ()))
        if both:
            raise McpConfigError(f"{where}: \"require_approval\" names {', '.join(sorted(both))} as both always and never")
        return tuple((mode, tuple(value[mode])) for mode in APPROVAL_MODES if mode in value)
    raise McpConfigError(
        f"{where}: \"require_approval\" must be \"never\", \"always\" or per tool "
        "{\"always\": [tool names], \"never\": [tool names]}"
    )


def _headers(where: str, value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise McpConfigError(f"{where}: \"headers\" must be an object of header name to {{\"secret\": \"<name>\"}}")
    pairs = []
    for name, source in value.items():
        if not _HEADER.match(name):
            raise McpConfigError(f"{where}: {name!r} is not a header name")
        if isinstance(source, str):
            raise McpConfigError(
                f"{where}: header {name!r} has a plain value; header values come from Key Vault secrets only: "
                f"write {{\"secret\": \"<secret name>\"}} and store the value in the vault"
            )
        secret = source.get("secret") if isinstance(source, dict) and set(source) == {"secret"} else None
        if not isinstance(secret, str) or not _SECRET.match(secret):
            raise McpConfigError(
                f"{where}: header {name!r} must be {{\"secret\": \"<Key Vault secret name: letters, digits, dashes>\"}}"
            )
        pairs.append((name, secret))
    return tuple(pairs)
