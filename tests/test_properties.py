"""Property-based tests (issue 6, item 3), with hypothesis.

* The routing decision for arbitrary URLs (IDN hosts, IPv6 literals,
  userinfo, ports, mixed-case schemes, trailing dots, paths, queries,
  fragments) matches the contract (docs/semantics.rst: S1-S5, S7), checked
  against an oracle written from the contract, not from routing.py.
* End to end, for a sample of such URLs: a real fetch reaches the loopback
  service on the port of the URL's scheme, which records the Host and SNI
  the contract says; a decoy listening on the URL's own port sees nothing.
* Arbitrary configuration documents (random keys, types, nesting, broken
  syntax): ``load_env`` yields an ``Env`` or raises ``ConfigError``, never
  another exception, and warns only with ``ConfigWarning``.
* Header names and values with CR, LF (or NUL) are refused before anything
  is sent, whichever way the request is made.
"""

from __future__ import annotations

import ipaddress
import json
import os
import string
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import idna
import pytest
import requests
import tomlkit
import trustme
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from vpc_requests import Binding, ConfigError, RoutingError, VPCService
from vpc_requests._config.config import Env, load_env
from vpc_requests._config.wrangler import ConfigWarning
from vpc_requests._transport.routing import Route, route
from vpc_requests.testing import PrivateService

