"""``vpc-requests demo``: the main job, end to end, with nothing to configure.

It starts two private services on loopback (plain HTTP, and HTTPS with a
throwaway CA whose certificate names ``internal-api.company.local`` and
``10.0.1.50``), binds them as a Worker would, runs the examples of
Cloudflare's binding documentation through ``fetch()``, and prints what each
service actually saw: the connection went to the service, while Host and SNI
came from the URL.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, TextIO

from .._bindings.binding import Binding
from .._errors import VPCError
from .._model.service import VPCService
from ..testing import PrivateService, Seen

__all__ = ["run_demo"]

NAMES = ("internal-api.company.local", "10.0.1.50")


@dataclass
class _Row:
    example: str
    call: str
    seen: Seen | None = None
    status: str = ""


def run_demo(out: TextIO | None = None) -> int:
    """Run the demo and print its table to ``out`` (standard output).

    :returns: 0 when every example behaved as the contract says, else 1.
    """
    out = out or sys.stdout
    with PrivateService(name="demo-http") as plain, PrivateService(
        tls=True, names=NAMES, name="demo-https"
    ) as secure:
        private_api = Binding(
            "PRIVATE_API",
            VPCService(ipv4="127.0.0.1", http_port=plain.port, name="internal-api"),
        )
        secure_api = Binding(
            "SECURE_API",
            VPCService(ipv4="127.0.0.1", https_port=secure.port, name="internal-api-tls"),
        )
        with private_api, secure_api:
            ca = secure.ca_path
            examples: list[tuple[str, str, PrivateService, Callable[[], Any]]] = [
                ("Basic GET", "PRIVATE_API.fetch('http://internal-api.company.local/users')", plain,
                 lambda: private_api.fetch("http://internal-api.company.local/users")),
                ("POST with body", "PRIVATE_API.fetch(..., method='POST', json=..., Authorization)", plain,
                 lambda: private_api.fetch(
                     "http://internal-api.company.local/users", method="POST",
                     headers={"Authorization": "Bearer demo-token"},
                     json={"name": "John Doe", "email": "john@example.com"})),
                ("HTTPS to an IP", "SECURE_API.fetch('https://10.0.1.50/api/data')", secure,
                 lambda: secure_api.fetch("https://10.0.1.50/api/data", verify=ca)),
                ("URL port ignored", "PRIVATE_API.fetch('http://internal-api.company.local:8080/users')", plain,
                 lambda: private_api.fetch("http://internal-api.company.local:8080/users")),
                ("HTTPS by name", "SECURE_API.fetch('https://internal-api.company.local/health')", secure,
                 lambda: secure_api.fetch("https://internal-api.company.local/health", verify=ca)),
                ("Wrong cert name", "SECURE_API.fetch('https://wrong.company.local/')", secure,
                 lambda: secure_api.fetch("https://wrong.company.local/", verify=ca)),
            ]
            rows = []
            for title, call, service, run in examples:
                before = len(service.seen)
                row = _Row(title, call)
                try:
                    row.status = str(run().status_code)
                except VPCError as exc:
                    row.status = str(getattr(exc, "code", type(exc).__name__))
                seen = service.seen[before:]
                row.seen = seen[-1] if seen else None
                rows.append(row)
    _print(out, rows, plain.port, secure.port)
    expected = ["200", "200", "200", "200", "200", "tls_certificate_error"]
    return 0 if [r.status for r in rows] == expected else 1


def _print(out: TextIO, rows: list[_Row], http_port: int, https_port: int) -> None:
    out.write(
        "vpc_requests demo: two private services on loopback, bound as a Worker binds them\n"
        f"  PRIVATE_API -> 127.0.0.1:{http_port} (http)\n"
        f"  SECURE_API  -> 127.0.0.1:{https_port} (https, certificate for "
        f"{', '.join(NAMES)})\n\n"
    )
    header = ("example", "method", "path", "Host seen", "SNI seen", "port", "result")
    table = [header]
    for row in rows:
        seen = row.seen
        table.append((
            row.example,
            seen.method if seen else "-",
            seen.target if seen else "-",
            (seen.host or "-") if seen else "(nothing sent)",
            (seen.sni or "(none)") if seen and seen.tls else "-",
            str(seen.port) if seen else "-",
            row.status,
        ))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for number, line in enumerate(table):
        out.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() + "\n")
        if number == 0:
            out.write("  ".join("-" * width for width in widths) + "\n")
    out.write(
        "\nEvery request reached the bound service's port whatever the URL said; Host and\n"
        "SNI came from the URL (no SNI for an IP); the wrong name failed the certificate\n"
        "check (in the TLS handshake, before any request was sent).\n"
    )
