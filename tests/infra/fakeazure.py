"""A fake Azure on 127.0.0.1 for the real azure-cli: cloud metadata, Entra ID (OpenID configuration and a token
endpoint), Azure Resource Manager (the resources and actions the deploy scripts touch), Microsoft Graph (with
its `$filter` semantics: `startswith` is a prefix match) and the sites' own /healthz.

Nothing here shapes what the scripts see but the CLI itself: `az` parses the arguments, resolves
`--subscription`, runs `--query` and formats `--output` exactly as it does against Azure. The server only
answers HTTP the way the services document (status codes, error bodies, paging), keeps state (a slot PATCH
changes the slot's image, a swap exchanges them), and records every request for the tests to read.

Built from the services' own rules, never kinder:
- ARM answers an unknown resource with 404 `ResourceNotFound`, a throttled request with 429 and
  `Retry-After` (the CLI retries a few times, then exits non-zero);
- Graph's `startswith(displayName,'x')` matches every name beginning with x; a principal holding only
  `Application.ReadWrite.OwnedBy` may change only the registrations it owns (403
  `Authorization_RequestDenied`, "Insufficient privileges to complete the operation.") and a newly created
  application may be invisible to `servicePrincipals` for a while (replication lag, 400 "does not
  reference a valid application object");
- a site with App Service Authentication on answers 302 to its login page except on excluded paths.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

TENANT = "72f988bf-0000-0000-0000-000000000001"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
OTHER_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000ff"
DEPLOYER = "d0000000-0000-0000-0000-00000000000d"  # the client id the tests sign in with
PIPELINE = "p0000000-0000-0000-0000-00000000000p".replace("p", "e")  # a workflow's service principal
DEPLOYER_SECRET = "not-a-secret"
GRAPH = "/graph"  # Graph lives under this prefix of the one server


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake azure test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@dataclass
class Request:
    method: str
    path: str  # without the query string, as sent
    query: dict[str, str]
    body: object
    caller: str  # the client id (appid) of the bearer token, "" without one

    @property
    def api(self) -> str:
        """'arm', 'graph', 'aad', 'site' or 'metadata'."""
        if self.path.startswith(GRAPH + "/"):
            return "graph"
        if self.path.startswith("/sites/"):
            return "site"
        if self.path.startswith("/metadata/"):
            return "metadata"
        if self.path.startswith("/_test/"):
            return "test"
        if self.path.startswith(f"/{TENANT}/") or self.path.startswith("/common/"):
            return "aad"
        return "arm"


@dataclass
class Failure:
    """Answer the next `times` requests whose method and path match with this status."""

    method: str
    path: re.Pattern
    status: int
    code: str
    message: str
    times: int = 1_000_000


@dataclass
class Site:
    name: str
    group: str
    subscription: str = SUBSCRIPTION
    images: dict[str, str] = field(default_factory=lambda: {"production": "", "staging": ""})
    # What each slot's /healthz reports (the tag of the image it runs) unless a test overrides it.
    health: dict[str, list] = field(default_factory=dict)
    easy_auth: bool = False
    app_settings: dict[str, str] = field(default_factory=dict)


class FakeAzure:
    """The state and the HTTPS server. `url` is the base of every endpoint."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca, cert, key = make_certificates(directory)
        self.lock = threading.Lock()
        self.reset()

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        handler = type("Handler", (_Handler,), {"azure": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-azure", daemon=True)

    def __enter__(self) -> FakeAzure:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def reset(self) -> None:
        """Forget every resource, registration and recorded request (one server serves a whole test session)."""
        self.requests: list[Request] = []
        self.failures: list[Failure] = []
        self.subscriptions = {SUBSCRIPTION: "voicebridge lab", OTHER_SUBSCRIPTION: "someone else's"}
        self.providers: dict[tuple[str, str], str] = {}  # (subscription, namespace) -> state; default Registered
        self.groups: set[tuple[str, str]] = set()  # (subscription, lower-case name)
        self.sites: dict[tuple[str, str, str], Site] = {}
        self.registries: dict[tuple[str, str], str] = {}  # (subscription, name) -> resource group
        self.plans: dict[tuple[str, str], int] = {}  # (subscription, group) -> capacity
        self.models: dict[str, list[str]] = {}  # location -> model names offered
        self.deleted_vaults: list[dict] = []
        self.deleted_ai_accounts: list[dict] = []
        self.quota: dict[str, str] = {}  # subscription -> quotaId; default pay-as-you-go
        # What the Bicep deployment creates, for the azd stand-in's `provision` (it POSTs /_test/provision).
        self.on_provision = None
        # Graph
        self.applications: list[dict] = []
        self.service_principals: list[dict] = []
        # client id -> {"owned_by_only": bool}: what each signed-in principal may do in Graph
        # (the deploying person may register applications; the pipeline holds Application.ReadWrite.OwnedBy)
        self.principals: dict[str, dict] = {DEPLOYER: {"owned_by_only": False}, PIPELINE: {"owned_by_only": True}}
        # appId (or "*": any) -> how many more service principal creations meet replication lag
        self.sp_lag: dict[str, int] = {}

    # ----- describing the world -----

    def add_site(self, group: str, name: str, *, production: str = "", staging: str = "",
                 subscription: str = SUBSCRIPTION, instances: int = 1, easy_auth: bool = False) -> Site:
        """A container site with a staging slot, as main.bicep provisions it ("" = the placeholder image)."""
        self.groups.add((subscription, group.lower()))
        site = Site(name, group, subscription, {"production": production, "staging": staging}, easy_auth=easy_auth)
        self.sites[(subscription, group.lower(), name.lower())] = site
        self.plans[(subscription, group.lower())] = instances
        return site

    def add_registry(self, group: str, name: str, subscription: str = SUBSCRIPTION) -> None:
        self.registries[(subscription, name.lower())] = group

    def add_application(self, display_name: str, *, owners: tuple[str, ...] = (), redirect_uris=()) -> dict:
        app = {"id": str(uuid.uuid4()), "appId": str(uuid.uuid4()), "displayName": display_name,
               "signInAudience": "AzureADMyOrg", "identifierUris": [],
               "web": {"redirectUris": list(redirect_uris), "homePageUrl": None, "logoutUrl": None,
                       "implicitGrantSettings": {"enableIdTokenIssuance": bool(redirect_uris),
                                                 "enableAccessTokenIssuance": False}},
               "_owners": list(owners)}
        self.applications.append(app)
        return app

    def add_deleted_vault(self, name: str, env: str, location: str, subscription: str = SUBSCRIPTION) -> None:
        """What `azd down --purge` leaves of a purge-protected vault."""
        self.deleted_vaults.append({
            "id": f"/subscriptions/{subscription}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}",
            "name": name, "type": "Microsoft.KeyVault/deletedVaults",
            "properties": {"vaultId": f"/subscriptions/{subscription}/resourceGroups/rg-{env}/providers/Microsoft.KeyVault/vaults/{name}",
                           "location": location, "deletionDate": "2026-12-01T00:00:00Z",
                           "scheduledPurgeDate": "2027-03-01T00:00:00Z", "tags": {"azd-env-name": env},
                           "purgeProtectionEnabled": True}})

    def add_deleted_ai_account(self, name: str, group: str, location: str, subscription: str = SUBSCRIPTION) -> None:
        """What `azd down` without --purge leaves of the AI Services account (48 hours)."""
        self.deleted_ai_accounts.append({
            "id": f"/subscriptions/{subscription}/providers/Microsoft.CognitiveServices/locations/{location}/resourceGroups/{group}/deletedAccounts/{name}",
            "name": name, "type": "Microsoft.CognitiveServices/deletedAccounts", "location": location,
            "kind": "AIServices", "sku": {"name": "S0"}, "properties": {"deletionDate": "2026-12-06T00:00:00Z"}})

    def fail(self, method: str, path: str, status: int = 429, code: str = "TooManyRequests",
             message: str = "The request is being throttled.", times: int = 1_000_000) -> None:
        self.failures.append(Failure(method.upper(), re.compile(path, re.I), status, code, message, times))

    def site_url(self, site: Site, slot: str = "production") -> str:
        return f"{self.url}/sites/{site.name}" + ("" if slot == "production" else f"-{slot}")

    def arm(self) -> list[Request]:
        return [r for r in self.requests if r.api == "arm"]

    def graph(self) -> list[Request]:
        return [r for r in self.requests if r.api == "graph"]

    def environment(self, config_dir: Path) -> dict[str, str]:
        """What a process needs to reach this fake with the real CLI (after `login`)."""
        return {"AZURE_CONFIG_DIR": str(config_dir), "REQUESTS_CA_BUNDLE": str(self.ca),
                "CURL_CA_BUNDLE": str(self.ca), "SSL_CERT_FILE": str(self.ca),
                "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_SURVEY_MESSAGE": "false",
                "AZURE_CORE_NO_COLOR": "true", "AZURE_CORE_ONLY_SHOW_ERRORS": "false",
                "AZURE_CORE_INSTANCE_DISCOVERY": "false", "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no"}

    def metadata(self) -> dict:
        return {
            "name": "FakeAzure",
            "portal": self.url,
            "authentication": {"loginEndpoint": self.url, "audiences": [self.url + "/"], "tenant": "common",
                               "identityProvider": "AAD"},
            "media": self.url, "graphAudience": self.url + GRAPH, "graph": self.url + GRAPH,
            "microsoftGraphResourceId": self.url + GRAPH + "/",
            "resourceManager": self.url + "/", "sqlManagement": self.url, "batch": self.url, "gallery": self.url,
            "activeDirectoryDataLake": self.url, "vmImageAliasDoc": self.url,
            "suffixes": {"acrLoginServer": "azurecr.io", "keyVaultDns": "vault.azure.net",
                         "storage": "core.windows.net", "sqlServerHostname": "database.windows.net"},
        }


class _Handler(BaseHTTPRequestHandler):
    azure: FakeAzure
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # the requests are recorded, not printed
        pass

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw and "json" in (self.headers.get("Content-Type") or "json") else raw.decode()
        except ValueError:
            body = raw.decode(errors="replace")
        caller = ""
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            try:
                payload = auth.split()[1].split(".")[1]
                caller = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["appid"]
            except (IndexError, KeyError, ValueError):
                caller = "?"
        request = Request(self.command, path, query, body, caller)
        az = self.azure
        with az.lock:
            az.requests.append(request)
            failure = next((f for f in az.failures if f.times > 0 and f.method == self.command
                            and f.path.search(path)), None)
            if failure:
                failure.times -= 1
                headers = {"Retry-After": "0"} if failure.status == 429 else {}
                if request.api == "graph":
                    self._json(failure.status, {"error": {"code": failure.code, "message": failure.message}}, headers)
                else:
                    self._json(failure.status, {"error": {"code": failure.code, "message": failure.message}}, headers)
                return
            try:
                routed = _route(az, request)
            except _Reply as reply:
                self._json(reply.status, reply.body, reply.headers)
                return
        status, answer, headers = routed
        if isinstance(answer, (bytes, str)):
            self._send(status, answer if isinstance(answer, bytes) else answer.encode(),
                       headers.pop("Content-Type", "text/plain"), headers)
        else:
            self._json(status, answer, headers)

    def _json(self, status: int, body, headers=None) -> None:
        self._send(status, b"" if body is None else json.dumps(body).encode(), "application/json", headers or {})

    def _send(self, status: int, data: bytes, content_type: str, headers: dict) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class _Reply(Exception):
    def __init__(self, status: int, body=None, headers=None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _not_found(kind: str, name: str) -> _Reply:
    return _Reply(404, {"error": {"code": "ResourceNotFound",
                                  "message": f"The Resource '{kind}/{name}' under resource group was not found."}})


def _route(az: FakeAzure, r: Request):
    api = r.api
    if api == "metadata":
        return 200, az.metadata(), {}
    if api == "aad":
        return _aad(az, r)
    if api == "graph":
        return _graph(az, r)
    if api == "site":
        return _site_http(az, r)
    if api == "test" and r.path == "/_test/provision":
        if az.on_provision:
            az.on_provision(r.body)
        return 204, None, {}
    if r.path.startswith("/") and "api-version" not in r.query:
        raise _Reply(400, {"error": {"code": "MissingApiVersionParameter",
                                     "message": "The api-version query parameter (?api-version=) is required for all requests."}})
    return _arm(az, r)


# ----- Entra ID -----

def _aad(az: FakeAzure, r: Request):
    base = f"{az.url}/{TENANT}"
    if r.path.endswith("/.well-known/openid-configuration"):
        return 200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                     "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                     "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                     "issuer": f"{az.url}/{TENANT}/v2.0", "jwks_uri": f"{base}/discovery/v2.0/keys",
                     "response_modes_supported": ["query", "fragment", "form_post"],
                     "tenant_region_scope": None}, {}
    if r.path.endswith("/oauth2/v2.0/token") and r.method == "POST":
        form = {k: v[0] for k, v in parse_qs(r.body if isinstance(r.body, str) else "").items()}
        client = form.get("client_id", "")
        if client not in az.principals or form.get("client_secret") != DEPLOYER_SECRET:
            raise _Reply(401, {"error": "invalid_client",
                               "error_description": "AADSTS7000215: Invalid client secret provided."})
        scope = form.get("scope", "")
        now = int(datetime.datetime.now(datetime.UTC).timestamp())
        token = ".".join([_b64({"typ": "JWT", "alg": "none"}),
                          _b64({"aud": scope.split(" ")[0].removesuffix(".default"), "appid": client,
                                "oid": client, "tid": TENANT, "iat": now, "nbf": now, "exp": now + 3600,
                                "iss": f"{az.url}/{TENANT}/"}), "c2ln"])
        return 200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                     "access_token": token}, {}
    raise _Reply(404, {"error": "not_found"})


# ----- the sites themselves -----

def _site_http(az: FakeAzure, r: Request):
    m = re.fullmatch(r"/sites/([^/]+)(/.*)?", r.path)
    host, rest = m.group(1), m.group(2) or "/"
    for site in az.sites.values():
        for slot in site.images:
            if host == (site.name if slot == "production" else f"{site.name}-{slot}"):
                if site.easy_auth and rest != "/healthz":
                    login = f"{az.site_url(site, slot)}/.auth/login/aad?post_login_redirect_uri={rest}"
                    return 302, b"", {"Location": login}
                if rest == "/healthz":
                    planned = site.health.get(slot)
                    image = site.images[slot]
                    tag = image.rsplit(":", 1)[-1] if image else "placeholder"
                    reply = planned.pop(0) if planned and len(planned) > 1 else (planned[0] if planned else 200)
                    if isinstance(reply, dict):
                        tag, reply = reply.get("tag", tag), reply["code"]
                    if reply == 200:
                        return 200, json.dumps({"status": "ok", "image_tag": tag}), {"Content-Type": "application/json"}
                    return reply, b"unhealthy", {}
                return 200, b"<!doctype html><title>voicebridge</title>", {"Content-Type": "text/html"}
    raise _Reply(404, {"error": "no such site"})


# ----- Azure Resource Manager -----

SUB = r"/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourcegroups/(?P<rg>[^/]+)"
SITE = RG + r"/providers/microsoft\.web/sites/(?P<site>[^/]+)(?:/slots/(?P<slot>[^/]+))?"


def _check_subscription(az: FakeAzure, sub: str) -> None:
    if sub not in az.subscriptions:
        raise _Reply(404, {"error": {"code": "SubscriptionNotFound", "message": f"The subscription '{sub}' could not be found."}})


def _site_json(az: FakeAzure, site: Site, slot: str | None) -> dict:
    slot = slot or "production"
    sid = (f"/subscriptions/{site.subscription}/resourceGroups/{site.group}/providers/Microsoft.Web/sites/{site.name}"
           + ("" if slot == "production" else f"/slots/{slot}"))
    host = az.site_url(site, slot).removeprefix("https://")
    return {"id": sid, "name": site.name if slot == "production" else f"{site.name}/{slot}",
            "type": "Microsoft.Web/sites" + ("" if slot == "production" else "/slots"),
            "kind": "app,linux,container", "location": "Sweden Central",
            "tags": {"azd-service-name": "web", "azd-env-name": "lab"} if slot == "production" else {"azd-env-name": "lab"},
            "properties": {"name": site.name, "state": "Running", "hostNames": [host], "defaultHostName": host,
                           "enabled": True, "resourceGroup": site.group, "httpsOnly": True, "reserved": True,
                           "serverFarmId": f"/subscriptions/{site.subscription}/resourceGroups/{site.group}/providers/Microsoft.Web/serverfarms/plan-1",
                           "siteConfig": {"linuxFxVersion": None}}}


def _config_web(site: Site, slot: str | None) -> dict:
    image = site.images[slot or "production"]
    return {"id": "config/web", "name": "web", "type": "Microsoft.Web/sites/config",
            "properties": {"linuxFxVersion": f"DOCKER|{image}" if image else "DOCKER|mcr.microsoft.com/appsvc/staticsite:latest",
                           "alwaysOn": True, "webSocketsEnabled": True, "http20Enabled": True,
                           "minTlsVersion": "1.2", "ftpsState": "Disabled", "healthCheckPath": "/healthz"}}


def _arm(az: FakeAzure, r: Request):
    p, method = r.path, r.method
    low = p.lower().rstrip("/")
    if low == "/subscriptions" and method == "GET":
        return 200, {"value": [{"id": f"/subscriptions/{s}", "subscriptionId": s, "tenantId": TENANT,
                                "displayName": n, "state": "Enabled", "authorizationSource": "RoleBased",
                                "subscriptionPolicies": {"quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"}}
                               for s, n in az.subscriptions.items()]}, {}
    if low == "/tenants" and method == "GET":
        return 200, {"value": [{"id": f"/tenants/{TENANT}", "tenantId": TENANT, "displayName": "Fake"}]}, {}
    m = re.fullmatch(SUB, low)
    if m and method == "GET":
        _check_subscription(az, m["sub"])
        return 200, {"id": f"/subscriptions/{m['sub']}", "subscriptionId": m["sub"], "tenantId": TENANT,
                     "displayName": az.subscriptions[m["sub"]], "state": "Enabled",
                     "subscriptionPolicies": {"quotaId": az.quota.get(m["sub"], "PayAsYouGo_2014-09-01"),
                                              "spendingLimit": "Off"}}, {}
    m = re.match(SUB, low)
    if not m:
        raise _Reply(404, {"error": {"code": "NotFound", "message": f"no route {method} {p}"}})
    sub = m["sub"]
    _check_subscription(az, sub)

    m = re.fullmatch(SUB + r"/providers/(?P<ns>[^/]+)(?P<action>/register)?", low)
    if m and "/" not in m["ns"]:
        ns = next((n for n in PROVIDER_NAMES if n.lower() == m["ns"]), m["ns"])
        if m["action"] and method == "POST":
            az.providers[(sub, ns)] = "Registered"
        elif method != "GET":
            raise _Reply(405)
        state = az.providers.get((sub, ns), "Registered")
        return 200, {"id": f"/subscriptions/{sub}/providers/{ns}", "namespace": ns, "registrationState": state,
                     "resourceTypes": []}, {}
    m = re.fullmatch(RG, low)
    if m and method == "HEAD":
        return (204 if (sub, m["rg"]) in az.groups else 404), None, {}
    m = re.fullmatch(RG + r"/providers/microsoft\.web/sites", low)
    if m and method == "GET":
        return 200, {"value": [_site_json(az, s, None) for (s_sub, g, _), s in az.sites.items()
                               if s_sub == sub and g == m["rg"]]}, {}
    m = re.fullmatch(RG + r"/providers/microsoft\.web/serverfarms", low)
    if m and method == "GET":
        plans = []
        if (sub, m["rg"]) in az.plans:
            cap = az.plans[(sub, m["rg"])]
            plans.append({"id": f"/subscriptions/{sub}/resourceGroups/{m['rg']}/providers/Microsoft.Web/serverfarms/plan-1",
                          "name": "plan-1", "type": "Microsoft.Web/serverfarms", "kind": "linux",
                          "location": "Sweden Central", "sku": {"name": "P0v3", "tier": "Premium0V3", "capacity": cap},
                          "properties": {"reserved": True, "numberOfWorkers": cap}})
        return 200, {"value": plans}, {}
    m = re.fullmatch(SITE + r"(?P<rest>/.*)?", low)
    if m:
        site = az.sites.get((sub, m["rg"], m["site"]))
        if site is None or (m["slot"] and m["slot"] not in site.images):
            raise _not_found("Microsoft.Web/sites", m["site"])
        return _site_arm(az, r, site, m["slot"], m["rest"] or "")
    m = re.fullmatch(SUB + r"/providers/microsoft\.containerregistry/registries", low)
    if m and method == "GET":
        return 200, {"value": [_registry(sub, g, n) for (s, n), g in az.registries.items() if s == sub]}, {}
    m = re.fullmatch(SUB + r"/resources", low)
    if m and method == "GET":
        flt = r.query.get("$filter", "")
        value = []
        if "microsoft.containerregistry/registries" in flt.lower():
            value = [_registry(sub, g, n) for (s, n), g in az.registries.items() if s == sub]
        return 200, {"value": value}, {}
    m = re.fullmatch(RG + r"/providers/microsoft\.containerregistry/registries/(?P<name>[^/]+)", low)
    if m and method == "GET":
        if (sub, m["name"]) not in az.registries:
            raise _not_found("Microsoft.ContainerRegistry/registries", m["name"])
        return 200, _registry(sub, az.registries[(sub, m["name"])], m["name"]), {}
    if re.fullmatch(SUB + r"/providers/microsoft\.keyvault/deletedvaults", low) and method == "GET":
        return 200, {"value": [v for v in az.deleted_vaults if f"/subscriptions/{sub}/" in v["id"]]}, {}
    if re.fullmatch(SUB + r"/providers/microsoft\.cognitiveservices/deletedaccounts", low) and method == "GET":
        return 200, {"value": [a for a in az.deleted_ai_accounts if f"/subscriptions/{sub}/" in a["id"]]}, {}
    m = re.fullmatch(SUB + r"/providers/microsoft\.cognitiveservices/locations/(?P<loc>[^/]+)/models", low)
    if m and method == "GET":
        offered = az.models.get(m["loc"], ["gpt-realtime", "gpt-4o-transcribe"])
        return 200, {"value": [{"kind": "AIServices", "skuName": "S0",
                                "model": {"format": "OpenAI", "name": n, "version": "2025-08-28",
                                          "skus": [{"name": "GlobalStandard"}]}} for n in offered]}, {}
    raise _Reply(404, {"error": {"code": "NotFound", "message": f"no route {method} {p}"}})


PROVIDER_NAMES = ("Microsoft.Web", "Microsoft.ContainerRegistry", "Microsoft.KeyVault", "Microsoft.CognitiveServices",
                  "Microsoft.OperationalInsights", "Microsoft.Insights", "Microsoft.ManagedIdentity")


def _registry(sub: str, group: str, name: str) -> dict:
    return {"id": f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ContainerRegistry/registries/{name}",
            "name": name, "type": "Microsoft.ContainerRegistry/registries", "location": "swedencentral",
            "sku": {"name": "Basic", "tier": "Basic"},
            "properties": {"loginServer": f"{name}.azurecr.io", "adminUserEnabled": False,
                           "provisioningState": "Succeeded"}}


def _site_arm(az: FakeAzure, r: Request, site: Site, slot: str | None, rest: str):
    method = r.method
    if rest == "" and method == "GET":
        return 200, _site_json(az, site, slot), {}
    if rest == "/config/web" and method == "GET":
        return 200, _config_web(site, slot), {}
    if rest == "/config/web" and method in ("PATCH", "PUT"):
        fx = ((r.body or {}).get("properties") or {}).get("linuxFxVersion") if isinstance(r.body, dict) else None
        if fx is not None:
            site.images[slot or "production"] = fx.removeprefix("DOCKER|")
        return 200, _config_web(site, slot), {}
    if rest == "/publishxml" and method == "POST":
        host = az.site_url(site, slot or "production").removeprefix("https://")
        xml = (f'<publishData><publishProfile profileName="{site.name} - Web Deploy" publishMethod="MSDeploy" '
               f'publishUrl="{host}:443" userName="" userPWD="" /><publishProfile profileName="{site.name} - FTP" '
               f'publishMethod="FTP" publishUrl="ftps://{host}/site/wwwroot" userName="" userPWD="" /></publishData>')
        return 200, xml, {"Content-Type": "application/xml"}
    if rest == "/slotsswap" and method == "POST" and slot:
        target = ((r.body or {}).get("targetSlot") or "production").lower()
        site.images[slot], site.images[target] = site.images[target], site.images[slot]
        return 200, None, {}
    if rest == "/config/authsettingsv2" and method == "GET":
        return 200, {"id": f"{_site_json(az, site, slot)['id']}/config/authsettingsV2", "name": "authsettingsV2",
                     "properties": {"platform": {"enabled": site.easy_auth},
                                    "globalValidation": {"requireAuthentication": site.easy_auth,
                                                         "unauthenticatedClientAction":
                                                         "RedirectToLoginPage" if site.easy_auth else "AllowAnonymous",
                                                         "excludedPaths": ["/healthz"]}}}, {}
    raise _Reply(404, {"error": {"code": "NotFound", "message": f"no route {method} {r.path}"}})


# ----- Microsoft Graph -----

def _graph_error(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, {"error": {"code": code, "message": message,
                                     "innerError": {"request-id": str(uuid.uuid4())}}})


def _public(app: dict) -> dict:
    return {k: v for k, v in app.items() if not k.startswith("_")}


def _matches(item: dict, flt: str) -> bool:
    """The `$filter` clauses azure-cli sends, with Graph's meaning; anything else is a 400 as in Graph."""
    for clause in re.split(r"\s+and\s+", flt.strip()):
        if m := re.fullmatch(r"startswith\((\w+),\s*'((?:[^']|'')*)'\)", clause):
            value = item.get(m[1]) or ""
            # Graph compares startswith case-insensitively.
            if not value.lower().startswith(m[2].replace("''", "'").lower()):
                return False
        elif m := re.fullmatch(r"(\w+) eq '((?:[^']|'')*)'", clause):
            if str(item.get(m[1])).lower() != m[2].replace("''", "'").lower():
                return False
        elif m := re.fullmatch(r"(\w+)/any\((\w):\2 eq '((?:[^']|'')*)'\)", clause):
            if m[3].replace("''", "'").lower() not in [str(v).lower() for v in item.get(m[1]) or []]:
                return False
        else:
            raise _graph_error(400, "BadRequest", f"Invalid filter clause: {clause}")
    return True


def _graph(az: FakeAzure, r: Request):
    path = r.path.removeprefix(GRAPH)
    method, caller = r.method, r.caller
    principal = az.principals.get(caller)
    if principal is None:
        raise _graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
    denied = _graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    if principal.get("graph_refused"):  # e.g. a guest account, or a principal without any Graph permission
        raise denied
    if path == "/v1.0/applications" and method == "GET":
        flt = r.query.get("$filter")
        items = [_public(a) for a in az.applications if flt is None or _matches(a, flt)]
        return 200, {"@odata.context": f"{az.url}{GRAPH}/v1.0/$metadata#applications", "value": items}, {}
    if path == "/v1.0/applications" and method == "POST":
        if principal.get("may_register") is False:  # "Users can register applications" off, no role
            raise denied
        body = dict(r.body or {})
        app = az.add_application(body.get("displayName", ""), owners=(caller,))
        web = body.get("web") or {}
        app["web"]["redirectUris"] = list(web.get("redirectUris") or [])
        app["web"]["implicitGrantSettings"].update(web.get("implicitGrantSettings") or {})
        app["signInAudience"] = body.get("signInAudience", app["signInAudience"])
        return 201, _public(app), {}
    m = re.fullmatch(r"/v1\.0/applications/([^/]+)", path)
    if m:
        app = next((a for a in az.applications if a["id"] == m[1]), None)
        if app is None:
            raise _graph_error(404, "Request_ResourceNotFound",
                               f"Resource '{m[1]}' does not exist or one of its queried reference-property objects are not present.")
        if method == "GET":
            return 200, _public(app), {}
        if method == "PATCH":
            if principal["owned_by_only"] and caller not in app["_owners"]:
                raise denied
            for key, value in (r.body or {}).items():
                if key == "web":
                    for wk, wv in value.items():
                        if wk == "implicitGrantSettings":
                            app["web"]["implicitGrantSettings"].update(wv)
                        else:
                            app["web"][wk] = wv
                else:
                    app[key] = value
            return 204, None, {}
    if path == "/v1.0/servicePrincipals" and method == "GET":
        flt = r.query.get("$filter")
        return 200, {"value": [sp for sp in az.service_principals if flt is None or _matches(sp, flt)]}, {}
    if path == "/v1.0/servicePrincipals" and method == "POST":
        app_id = (r.body or {}).get("appId")
        lagging = app_id if az.sp_lag.get(app_id, 0) > 0 else "*" if az.sp_lag.get("*", 0) > 0 else None
        if lagging:
            az.sp_lag[lagging] -= 1
            raise _graph_error(400, "Request_BadRequest",
                               f"The appId '{app_id}' of the service principal does not reference a valid application object.")
        if not any(a["appId"] == app_id for a in az.applications):
            raise _graph_error(400, "Request_BadRequest",
                               f"The appId '{app_id}' of the service principal does not reference a valid application object.")
        sp = {"id": str(uuid.uuid4()), "appId": app_id, "servicePrincipalNames": [app_id], "accountEnabled": True}
        az.service_principals.append(sp)
        return 201, sp, {}
    m = re.fullmatch(r"/v1\.0/servicePrincipals/([^/]+)", path)
    if m and method == "GET":
        sp = next((s for s in az.service_principals if s["id"] == m[1]), None)
        if sp is None:
            raise _graph_error(404, "Request_ResourceNotFound", f"Resource '{m[1]}' does not exist.")
        return 200, sp, {}
    raise _graph_error(400, "BadRequest", f"Unsupported request {method} {path}")