DEFAULT_PORTS = {"http": 80, "https": 443}
QUICK = settings()  # the profile's count (tests/conftest.py)
E2E = settings(max_examples=max(5, settings.default.max_examples // 12))  # a request per example


# -- URLs -------------------------------------------------------------------------

LABEL = st.from_regex(r"[A-Za-z]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
IDN_LABEL = st.sampled_from(["bücher", "MÜNCHEN", "пример", "例え", "δοκιμή", "café", "ドメイン"])


@dataclass(frozen=True)
class Url:
    """A URL built from parts, so the oracle knows each of them."""

    scheme: str  # as written (mixed case)
    userinfo: str  # "" or "user:pass@"
    host: str  # as written; IPv6 in brackets
    port: str | None  # None: no ":"; "" : a bare ":"; else the digits
    tail: str  # path, query, fragment

    @property
    def text(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.scheme}://{self.userinfo}{self.host}{port}{self.tail}"

    @property
    def bare_host(self) -> str:
        return self.host[1:-1] if self.host.startswith("[") else self.host

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return ipaddress.ip_address(self.bare_host)
        except ValueError:
            return None

    @property
    def non_default_port(self) -> int | None:
        if not self.port:
            return None
        number = int(self.port)
        return None if number == DEFAULT_PORTS[self.scheme.lower()] else number


@st.composite
def hosts(draw: Any, idn: bool = True) -> str:
    kind = draw(st.sampled_from(["name", "idn", "ipv4", "ipv6"] if idn else ["name", "ipv4", "ipv6"]))
    if kind == "ipv4":
        return str(draw(st.ip_addresses(v=4)))
    if kind == "ipv6":
        address = draw(st.ip_addresses(v=6))
        text = draw(st.sampled_from([address.compressed, address.exploded]))
        return f"[{text.upper() if draw(st.booleans()) else text}]"
    labels = draw(st.lists(LABEL, min_size=1, max_size=4))
    if kind == "idn":
        labels.insert(draw(st.integers(0, len(labels))), draw(IDN_LABEL))
    return ".".join(labels) + ("." if draw(st.booleans()) else "")


SCHEMES = st.sampled_from(["http", "https"]).flatmap(
    lambda s: st.sampled_from([s, s.upper(), s.capitalize(), s[:2].upper() + s[2:]])
)
USERINFO = st.one_of(
    st.just(""),
    st.from_regex(r"[A-Za-z0-9._~-]{1,8}(:[A-Za-z0-9._~!$&'()*+,;=-]{0,8})?@", fullmatch=True),
)
PORTS = st.one_of(
    st.none(), st.just(""), st.sampled_from(["80", "443", "8080"]), st.integers(1, 65535).map(str)
)
TAILS = st.one_of(
    st.just(""),
    st.text(alphabet="abcXYZ019/@:?#=&%._~-", max_size=20).map(lambda t: "/" + t),
    st.text(alphabet="abc@:/=&", max_size=10).map(lambda t: "?" + t),
    st.text(alphabet="abc@:/", max_size=10).map(lambda t: "#" + t),
)


@st.composite
def urls(draw: Any, idn: bool = True) -> Url:
    return Url(draw(SCHEMES), draw(USERINFO), draw(hosts(idn)), draw(PORTS), draw(TAILS))


SERVICES = st.sampled_from([
    VPCService(ipv4="127.0.0.1", http_port=8080, https_port=8443),
    VPCService(hostname="origin.internal"),  # 80 and 443
    VPCService(ipv6="::1", http_port=81),  # http only
    VPCService(ipv4="10.0.1.50", https_port=9443),  # https only
])


def expected_route(service: VPCService, url: Url) -> Route | None:
    """The contract, stated independently of routing.py; ``None``: refused."""
    scheme = url.scheme.lower()
    port = service.port_for(scheme)
    if port is None:  # S3
        return None
    ip = url.ip
    host_header = url.host  # S4: the URL's host as written, never the userinfo
    if url.non_default_port is not None:
        host_header += f":{url.non_default_port}"
    sni = None  # S5
    if scheme == "https":
        sni = str(ip) if ip is not None else url.host.lower().rstrip(".")
    return Route(
        scheme=scheme,
        url_host=url.bare_host.lower(),
        host_header=host_header,
        server_hostname=sni,
        connect_host=service.origin_host,  # S1
        port=port,  # S2: the service's port for the scheme, never the URL's
    )


@QUICK
@given(service=SERVICES, url=urls())
@example(service=VPCService(ipv4="127.0.0.1", http_port=8080), url=Url("http", "", "h", "", "/x"))
@example(service=VPCService(ipv4="127.0.0.1", http_port=8080), url=Url("HTTP", "u:p@", "[::1]", "", "/"))
def test_route_matches_the_contract(service: VPCService, url: Url) -> None:
    expected = expected_route(service, url)
    if expected is None:
        with pytest.raises(RoutingError, match=f"no {url.scheme.lower()}_port"):
            route(service, url.text, "API")
        return
    assert route(service, url.text, "API") == expected


BAD_SCHEMES = st.sampled_from(["ftp", "ws", "wss", "file", "gopher", "httpx", "htp", "https+unix", "h"])


@QUICK
@given(service=SERVICES, scheme=BAD_SCHEMES, url=urls())
def test_other_schemes_are_refused(service: VPCService, scheme: str, url: Url) -> None:
    with pytest.raises(RoutingError, match="only fetches absolute http:// or https://"):
        route(service, f"{scheme}://{url.text.partition('://')[2]}", "API")


@QUICK
@given(service=SERVICES, url=urls(), form=st.sampled_from(["path", "noscheme", "schemeless", "oneslash", "opaque"]))
def test_relative_urls_are_refused(service: VPCService, url: Url, form: str) -> None:
    rest = url.text.partition("://")[2]
    text = {
        "path": "/" + rest,
        "noscheme": rest,
        "schemeless": "//" + rest,
        "oneslash": f"{url.scheme}:/{rest}",
        "opaque": f"{url.scheme}:{rest}",
    }[form]
    with pytest.raises(RoutingError):
        route(service, text, "API")


@QUICK
@given(service=SERVICES, text=st.one_of(st.text(max_size=40), st.text(max_size=40).map(lambda t: "http://" + t),
                                        st.text(max_size=40).map(lambda t: "HTTPS://" + t)))
def test_any_text_routes_or_is_refused_and_never_leaks_the_userinfo(service: VPCService, text: str) -> None:
    try:
        found = route(service, text, "API")
    except RoutingError as exc:
        if "://" in text and "@" in text:
            userinfo = text.partition("://")[2].split("/")[0].rpartition("@")[0]
            if len(userinfo) >= 3:
                assert userinfo not in str(exc)
        return
    assert found.connect_host == service.origin_host
    assert found.port == service.port_for(found.scheme)
    assert not any(c in found.host_header for c in "\r\n\t @")
    assert found.host_header


# -- end to end: what a real service sees -------------------------------------------


@dataclass
class Loopback:
    http: PrivateService
    https: PrivateService
    decoy: PrivateService
    binding: Binding
    ca_path: str


@pytest.fixture(scope="module")
def loopback() -> Iterator[Loopback]:
    ca = trustme.CA()
    with PrivateService(name="e2e-http") as plain, \
            PrivateService(tls=True, ca=ca, names=("unused.example",), name="e2e-https") as tls, \
            PrivateService(name="decoy") as decoy, \
            tempfile.TemporaryDirectory() as folder:
        ca_path = os.path.join(folder, "ca.pem")
        ca.cert_pem.write_to_path(ca_path)
        # verify_ca: the chain is checked, the (arbitrary) names are not
        service = VPCService(ipv4="127.0.0.1", http_port=plain.port, https_port=tls.port,
                             cert_verification_mode="verify_ca")
        with Binding("E2E", service) as binding:
            yield Loopback(plain, tls, decoy, binding, ca_path)


@st.composite
def e2e_urls(draw: Any) -> Url:
    url = draw(urls())
    if draw(st.integers(0, 3)) == 0:  # aim at the decoy: host and port of a live listener
        url = Url(url.scheme, url.userinfo, draw(st.sampled_from(["127.0.0.1", "localhost"])),
                  "DECOY", url.tail)
    return url


def as_requests_sends(host: str) -> str:
    """The URL host as requests prepares it: IDNA A-labels, lower case."""
    if host.startswith("[") or host.isascii():
        return host.lower()
    return idna.encode(host, uts46=True).decode("ascii")


@E2E
@given(url=e2e_urls())
def test_a_real_fetch_sends_the_contracts_host_and_sni_to_the_service(loopback: Loopback, url: Url) -> None:
    if url.port == "DECOY":
        url = Url(url.scheme, url.userinfo, url.host, str(loopback.decoy.port), url.tail)
    scheme = url.scheme.lower()
    target = loopback.https if scheme == "https" else loopback.http
    for service in (loopback.http, loopback.https, loopback.decoy):
        service.clear()

    response = loopback.binding.fetch(url.text, verify=loopback.ca_path)

    assert response.status_code == 200
    assert loopback.decoy.seen == []
    other = loopback.http if target is loopback.https else loopback.https
    assert other.seen == []
    [seen] = target.seen
    assert seen.port == target.port
    host = as_requests_sends(url.host)
    if url.non_default_port is not None:
        host += f":{url.non_default_port}"
    assert seen.host == host
    if scheme == "https":
        assert seen.sni == (None if url.ip is not None else host.split(":")[0].rstrip("."))
    else:
        assert seen.sni is None and not seen.tls
    if ":" in url.userinfo:  # requests turns user:password@ into Basic auth
        assert seen.header("Authorization").startswith("Basic ")


def test_twin_plain_requests_goes_to_the_urls_own_port(loopback: Loopback) -> None:
    # What the property above rules out: plain requests uses the URL's port.
    loopback.decoy.clear()
    with requests.Session() as session:
        assert session.get(f"http://127.0.0.1:{loopback.decoy.port}/").status_code == 200
    assert len(loopback.decoy.seen) == 1


# -- CR/LF in headers -------------------------------------------------------------------

BREAKS = st.sampled_from(["\r", "\n", "\r\n", "\r\n ", "\n\t", "\r\nX-Injected: 1", "\x00"])
SAFE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"),
               min_size=1, max_size=10)
# A field name is an RFC 9110 token; h11 (the recorder's parser) refuses others, as servers do.
TOKEN = st.text(alphabet=st.sampled_from("!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters),
                min_size=1, max_size=10)


@st.composite
def bad_headers(draw: Any) -> tuple[str, str]:
    name = draw(SAFE)
    value = draw(SAFE) + draw(BREAKS) + draw(st.text(alphabet="abc: ", max_size=5))
    if draw(st.booleans()):
        return name, value
    return name + draw(BREAKS) + draw(SAFE), draw(SAFE)


@pytest.fixture(scope="module")
def recorder() -> Iterator[PrivateService]:
    with PrivateService(name="crlf") as service:
        yield service


PATHS = ["fetch", "fetch-prepared", "session", "session-prepared"]


def send_with_header(binding: Binding, path: str, url: str, name: str, value: str) -> requests.Response:
    if path == "fetch":
        return binding.fetch(url, headers={name: value})
    if path == "session":
        with binding.session() as session:
            return session.get(url, headers={name: value})
    prepared = requests.Request("GET", url).prepare()
    prepared.headers[name] = value  # after preparation: requests' checks are past
    if path == "fetch-prepared":
        return binding.fetch(prepared)
    with binding.session() as session:
        return session.send(prepared)


@QUICK
@given(header=bad_headers(), path=st.sampled_from(PATHS), scheme=st.sampled_from(["http", "https"]))
def test_headers_with_cr_or_lf_are_refused_before_sending(
    recorder: PrivateService, header: tuple[str, str], path: str, scheme: str
) -> None:
    binding = Binding("CRLF", VPCService(ipv4="127.0.0.1", http_port=recorder.port, https_port=recorder.port))
    before = recorder.connections
    with pytest.raises(requests.exceptions.InvalidHeader):
        send_with_header(binding, path, f"{scheme}://internal-api.company.local/", *header)
    assert recorder.seen == []
    assert recorder.connections == before  # not even connected


@E2E
@given(name=TOKEN, value=SAFE, path=st.sampled_from(PATHS))
def test_twin_clean_headers_arrive_exactly(recorder: PrivateService, name: str, value: str, path: str) -> None:
    assume(name.lower() not in {"host", "content-length", "transfer-encoding", "connection",
                                "expect", "te", "upgrade", "accept-encoding", "trailer"})
    name = "X-" + name
    recorder.clear()
    binding = Binding("CRLF", VPCService(ipv4="127.0.0.1", http_port=recorder.port))
    assert send_with_header(binding, path, "http://internal-api.company.local/", name, value).ok
    assert recorder.seen[0].header(name) == value


# -- configuration documents ---------------------------------------------------------

WORDS = [
    "API", "PRIVATE_API", "svc-1", "svc-2", "tun-1", "internal-api.company.local", "10.0.1.50",
    "::1", "[::1]", "http", "tcp", "verify_full", "verify_ca", "disabled", "direct",
    "socks5://127.0.0.1:1080", "http://proxy:3128", "ftp://x", "", " ", "dev", "prod",
    "a" * 300, "10.0.0.1:53", "host.example:80", "https://x/y", "é",
]
KEYS = [
    "vpc_services", "binding", "service_id", "service", "remote", "env", "name", "services",
    "tunnels", "type", "host", "hostname", "ipv4", "ipv6", "resolver_network", "network",
    "resolver_ips", "tunnel_id", "http_port", "https_port", "tls_settings",
    "cert_verification_mode", "result", "created_at", "updated_at",
]
SCALARS = st.one_of(
    st.sampled_from(WORDS), st.text(max_size=10), st.integers(-3, 70000),
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)
ANY_KEY = st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=8))
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_KEY, inner, max_size=4),
    max_leaves=10,
)


