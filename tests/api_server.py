"""A loopback stand-in for the part of the Cloudflare API that ``service
pull`` reads: ``GET /client/v4/accounts/{id}/connectivity/directory/services``
with ``page`` / ``per_page`` pagination and Cloudflare's envelopes, bearer
token checks (403 and an error envelope otherwise), and queued faults (a 5xx
the SDK retries). It records every request it answers.

Only on 127.0.0.1; the real ``cloudflare`` SDK talks to it through
``CLOUDFLARE_BASE_URL``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

PREFIX = "/client/v4"


class Seen(NamedTuple):
    """One request the stand-in answered."""

    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    status: int
    headers: dict[str, str]


class Fault(NamedTuple):
    """A canned answer served instead of the next request's real one."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = {}


def envelope_error(code: int, message: str) -> dict[str, Any]:
    """Cloudflare's error envelope."""
    return {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}


class CloudflareAPI:
    """The stand-in server; a context manager.

    :param services: the account's service objects, as the API returns them.
    :param account_id: the only account it knows.
    :param token: the only API token it accepts.
    :param max_per_page: the page size it caps ``per_page`` at (the real
        API caps it too), so that a few services make several pages.
    """

    def __init__(self, services: Iterable[Mapping[str, Any]] = (), *, account_id: str = "acc-1",
                 token: str = "good-token", max_per_page: int = 2) -> None:
        self.services = [dict(s) for s in services]
        self.account_id = account_id
        self.token = token
        self.max_per_page = max_per_page
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="cloudflare-api", daemon=True)

    @property
    def base_url(self) -> str:
        """What ``CLOUDFLARE_BASE_URL`` should be."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{PREFIX}"

    def __enter__(self) -> CloudflareAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def pages_served(self) -> list[str]:
        """The ``page`` parameter of each answered list request, in order."""
        return [seen.query.get("page", "1") for seen in self.seen]

    # -- the handler --------------------------------------------------------------

    def _answer(self, method: str, target: str,
                headers: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        authorization = headers.get("authorization")
        parts = urlsplit(target)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        status, body, answer_headers = self._route(method, parts.path, query, authorization)
        with self._lock:
            self.seen.append(Seen(method, parts.path, query, authorization, status, headers))
        return status, body, answer_headers

    def _route(self, method: str, path: str, query: dict[str, str],
               authorization: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            return fault.status, dict(fault.body), dict(fault.headers)
        if authorization != f"Bearer {self.token}":
            return 403, envelope_error(10000, "Authentication error"), {}
        expected = f"{PREFIX}/accounts/{self.account_id}/connectivity/directory/services"
        if method != "GET" or not path.startswith(f"{PREFIX}/accounts/"):
            return 404, envelope_error(7000, "No route for that URI"), {}
        if path != expected:
            return 404, envelope_error(7003, "Could not route to the account, perhaps your object "
                                             "identifier is invalid?"), {}
        page = int(query.get("page", "1"))
        per_page = min(int(query.get("per_page", "20")), self.max_per_page)
        chunk = self.services[(page - 1) * per_page: page * per_page]
        total = len(self.services)
        info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": total,
                "total_pages": -(-total // per_page)}
        return 200, {"success": True, "errors": [], "messages": [], "result": chunk, "result_info": info}, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._serve()

            def do_POST(self) -> None:  # noqa: N802
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                seen = {name.lower(): value for name, value in self.headers.items()}
                status, body, headers = api._answer(self.command, self.path, seen)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                pass

        return Handler
