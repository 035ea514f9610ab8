"""The ``vpc-requests`` command line: parse, call the public API, print.

::

    vpc-requests bindings                       # binding -> service -> origin
    vpc-requests service create internal-api --hostname internal-api.company.local
    vpc-requests fetch PRIVATE_API http://internal-api.company.local/users -i
    vpc-requests fetch-many PRIVATE_API urls.txt --out results.jsonl -j 16
    vpc-requests check                          # TCP + TLS probe of every binding
    vpc-requests check API --sni internal-api.company.local   # one binding, the name its URLs use
    vpc-requests demo

Global options, as wrangler's, before or after the subcommand:
``-c/--config FILE`` (the wrangler file), ``-e/--env NAME``, ``--cwd DIR``,
``--services FILE``, ``--debug`` (tracebacks; also ``VPC_REQUESTS_DEBUG=1``),
and ``--version``.

Exit status: 0 on success (``fetch``: for any HTTP status), 1 when a probe
fails, ``check`` finds no binding, or a binding cannot reach its service
(``fetch-many``: for any item), 2 for bad input (a broken file, an invalid
value, an unknown name, a services file another edit keeps locked), 70 for an
internal error (a bug: one line, the traceback with ``--debug``), 130 on
Ctrl-C. Files are edited under a lock and never left half-written; every
line printed shows control characters escaped (``\x1b``), so a hostile name
cannot drive the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn, TextIO, cast

import requests

from .._bindings.binding import Binding
from .._bindings.network import NetworkBinding
from .._config.config import Env, load_env
from .._config.services_file import (
    DEFAULT_LOCK_TIMEOUT,
    LockTimeout,
    ServiceInUse,
    ServicesFile,
    create_service,
    default_services_path,
    delete_service,
    find_service,
    read_services,
    update_service,
)
from .._config.wrangler import find_wrangler_file
from .._errors import ProxyError, VPCError
from .._model.hosts import host_port
from .._model.modes import APP_PROTOCOLS, CERT_VERIFICATION_MODES, DEFAULT_CERT_VERIFICATION_MODE, SERVICE_TYPES
from .._model.service import VPCService
from .._transport.tunnels import parse_tunnel
from .._version import __version__
from .jobs import run_fetch_many
from .probe import Probe, probe_binding

__all__ = ["main"]

PROG = "vpc-requests"
_HOST_FIELDS = ("hostname", "ipv4", "ipv6")


class UsageError(VPCError):
    """Bad command-line input that argparse cannot see (exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    :param argv: the arguments, without the program name; ``sys.argv[1:]``
        when ``None``.
    :returns: the exit status.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments or os.environ.get("VPC_REQUESTS_DEBUG", "") not in ("", "0")
    try:
        return _run(arguments)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line, never a traceback unless asked
        if debug:
            traceback.print_exc()
        _say(f"internal error: {type(exc).__name__}: {exc} (this is a bug; --debug or "
             "VPC_REQUESTS_DEBUG=1 shows the traceback)")
        return 70


def _run(arguments: list[str]) -> int:
    """Parse, run the subcommand, turn the errors it may expect into one
    line and an exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version, or a usage error argparse reported
        return exc.code if isinstance(exc.code, int) else 2
    if getattr(args, "handler", None) is None:
        getattr(args, "usage_of", parser).print_help(sys.stderr)
        return 2
    debug = args.debug or os.environ.get("VPC_REQUESTS_DEBUG", "") not in ("", "0")
    try:
        with _working_directory(args.cwd), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return int(args.handler(args))
            finally:
                for message in dict.fromkeys(str(warning.message) for warning in caught):
                    _say(f"warning: {message}")  # each once (fetch-many repeats them)
    except ProxyError as exc:
        _debug_traceback(debug)
        _say(str(exc))
        return 1
    except LockTimeout as exc:
        _debug_traceback(debug)
        _say(f"error: {exc} (--lock-timeout SECONDS waits longer)")
        return 2
    except (VPCError, OSError, ImportError, requests.RequestException) as exc:
        _debug_traceback(debug)
        _say(f"error: {exc}")
        return 2


def _debug_traceback(debug: bool) -> None:
    if debug:
        traceback.print_exc()


@contextlib.contextmanager
def _working_directory(path: str | None) -> Iterator[None]:
    """``--cwd DIR``: run as if started in ``DIR`` (as wrangler's ``--cwd``;
    relative paths are then relative to it); the directory is restored after."""
    if path is None:
        yield
        return
    before = os.getcwd()
    try:
        os.chdir(path)
    except OSError as exc:
        raise UsageError(f"--cwd {path}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        os.chdir(before)


def _say(text: str) -> None:
    """One line on stderr, prefixed with the program's name; control
    characters escaped."""
    print(f"{PROG}: {_printable(' '.join(text.split()))}", file=sys.stderr)


def _printable(value: object) -> str:
    """``str(value)`` with every character that is not printable (control
    characters such as ESC, bidirectional overrides, line separators)
    written as a Python escape (``\\x1b``, ``\\u202e``), so text from a
    file cannot move the cursor, recolour or hide output.

    :param value: anything; ``None`` stays ``"None"``.
    """
    text = str(value)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _print(*values: object) -> None:
    """``print`` with control characters escaped."""
    print(*(_printable(value) for value in values))


# -- the parser -------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr,
    ``vpc-requests: error: ...``, exit status 2 (``--help`` is unchanged).
    Subparsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')" if self.prog != PROG else ""
        _say(f"error: {message}{hint}")
        self.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser. The global options (:func:`_add_common`) are
    accepted before or after any subcommand; each subcommand's arguments are
    defined by its own ``_add_*`` function, listed in :data:`_COMMANDS` and
    :data:`_SERVICE_ACTIONS`."""
    common = _Parser(add_help=False)
    _add_common(common, argparse.SUPPRESS)
    parser = _Parser(
        prog=PROG,
        description="Cloudflare Workers VPC Service bindings for requests: inspect, edit, probe.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_common(parser, None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in _COMMANDS:
        add(commands, common)
    return parser


def _add_common(parser: argparse.ArgumentParser, default: str | None) -> None:
    """The global options, named as wrangler names them. Subcommands get
    them with a ``SUPPRESS`` default, so that a value given before the
    subcommand is not reset by its absence after it."""
    parser.add_argument("-c", "--config", metavar="FILE", default=default,
                        help="the Worker's wrangler.toml / wrangler.json / wrangler.jsonc "
                             "(default: wrangler.json, then .jsonc, then .toml, in the current "
                             "directory or a parent, as wrangler finds it)")
    parser.add_argument("--services", metavar="FILE", default=default,
                        help="the services file (default: vpc-services.toml beside the wrangler file)")
    parser.add_argument("-e", "--env", metavar="NAME", default=default,
                        help="use the bindings of [env.NAME] (default: $CLOUDFLARE_ENV, else the top level)")
    parser.add_argument("--cwd", metavar="DIR", default=default,
                        help="run as if started in DIR (relative paths are relative to it)")
    parser.add_argument("--debug", action="store_true", default=default if default is not None else False,
                        help="show the traceback of an error (also VPC_REQUESTS_DEBUG=1)")


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (the API's shape for services)")


def _add_tls_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cacert", metavar="FILE", help="CA bundle to verify origins with")
    parser.add_argument("-k", "--insecure", action="store_true", help="do not verify certificates")


def add_edit_options(parser: argparse.ArgumentParser) -> None:
    """Options of every subcommand that edits the services file."""
    parser.add_argument("--lock-timeout", type=_timeout, default=DEFAULT_LOCK_TIMEOUT, metavar="SECONDS",
                        help="wait this long for another edit of the services file to finish "
                             f"(default: {DEFAULT_LOCK_TIMEOUT:g})")


def _add_demo(commands: Any, common: argparse.ArgumentParser) -> None:
    demo = commands.add_parser("demo", parents=[common], help="show binding semantics against loopback services")
    demo.set_defaults(handler=cmd_demo)


def _add_bindings(commands: Any, common: argparse.ArgumentParser) -> None:
    bindings = commands.add_parser("bindings", parents=[common], help="list binding -> service -> origin")
    _add_json(bindings)
    bindings.set_defaults(handler=cmd_bindings)


def _add_service_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    service = commands.add_parser("service", parents=[common], help="manage the services file")
    actions = service.add_subparsers(title="actions", metavar="ACTION")
    service.set_defaults(handler=None, usage_of=service)
    for add in _SERVICE_ACTIONS:
        add(actions, common)


def _add_service_create(actions: Any, common: argparse.ArgumentParser) -> None:
    create = actions.add_parser("create", parents=[common], help="add a service")
    create.add_argument("positional_name", nargs="?", metavar="NAME", help="the service's name")
    _add_service_flags(create)
    add_edit_options(create)
    _add_json(create)
    create.set_defaults(handler=cmd_service_create)


def _add_service_list(actions: Any, common: argparse.ArgumentParser) -> None:
    listing = actions.add_parser("list", parents=[common], help="list the services")
    _add_json(listing)
    listing.set_defaults(handler=cmd_service_list)


def _add_service_get(actions: Any, common: argparse.ArgumentParser) -> None:
    get = actions.add_parser("get", parents=[common], help="show one service")
    get.add_argument("service", metavar="SERVICE", help="the service's id or name")
    _add_json(get)
    get.set_defaults(handler=cmd_service_get)


def _add_service_update(actions: Any, common: argparse.ArgumentParser) -> None:
    update = actions.add_parser("update", parents=[common], help="change a service's fields")
    update.add_argument("service", metavar="SERVICE", help="the service's id or name")
    _add_service_flags(update)
    add_edit_options(update)
    _add_json(update)
    update.set_defaults(handler=cmd_service_update)


def _add_service_delete(actions: Any, common: argparse.ArgumentParser) -> None:
    delete = actions.add_parser("delete", parents=[common], help="remove a service")
    delete.add_argument("service", metavar="SERVICE", help="the service's id or name")
    delete.add_argument("--force", action="store_true",
                        help="delete it even when bindings of the wrangler file still name it")
    add_edit_options(delete)
    delete.set_defaults(handler=cmd_service_delete)


def _add_pull_commands(actions: Any, common: argparse.ArgumentParser) -> None:
    """``service pull`` and ``service diff``: the account's services through
    the Cloudflare API (:mod:`vpc_requests._config.pull`)."""
    pull = actions.add_parser("pull", parents=[common],
                              help="mirror the account's services into the services file (Cloudflare API)")
    diff = actions.add_parser("diff", parents=[common],
                              help="show how the services file differs from the account; exit 1 when it does")
    for parser in (pull, diff):
        parser.add_argument("--account-id", metavar="ID",
                            help="the Cloudflare account (default: CLOUDFLARE_ACCOUNT_ID, "
                                 "else the wrangler file's account_id); the token is CLOUDFLARE_API_TOKEN")
    pull.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    add_edit_options(pull)
    pull.set_defaults(handler=cmd_service_pull)
    diff.set_defaults(handler=cmd_service_diff)


def _add_service_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of ``wrangler vpc service create|update`` (4.x); the rules
    between them are checked by :func:`_check_service_flags`."""
    parser.add_argument("--name", help="the service's name")
    parser.add_argument("--type", choices=SERVICE_TYPES,
                        help="the service's type: http (fetch) or tcp (connect, forward); create's default: http")
    parser.add_argument("--tcp-port", type=int, metavar="PORT",
                        help="a tcp service's port (required for tcp) [conflicts with --http-port/--https-port]")
    parser.add_argument("--app-protocol", choices=APP_PROTOCOLS, help="a tcp service's application protocol")
    parser.add_argument("--tunnel-id", help="the Cloudflare Tunnel that reaches the service")
    parser.add_argument("--hostname", help="the origin's DNS name (for tcp, HOST:PORT sets --tcp-port too) "
                                           "[conflicts with --ipv4/--ipv6]")
    parser.add_argument("--ipv4", help="the origin's IPv4 address")
    parser.add_argument("--ipv6", help="the origin's IPv6 address")
    parser.add_argument("--resolver-ips", metavar="IPS", help="comma-separated DNS resolvers (with --hostname)")
    parser.add_argument("--http-port", type=int, metavar="PORT", help="an http service's port for http URLs")
    parser.add_argument("--https-port", type=int, metavar="PORT", help="an http service's port for https URLs")
    parser.add_argument("--cert-verification-mode", choices=CERT_VERIFICATION_MODES,
                        help=f"how the origin's certificate is checked (default: {DEFAULT_CERT_VERIFICATION_MODE})")
    parser.add_argument("--certificate-authority", metavar="CERT_ID",
                        help="id of an uploaded CA certificate the origin's certificate must chain to "
                             "(needs a verification mode other than disabled); map it to a local file "
                             "in the services file's [certificates] table")
    parser.add_argument("--client-certificate", metavar="CERT_ID",
                        help="id of an uploaded client (mTLS) certificate presented to the origin; "
                             "map it in [certificates]")


def _check_service_flags(args: argparse.Namespace, current: VPCService | None = None) -> dict[str, Any]:
    """:class:`VPCService` fields from the flags, checked by wrangler's rules
    (and the type's: ports of the other type are refused).

    :param current: the service being updated (``None`` for create).
    :raises UsageError: for flags that do not go together.
    """
    fields = _service_fields(args)
    kind = fields.get("type") or (current.type if current is not None else "http")
    hostname = fields.get("hostname")
    if kind == "tcp" and hostname and ":" in hostname:  # wrangler: --hostname db.internal:5432
        host, _, port = hostname.rpartition(":")
        if port.isdigit() and host and ":" not in host:
            if fields.get("tcp_port", int(port)) != int(port):
                raise UsageError(f"conflicting tcp port: --hostname includes port {port} but --tcp-port is "
                                 f"{fields['tcp_port']}; give the port in one place only")
            fields["hostname"], fields["tcp_port"] = host, int(port)
    wrong = ("http_port", "https_port") if kind == "tcp" else ("tcp_port", "app_protocol")
    given = [f"--{key.replace('_', '-')}" for key in wrong if key in fields]
    if given:
        right = "--tcp-port" if kind == "tcp" else "--http-port/--https-port"
        raise UsageError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} only for "
                         f"{'http' if kind == 'tcp' else 'tcp'} services; this service is of type {kind} "
                         f"(it takes {right})")
    if kind == "tcp" and fields.get("tcp_port", current.tcp_port if current is not None else None) is None:
        raise UsageError("tcp services require a --tcp-port")
    mode = fields.get("cert_verification_mode") or (
        current.cert_verification_mode if current is not None else DEFAULT_CERT_VERIFICATION_MODE)
    authority = fields.get("certificate_authority") or (current.certificate_authority if current else None)
    if authority and mode == "disabled":
        raise UsageError(f"--certificate-authority {authority} needs a --cert-verification-mode other than "
                         "disabled (a CA is only used to verify the origin's certificate)")
    return fields


def _add_fetch(commands: Any, common: argparse.ArgumentParser) -> None:
    fetch = commands.add_parser("fetch", parents=[common], help="send one request through a binding (curl-like)")
    fetch.add_argument("binding", metavar="BINDING", help="the binding's name")
    fetch.add_argument("url", metavar="URL", help="absolute http(s) URL; its host is the Host header")
    fetch.add_argument("-X", "--request", dest="method", metavar="METHOD", help="method (default GET, POST with -d)")
    fetch.add_argument("-H", "--header", dest="headers", action="append", default=[], metavar="'NAME: VALUE'",
                       help="add a header (repeatable)")
    fetch.add_argument("-d", "--data", metavar="DATA", help="request body; @FILE reads a file, @- stdin")
    fetch.add_argument("-i", "--include", action="store_true", help="print the status line and headers")
    fetch.add_argument("--timeout", type=_timeout, default=30.0, metavar="SECONDS", help="(default: 30)")
    _add_tls_options(fetch)
    fetch.set_defaults(handler=cmd_fetch)


def _add_forward(commands: Any, common: argparse.ArgumentParser) -> None:
    forward = commands.add_parser("forward", parents=[common],
                                  help="listen locally and pipe each connection through a tcp binding")
    forward.add_argument("binding", metavar="BINDING", help="the binding's name (a tcp service, or a network)")
    forward.add_argument("--listen", metavar="HOST:PORT",
                         help="where to listen (default: 127.0.0.1 and the service's tcp_port, or the next "
                              "free port)")
    forward.add_argument("--allow-remote", action="store_true",
                         help="allow a --listen address that is not loopback: anyone who reaches it can "
                              "use the binding")
    forward.add_argument("--to", metavar="HOST:PORT", help="a network binding's destination in the network")
    forward.add_argument("--timeout", type=_timeout, default=30.0, metavar="SECONDS",
                         help="connect timeout of each upstream connection (default: 30)")
    forward.set_defaults(handler=cmd_forward)


def _timeout(text: str) -> float:
    """``--timeout``: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_fetch_many(commands: Any, common: argparse.ArgumentParser) -> None:
    many = commands.add_parser("fetch-many", parents=[common],
                               help="send one request per input line through a binding; JSON lines out")
    many.add_argument("binding", metavar="BINDING", help="the binding's name")
    many.add_argument("file", metavar="FILE",
                      help="one URL per line, or JSON lines with only url, method, headers, body, json, "
                           "params; - reads stdin")
    many.add_argument("-o", "--out", metavar="PATH", help="write the results here (default: stdout)")
    many.add_argument("-j", "--concurrency", type=_positive_int, default=8, metavar="N",
                      help="requests in flight at once (default: 8; -c is --config, as in wrangler)")
    many.add_argument("--progress", action="store_true", help="show progress on stderr")
    many.add_argument("-i", "--include", action="store_true", help="add each response's headers")
    many.add_argument("--timeout", type=_timeout, default=30.0, metavar="SECONDS",
                      help="per request (default: 30)")
    _add_tls_options(many)
    many.set_defaults(handler=cmd_fetch_many)


def _add_check(commands: Any, common: argparse.ArgumentParser) -> None:
    check = commands.add_parser("check", parents=[common],
                                help="probe every binding's service through its transport: "
                                     "TCP connect, TLS handshake, the tunnel")
    check.add_argument("bindings", nargs="*", metavar="BINDING",
                       help="probe only these bindings (default: every binding)")
    check.add_argument("--timeout", type=_timeout, default=5.0, metavar="SECONDS",
                       help="per connection, handshake and tunnel probe (default: 5)")
    check.add_argument("--sni", metavar="NAME",
                       help="send NAME as SNI and check the certificate against it, as requests to "
                            "https://NAME/ do (default: a hostname service's hostname; an IP service "
                            "sends none and only the certificate's chain is checked)")
    _add_tls_options(check)
    _add_json(check)
    check.set_defaults(handler=cmd_check)


#: The subcommands, in the order ``--help`` lists them: one function each.
_COMMANDS: tuple[Callable[[Any, argparse.ArgumentParser], None], ...] = (
    _add_demo,
    _add_bindings,
    _add_service_commands,
    _add_fetch,
    _add_fetch_many,
    _add_forward,
    _add_check,
)

#: The ``service`` actions, in the order ``service --help`` lists them.
_SERVICE_ACTIONS: tuple[Callable[[Any, argparse.ArgumentParser], None], ...] = (
    _add_service_create,
    _add_service_list,
    _add_service_get,
    _add_service_update,
    _add_service_delete,
    _add_pull_commands,
)


# -- shared helpers -----------------------------------------------------------------


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config) if args.config else find_wrangler_file(".")


def _services_path(args: argparse.Namespace) -> Path:
    return Path(args.services) if args.services else default_services_path(_config_path(args))


def _load(args: argparse.Namespace) -> Env:
    return load_env(args.config, services=args.services, environment=args.env)  # None: discovery


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Rows aligned in columns under ``headers``; control characters in
    cells escaped."""
    cells = [list(map(str, headers))] + [["-" if c is None else _printable(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _transport_url(url: str | None) -> str:
    """A transport URL fit to print (``direct``, or the URL with the
    password as ``***``): :attr:`vpc_requests._transport.tunnels.Transport.url`."""
    return parse_tunnel(url).url


def _host(service: VPCService) -> str:
    return ", ".join(service.addresses if service.hostname else (a for a in (service.ipv4, service.ipv6) if a))


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


# -- demo, bindings ---------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """``demo``: the first issue's walk-through on loopback services."""
    from .demo import run_demo

    return int(run_demo(sys.stdout))


def cmd_bindings(args: argparse.Namespace) -> int:
    """``bindings``: each binding, its service, origin, ports and tunnel."""
    env = _load(args)
    if args.json:
        _print_json([_network_json(binding) if isinstance(binding, NetworkBinding) else
                     {"binding": name, "service_id": binding.service.service_id,
                      "service": binding.service.to_api(), "tunnel": _transport_url(binding.tunnel)}
                     for name, binding in env.bindings.items()])
        return 0
    if not len(env):
        _print(_no_bindings(env))
        return 0
    rows = [(name, "(network)", b.tunnel_id or b.network_id, "(the URL decides)", None, None,
             _transport_url(b.tunnel)) if isinstance(b, NetworkBinding) else
            (name, b.service.name, b.service.service_id, _host(b.service), b.service.port_for("http"),
             b.service.port_for("https"), _transport_url(b.tunnel)) for name, b in env.bindings.items()]
    print(_table(("BINDING", "SERVICE", "SERVICE ID", "HOST", "HTTP", "HTTPS", "TUNNEL"), rows))
    return 0


def _network_json(binding: NetworkBinding) -> dict[str, Any]:
    """A ``vpc_networks`` binding for ``bindings --json``."""
    return {"binding": binding.name, "tunnel_id": binding.tunnel_id, "network_id": binding.network_id,
            "tunnel": _transport_url(binding.tunnel)}


# -- service ----------------------------------------------------------------------


def _service_fields(args: argparse.Namespace) -> dict[str, Any]:
    """:class:`VPCService` arguments from the flags that were given."""
    fields: dict[str, Any] = {}
    for key in ("name", "type", "tunnel_id", *_HOST_FIELDS, "http_port", "https_port", "tcp_port", "app_protocol",
                "cert_verification_mode", "certificate_authority", "client_certificate"):
        value = getattr(args, key, None)
        if value is not None:
            fields[key] = value
    if args.resolver_ips is not None:
        fields["resolver_ips"] = tuple(ip.strip() for ip in args.resolver_ips.split(",") if ip.strip())
    return fields


def _edit_options(args: argparse.Namespace) -> dict[str, Any]:
    """How an edit waits for the services file's lock: ``--lock-timeout``,
    and a line on stderr when it has to wait."""
    return {"lock_timeout": args.lock_timeout, "waiting": _say}


def cmd_service_create(args: argparse.Namespace) -> int:
    """``service create [NAME]``: validate, then add to the services file."""
    fields = _check_service_flags(args)
    if args.positional_name and fields.get("name", args.positional_name) != args.positional_name:
        raise UsageError(f"two names given: {args.positional_name!r} and --name {fields['name']!r}")
    fields.setdefault("name", args.positional_name)
    if not fields["name"]:
        raise UsageError("a name is required: vpc-requests service create NAME --hostname ...")
    service = create_service(_services_path(args), VPCService(**fields), **_edit_options(args))
    return _report(args, "Created", service)


def cmd_service_update(args: argparse.Namespace) -> int:
    """``service update SERVICE``: change the given fields."""
    if not _service_fields(args):
        raise UsageError("nothing to change; give --name, --hostname, --http-port, ...")
    fields = _check_service_flags(args, find_service(_services(args), args.service))
    service = update_service(_services_path(args), args.service, **_edit_options(args), **fields)
    return _report(args, "Updated", service)


def cmd_service_delete(args: argparse.Namespace) -> int:
    """``service delete SERVICE``: refused while a binding of the wrangler
    file (any environment) names the service, unless ``--force``."""
    try:
        service = delete_service(_services_path(args), args.service, bound_in=_bound_in(args),
                                 **_edit_options(args))
    except ServiceInUse as exc:
        raise UsageError(f"{exc}; remove those bindings first, or give --force to delete it anyway") from None
    _print(f"Deleted service {service.name} ({service.service_id}) from {_services_path(args)}")
    return 0


def _bound_in(args: argparse.Namespace) -> Path | None:
    """The wrangler file whose bindings ``service delete`` checks: the one
    given with ``--config``, else the one found; ``None`` with ``--force``
    or when there is no wrangler file (no binding can name the service)."""
    if args.force:
        return None
    if args.config:
        return Path(args.config)
    try:
        found = find_wrangler_file(".")
    except VPCError:
        return None
    return found if found.is_file() else None


def _report(args: argparse.Namespace, verb: str, service: VPCService) -> int:
    if args.json:
        _print_json(service.to_api())
    else:
        _print(f"{verb} service {service.name} ({service.service_id}) in {_services_path(args)}")
    return 0


def _services(args: argparse.Namespace) -> ServicesFile:
    return read_services(_services_path(args), missing_ok=not args.services)


def cmd_service_list(args: argparse.Namespace) -> int:
    """``service list``: a table with ``wrangler vpc service list``'s
    columns (ports and host as it writes them, the full tunnel id) plus how
    this machine reaches the tunnel; or the API's JSON list."""
    contents = _services(args)
    if args.json:
        _print_json([s.to_api() for s in contents.services.values()])
        return 0
    if not contents.services:
        _print(f"no services in {contents.path}")
        return 0
    rows = [(s.service_id, s.name, s.type, _ports(s), _host(s), s.tunnel_id, s.created_at, s.updated_at,
             _transport_url(contents.tunnels.get(s.tunnel_id or ""))) for s in contents.services.values()]
    print(_table(("ID", "NAME", "TYPE", "PORTS", "HOST", "TUNNEL", "CREATED", "MODIFIED", "TRANSPORT"), rows))
    return 0


def _ports(service: VPCService) -> str:
    """``HTTP:80, HTTPS:443``, as wrangler's list writes ports, but the
    ports requests really use (defaults included)."""
    if service.type == "tcp":
        port = f"TCP:{service.tcp_port if service.tcp_port is not None else '-'}"
        return port + (f" ({service.app_protocol})" if service.app_protocol else "")
    return ", ".join(f"{scheme.upper()}:{service.port_for(scheme)}" for scheme in ("http", "https")
                     if service.port_for(scheme) is not None)


def cmd_service_get(args: argparse.Namespace) -> int:
    """``service get SERVICE``: one service with ``wrangler vpc service
    get``'s labels, or as API JSON."""
    contents = _services(args)
    service = find_service(contents, args.service)
    if args.json:
        _print_json(service.to_api())
        return 0
    rows = _details(service, contents)
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        _print(f"{label + ':':<{width}} {'-' if value is None else value}")
    return 0


def _details(service: VPCService, contents: ServicesFile) -> list[tuple[str, object]]:
    """``service get``'s lines: wrangler's labels, in wrangler's order
    (host fields and tunnel only when set), then the certificate ids with
    their local files, then this machine's transport."""
    rows: list[tuple[str, object]] = [("Service ID", service.service_id), ("Name", service.name),
                                      ("Type", service.type)]
    if service.type == "tcp":
        rows += [("TCP Port", service.tcp_port), ("App Protocol", service.app_protocol)]
    else:
        explicit = service.http_port is not None or service.https_port is not None
        rows += [("HTTP Port", _port_text(service, "http", explicit)),
                 ("HTTPS Port", _port_text(service, "https", explicit))]
    rows.append(("Cert Verification Mode", service.cert_verification_mode))
    rows += [(label, _certificate_text(contents, cert_id)) for label, cert_id in (
        ("Certificate Authority", service.certificate_authority),
        ("Client Certificate", service.client_certificate)) if cert_id is not None]
    rows += [(label, getattr(service, key)) for label, key in (("IPv4", "ipv4"), ("IPv6", "ipv6"),
                                                                 ("Hostname", "hostname"))
             if getattr(service, key) is not None]
    if service.tunnel_id is not None:
        rows.append(("Tunnel ID", service.tunnel_id))
    if service.resolver_ips:
        rows.append(("Resolver IPs", ", ".join(service.resolver_ips)))
    rows.append(("Transport", _transport_url(contents.tunnels.get(service.tunnel_id or ""))))
    rows += [(label, value) for label, value in (("Created", service.created_at), ("Modified", service.updated_at))
             if value is not None]
    return rows


def _certificate_text(contents: ServicesFile, cert_id: str) -> str:
    """A certificate id and its local files, or that it has none."""
    files = contents.certificates.get(cert_id)
    if files is None:
        return f"{cert_id} (no local file: TLS to the origin fails until [certificates] maps it)"
    return f"{cert_id} ({', '.join(f'{k}={v}' for k in ('ca', 'cert', 'key') if (v := getattr(files, k)))})"


def _port_text(service: VPCService, scheme: str, explicit: bool) -> str:
    port = service.port_for(scheme)
    if port is None:
        return f"- ({scheme} not allowed)"
    return str(port) if explicit else f"{port} (default)"


# -- service pull, service diff -----------------------------------------------------


def _account_id(args: argparse.Namespace) -> str:
    from .._config.pull import resolve_account_id

    return resolve_account_id(args.account_id, wrangler_file=_config_path(args), environment=args.env)


def cmd_service_pull(args: argparse.Namespace) -> int:
    """``service pull [--account-id ID] [--dry-run]``: mirror the account's
    services into the services file; exit 2 (file untouched) when the API refuses."""
    from .._config.pull import pull_services

    account, path = _account_id(args), _services_path(args)
    plan = pull_services(path, account, dry_run=args.dry_run, **_edit_options(args))
    for change in plan.changes:
        print(change.describe())
    if not plan.changes:
        print(f"{path} already holds the {len(plan.services)} services of account {account}")
    elif args.dry_run:
        print(f"dry run: {plan.summary()} in {path}; nothing written")
    else:
        done = ", ".join(f"{plan.count(a)} {a}d" for a in ("create", "update", "delete"))
        print(f"Pulled account {account} into {path}: {done}")
    return 0


def cmd_service_diff(args: argparse.Namespace) -> int:
    """``service diff [--account-id ID]``: the differences between the
    services file and the account, ``-`` only in the file, ``+`` only in the
    account, ``~`` different; exit 0 when equal, 1 when not (as ``diff``)."""
    from .._config.pull import diff_services

    account, path = _account_id(args), _services_path(args)
    plan = diff_services(path, account)
    if not plan.changes:
        return 0
    print(f"--- {path}")
    print(f"+++ account {account}")
    for change in plan.changes:
        print(change.describe())
    return 1


# -- fetch ------------------------------------------------------------------------


def _binding(args: argparse.Namespace) -> Binding:
    return _named(_load(args), args.binding)


def _named(env: Env, name: str) -> Binding:
    try:
        return env[name]
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def _request_options(args: argparse.Namespace) -> dict[str, Any]:
    """``timeout`` and ``verify`` for fetches, from ``--timeout``, ``-k``, ``--cacert``."""
    kwargs: dict[str, Any] = {"timeout": args.timeout}
    if args.insecure or args.cacert:
        kwargs["verify"] = False if args.insecure else args.cacert
    return kwargs


def cmd_fetch(args: argparse.Namespace) -> int:
    """``fetch BINDING URL``: one request through the binding, body to stdout."""
    binding = _binding(args)
    body = _body(args.data)
    kwargs = _request_options(args)
    response = binding.fetch(
        args.url, method=args.method or ("POST" if body is not None else "GET"),
        headers=_headers(args.headers), body=body, **kwargs)
    out = _binary_stdout()
    if args.include:
        out.write(_head(response))
    out.write(response.content)
    out.flush()
    return 0


def _headers(values: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip() or name != name.strip():
            raise UsageError(f"bad header {value!r}; write -H 'Name: value'")
        headers[name] = text.strip()
    return headers


def _body(data: str | None) -> bytes | None:
    if data is None:
        return None
    if data == "@-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        return Path(data[1:]).read_bytes()
    return data.encode("utf-8")


def _head(response: requests.Response) -> bytes:
    version = {10: "1.0", 11: "1.1", 20: "2"}.get(getattr(response.raw, "version", 11), "1.1")
    lines = [f"HTTP/{version} {response.status_code} {response.reason or ''}".rstrip()]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def _binary_stdout() -> IO[bytes]:
    sys.stdout.flush()
    return cast("IO[bytes]", getattr(sys.stdout, "buffer", None) or _TextAsBinary(sys.stdout))


class _TextAsBinary:
    """A byte sink over a text stream without ``.buffer`` (e.g. ``StringIO``)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, data: bytes) -> int:
        return self.stream.write(data.decode("utf-8", "replace"))

    def flush(self) -> None:
        self.stream.flush()


# -- fetch-many -------------------------------------------------------------------


def cmd_fetch_many(args: argparse.Namespace) -> int:
    """``fetch-many BINDING FILE``: :func:`vpc_requests._cli.jobs.run_fetch_many`
    over the file's lines; exit 1 when any item failed."""
    binding = _binding(args)
    with _lines(args.file) as lines, _output(args.out) as out:
        return run_fetch_many(binding, lines, out, concurrency=args.concurrency, progress=args.progress,
                              include_headers=args.include, **_request_options(args))


@contextlib.contextmanager
def _lines(path: str) -> Iterator[Iterable[str]]:
    """The input's lines, read lazily (``-``: stdin). Undecodable bytes
    become U+FFFD, so such a line fails on its own."""
    if path == "-":
        yield sys.stdin
        return
    with open(path, encoding="utf-8", errors="replace") as handle:
        yield handle


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8") as handle:
        yield handle


# -- check ------------------------------------------------------------------------


def cmd_forward(args: argparse.Namespace) -> int:
    """``forward BINDING``: a local forwarder until Ctrl-C (exit 130) or
    SIGTERM (exit 0) (:mod:`vpc_requests._bindings.forward`)."""
    from .._bindings.forward import open_forwarder, parse_listen, serve
    from .._transport.tcp import check_tcp

    binding = _binding(args)
    if isinstance(binding, NetworkBinding):
        if not args.to:
            raise UsageError(f"{args.binding} is a network binding: give the destination, --to HOST:PORT")
        port = int(args.to.rpartition(":")[2]) if args.to.rpartition(":")[2].isdigit() else 0
        where = f"{args.to} in {binding.describe()}"
    else:
        port = check_tcp(binding.service, binding.name)
        where = f"{binding.service.origin_host}:{port} via {parse_tunnel(binding.tunnel).url}"
    try:
        host, port = parse_listen(args.listen, port) if args.listen else ("127.0.0.1", port)
        forwarder = open_forwarder(
            lambda signal: binding.connect(args.to, timeout=args.timeout, signal=signal), host, port,
            next_free=not args.listen, allow_remote=args.allow_remote, name=binding.name,
            warn=lambda text: _say(f"warning: {text}"))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    shown = host_port(*forwarder.address)
    return serve(forwarder, f"forwarding {shown} -> {binding.name} ({where}); Ctrl-C to stop", sys.stdout)


def cmd_check(args: argparse.Namespace) -> int:
    """``check``: probe every binding through its transport
    (:func:`vpc_requests._cli.probe.probe_binding`); exit 1 when any probe fails."""
    env = _load(args)
    bindings = [_named(env, name) for name in dict.fromkeys(args.bindings)] or env.bindings.values()
    verify: bool | str = False if args.insecure else (args.cacert or True)
    probes = [probe for binding in bindings
              for probe in probe_binding(binding, timeout=args.timeout, verify=verify, server_name=args.sni)]
    failed = sum(not p.ok for p in probes)
    if args.json:
        _print_json([p.to_json() for p in probes])
    if not probes:  # nothing was checked: a misspelt key or a wrong --env should not pass
        _say(f"{_no_bindings(env)}; nothing to check")
        return 1
    if args.json:
        return 1 if failed else 0
    rows = [(p.binding, p.scheme, p.origin, p.sni, p.transport, _tunnel_cell(p), _ms(p.connect_ms),
             _ms(p.tls_ms), _result_cell(p)) for p in probes]
    print(_table(("BINDING", "SCHEME", "ORIGIN", "SNI", "TRANSPORT", "TUNNEL", "CONNECT", "TLS", "RESULT"), rows))
    print(f"{len(probes) - failed} of {len(probes)} OK" if not failed else f"{failed} of {len(probes)} FAILED")
    return 1 if failed else 0


def _no_bindings(env: Env) -> str:
    return f"no VPC bindings in {env.path}" + (f" [env.{env.environment}]" if env.environment else "")


def _result_cell(probe: Probe) -> str:
    """``OK``, ``FAIL code: detail``, or ``OK (chain only; ...)`` when the
    certificate's name could not be checked."""
    if probe.code:
        return f"{probe.result} {probe.code}: {probe.detail}"
    if probe.ok and probe.certificate == "chain_no_name":
        return "OK (chain only; give --sni NAME to check a name)"
    return f"{probe.result} {probe.detail}".strip()


def _tunnel_cell(probe: Probe) -> str | None:
    """``ok 0.4 ms``, ``FAIL`` (the RESULT column says why), or ``-`` when direct."""
    if probe.tunnel.ok is None:
        return None
    return f"ok {probe.tunnel.ms:.1f} ms" if probe.tunnel.ok else "FAIL"


def _ms(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f} ms"
