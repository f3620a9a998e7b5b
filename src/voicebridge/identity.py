"""Who a tab is: the "user key" that per-user limits count by (issue 13).

The key is the App Service Authentication principal when the app is told to trust Easy Auth's headers,
else the first X-Forwarded-For address when it is told to trust its front end, else the socket's peer
address. A header is read only when trusted: without a front end that sets (and strips) it, any client
could send it and pick its own key, dodging the limits or charging them to someone else.

Keys never reach logs or telemetry in clear: `UserKey.hashed` is what they see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

PRINCIPAL_ID = "X-MS-CLIENT-PRINCIPAL-ID"
PRINCIPAL_NAME = "X-MS-CLIENT-PRINCIPAL-NAME"
FORWARDED_FOR = "X-Forwarded-For"
FORWARDED_PROTO = "X-Forwarded-Proto"

# Principal ids are GUIDs and addresses short; anything longer is not what the front end sends.
_MAX_VALUE = 256


@dataclass(frozen=True, slots=True)
class UserKey:
    kind: str  # "principal" (signed in) or "address"
    value: str
    name: str = field(default="", compare=False)  # the signed-in user's display name, when Easy Auth gives one

    @property
    def signed_in(self) -> bool:
        return self.kind == "principal"

    @property
    def hashed(self) -> str:
        """A stable pseudonym for logs and telemetry (the same user on every instance), never the id."""
        digest = hashlib.sha256(f"voicebridge-user\0{self.kind}\0{self.value}".encode()).hexdigest()
        return f"{self.kind[0]}-{digest[:16]}"


def _header(headers: Mapping[str, str], name: str) -> str:
    value = (headers.get(name) or "").strip()
    return value if len(value) <= _MAX_VALUE else ""


def user_key(headers: Mapping[str, str], peer: str, trust_easy_auth: bool, trust_forwarded: bool) -> UserKey:
    """The key of the tab whose upgrade request carried `headers` and came from `peer`."""
    if trust_easy_auth:
        principal = _header(headers, PRINCIPAL_ID)
        if principal:
            return UserKey("principal", principal.lower(), _header(headers, PRINCIPAL_NAME))
    if trust_forwarded:
        # The front end appends the address it saw: the last entry (with a port perhaps: "203.0.113.7:51234",
        # "[2001:db8::1]:51234" for IPv6). Earlier entries are whatever the client sent.
        appended = _appended(headers.get(FORWARDED_FOR) or "")
        if appended and len(appended) <= _MAX_VALUE:
            return UserKey("address", _strip_port(appended))
    return UserKey("address", peer or "unknown")


def principal_name(headers: Mapping[str, str], trust_easy_auth: bool) -> str:
    """Who is signed in, for the page; empty unless Easy Auth's headers are trusted."""
    return _header(headers, PRINCIPAL_NAME) if trust_easy_auth else ""


def request_scheme(headers: Mapping[str, str], scheme: str, trust_forwarded: bool) -> str:
    """The scheme the browser used (the /ws Origin check compares it): behind App Service's TLS front end
    the page is https while this hop is http, which X-Forwarded-Proto says — when the front end is trusted
    to set it. Otherwise the connection's own scheme: a client cannot talk its way into another origin."""
    if trust_forwarded:
        forwarded = _appended(headers.get(FORWARDED_PROTO) or "").lower()
        if forwarded in ("http", "https"):
            return forwarded
    return scheme.lower()


def _appended(value: str) -> str:
    """The entry a proxy appended to a comma-separated forwarding header (several header lines arrive
    joined with commas, so this is also the last line's last entry)."""
    return value.rsplit(",", 1)[-1].strip()


def _strip_port(address: str) -> str:
    if address.startswith("["):  # [v6]:port
        return address[1 : address.find("]")] if "]" in address else address
    if address.count(":") == 1:  # v4:port (a bare v6 address has several colons)
        return address.split(":")[0]
    return address