def either(good: Any) -> Any:
    """Mostly a plausible value, sometimes anything at all."""
    return st.one_of(good, good, good, VALUES)


def table(fields: dict[str, Any]) -> Any:
    return st.fixed_dictionaries({}, optional={k: either(v) for k, v in fields.items()}).flatmap(
        lambda d: st.dictionaries(ANY_KEY, VALUES, max_size=1).map(lambda extra: {**extra, **d})
        if len(d) % 3 == 0 else st.just(d)
    )


NAMES = st.sampled_from(["API", "PRIVATE_API", "OTHER", ""])
IDS = st.sampled_from(["svc-1", "svc-2", "svc-3", ""])
BINDING_ENTRY = table({"binding": NAMES, "service_id": IDS, "service": st.sampled_from(["one", "two"]),
                       "remote": st.booleans()})
BINDING_LIST = st.lists(BINDING_ENTRY, max_size=3)
WRANGLER = table({
    "name": st.text(max_size=5),
    "vpc_services": BINDING_LIST,
    "env": st.dictionaries(st.sampled_from(["dev", "prod", "x y"]), table({"vpc_services": BINDING_LIST}),
                           max_size=2),
})
HOST = table({
    "hostname": st.sampled_from(["internal-api.company.local", "a..b", "x" * 254, "h:80", "10.0.0.1"]),
    "ipv4": st.sampled_from(["10.0.1.50", "127.0.0.1", "300.1.1.1", "::1"]),
    "ipv6": st.sampled_from(["::1", "[fe80::1]", "fe80::1%eth0", "10.0.0.1"]),
    "resolver_network": table({"tunnel_id": IDS, "resolver_ips": st.lists(
        st.sampled_from(["10.0.0.53", "10.0.0.53:53", "[::1]:53", "bad"]), max_size=2)}),
    "network": table({"tunnel_id": st.sampled_from(["tun-1", "tun-2"])}),
})
SERVICE = table({
    "service_id": IDS, "name": st.sampled_from(["one", "two"]), "type": st.sampled_from(["http", "tcp"]),
    "host": HOST, "http_port": st.integers(-1, 70000), "https_port": st.integers(0, 65536),
    "tls_settings": table({"cert_verification_mode": st.sampled_from(["verify_full", "verify_ca",
                                                                      "disabled", "nope"])}),
})
SERVICES_DOC = st.one_of(
    table({"services": st.lists(SERVICE, max_size=3),
           "tunnels": st.dictionaries(st.sampled_from(["tun-1", "tun-2"]),
                                      st.sampled_from(["direct", "socks5://127.0.0.1:1080", "http://p:3128",
                                                       "ftp://nope", "socks5://", ""]), max_size=2)}),
    st.lists(SERVICE, max_size=3),  # the API's JSON list (JSON only)
    table({"result": st.lists(SERVICE, max_size=3)}),
)


def to_toml(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    try:
        return tomlkit.dumps(doc)
    except (TypeError, ValueError):  # a value tomlkit cannot write: random text instead
        return None


@st.composite
def texts(draw: Any, docs: Any, kind: str, intact: int = 3) -> str:
    doc = draw(docs)
    text = json.dumps(doc, indent=draw(st.sampled_from([None, 2]))) if kind != "toml" else to_toml(doc)
    if text is None:
        text = draw(st.text(max_size=60))
    if kind == "jsonc" and draw(st.booleans()):
        text = "// a comment\n" + text.replace(",\n", ",\n/* c */", 1)
    damage = draw(st.sampled_from(["none"] * intact + ["cut", "insert", "garbage"]))
    if damage == "cut" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif damage == "insert":
        at = draw(st.integers(0, len(text)))
        inserted = draw(st.sampled_from(['"', "[", "]", "{", "=", ",", "\n", "\x00", "#", "\\", "'''"]))
        text = text[:at] + inserted + text[at:]
    elif damage == "garbage":
        text = draw(st.text(max_size=80))
    return text


VALID_HOSTS = st.sampled_from([
    {"hostname": "internal-api.company.local"},
    {"hostname": "api.internal", "resolver_network": {"tunnel_id": "tun-1", "resolver_ips": ["10.0.0.53"]}},
    {"ipv4": "10.0.1.50", "network": {"tunnel_id": "tun-1"}},
    {"ipv4": "10.0.1.50", "ipv6": "fd00::50"},
])


@st.composite
def valid_documents(draw: Any) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """A wrangler document whose bindings all name services of a valid
    services document (and the environment to read)."""
    count = draw(st.integers(1, 3))
    services = []
    for index in range(count):
        service: dict[str, Any] = {"service_id": f"svc-{index}", "name": f"name-{index}", "type": "http",
                                   "host": draw(VALID_HOSTS)}
        if draw(st.booleans()):
            service["https_port"] = draw(st.integers(1, 65535))
        if draw(st.booleans()):
            service["tls_settings"] = {"cert_verification_mode": draw(st.sampled_from(["verify_ca", "disabled"]))}
        services.append(service)
    bindings = [{"binding": f"B{index}", "service_id": f"svc-{index}"} for index in range(count)]
    environment = draw(st.sampled_from([None, "dev"]))
    wrangler: dict[str, Any] = {"name": "worker", "vpc_services": bindings}
    if environment:
        wrangler["env"] = {"dev": {"vpc_services": bindings}}
    return wrangler, {"services": services, "tunnels": {"tun-1": "direct"}}, environment


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at] if at else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        found.extend(_paths(inner, at + (key,)))
    return found


@st.composite
def perturbed(draw: Any, doc: Any) -> Any:
    """``doc`` with up to two values replaced by anything, or deleted."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(VALUES)
    return doc


@st.composite
def configurations(draw: Any) -> tuple[str, str, str, str, str | None]:
    wrangler_kind = draw(st.sampled_from(["toml", "json", "jsonc"]))
    services_kind = draw(st.sampled_from(["toml", "json", "missing"]))
    if draw(st.booleans()):  # near a valid configuration
        wrangler_doc, services_doc, environment = draw(valid_documents())
        wrangler = draw(texts(perturbed(wrangler_doc), wrangler_kind, intact=12))
        services = draw(texts(perturbed(services_doc), services_kind, intact=12))
        if services_kind == "missing" and draw(st.booleans()):
            services_kind = "toml"
    else:  # anywhere at all
        wrangler = draw(texts(WRANGLER, wrangler_kind))
        services = draw(texts(SERVICES_DOC, services_kind))
        environment = draw(st.one_of(st.none(), st.sampled_from(["dev", "prod", "x y", "nope"])))
    if services_kind == "missing":
        services = ""
    return wrangler_kind, wrangler, services_kind, services, environment


@QUICK
@given(config=configurations())
def test_load_env_yields_an_env_or_a_config_error(config: tuple[str, str, str, str, str | None]) -> None:
    wrangler_kind, wrangler, services_kind, services, environment = config
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"wrangler.{wrangler_kind}")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(wrangler)
        services_path = os.path.join(folder, "vpc-services.toml" if services_kind != "json" else "services.json")
        if services_kind != "missing":
            with open(services_path, "w", encoding="utf-8") as handle:
                handle.write(services)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                env = load_env(path, services=services_path, environment=environment)
            except ConfigError as exc:
                assert exc.path is not None and os.path.basename(exc.path) in str(exc)
                env = None
        event("ConfigError" if env is None else f"Env with {min(len(env), 2)}+ bindings")
        assert [w.category for w in caught if not issubclass(w.category, ConfigWarning)] == []
        if env is not None:
            assert isinstance(env, Env)
            names = list(env)
            assert len(set(names)) == len(names) == len(env)
            for name in names:
                assert isinstance(env[name], Binding) and env[name].name == name
                assert isinstance(env[name].service, VPCService)
                env[name].close()


def test_twin_a_valid_configuration_loads(tmp_path: Any) -> None:
    (tmp_path / "wrangler.toml").write_text('vpc_services = [{ binding = "API", service_id = "svc-1" }]\n')
    (tmp_path / "vpc-services.toml").write_text(
        '[[services]]\nservice_id = "svc-1"\ntype = "http"\n'
        '[services.host]\nipv4 = "10.0.1.50"\n[services.host.network]\ntunnel_id = "tun-1"\n'
    )
    env = load_env(tmp_path / "wrangler.toml")
    assert list(env) == ["API"] and env.API.service.ipv4 == "10.0.1.50"
    (tmp_path / "vpc-services.toml").write_text('[[services]]\nservice_id = "svc-1"\nhttp_port = "80"\n')
    with pytest.raises(ConfigError):
        load_env(tmp_path / "wrangler.toml")
