"""The JSON-lines job behind ``vpc-requests fetch-many``: :func:`run_fetch_many`
reads one request per line, runs them through
:func:`~vpc_requests._bindings.batch.fetch_many` and writes one JSON line per
result, in input order.
"""

from __future__ import annotations

import base64
import collections
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from requests.models import Response

from .._bindings.batch import InvalidItem, fetch_many
from .._bindings.binding import Binding
from .._errors import ProxyError

__all__ = ["LINE_KEYS", "run_fetch_many"]

#: The keys a JSON input line of :func:`run_fetch_many` may give.
LINE_KEYS = ("url", "method", "headers", "body", "json", "params")


def run_fetch_many(
    binding: Binding,
    lines: Iterable[str],
    out: TextIO,
    *,
    concurrency: int = 8,
    progress: bool = False,
    include_headers: bool = False,
    **fetch_kwargs: Any,
) -> int:
    """Fetch one request per input line and write one JSON line per result,
    in input order (``vpc-requests fetch-many BINDING FILE``).

    An input line is a URL, or a JSON object ``{"url": ..., "method": ...,
    "headers": {...}, "body": "..."}`` with only the keys of
    :data:`LINE_KEYS` (``url``, ``method``, ``headers``, ``body``, ``json``,
    ``params``): the input is data, so it cannot change how fetches are
    made (``verify``, ``timeout``, ``cert``, ... come from ``fetch_kwargs``
    alone); a line with any other key gets an error record naming it, and
    the batch goes on. Blank lines and lines starting with ``#`` are
    skipped. Each output line is ``{"index": i, "url": ..., "status": 200,
    "body": "..."}`` (``"headers"`` too with ``include_headers``; a body that
    is not text comes as ``"body_base64"``), or for an item that failed
    ``{"index": i, "url": ..., "error": {"type": "ProxyConnectionError",
    "code": "connection_refused", "message": "..."}}`` (``code`` is
    ``null`` for errors that are not a :class:`~vpc_requests.ProxyError`, such
    as an unreadable line). ``index`` counts the items, from 0.

    :param binding: the binding to fetch through.
    :param lines: the input lines, read lazily.
    :param out: where the JSON lines go.
    :param concurrency: fetches in flight at once.
    :param progress: progress on stderr, as :func:`fetch_many`.
    :param include_headers: add each response's headers.
    :param fetch_kwargs: passed to every fetch (``timeout``, ...).
    :returns: the exit status: ``0`` when every item got a response (of any
        HTTP status), ``1`` when at least one failed.
    """
    urls: collections.deque[str | None] = collections.deque()

    def items() -> Iterator[Any]:
        for line in lines:
            if not _is_item(line):
                continue
            item = _parse_line(line.strip())
            urls.append(_url_of(item))
            yield item

    total = _count_items(lines) if progress else None
    failed = 0
    index = 0
    for index, result in enumerate(
        fetch_many(binding, items(), concurrency=concurrency, progress=progress, total=total, **fetch_kwargs)
    ):
        record: dict[str, Any] = {"index": index, "url": urls.popleft()}
        if isinstance(result, Exception):
            failed += 1
            code = result.code if isinstance(result, ProxyError) else None
            record["error"] = {"type": type(result).__name__, "code": code, "message": str(result)}
        else:
            record["status"] = result.status_code
            if include_headers:
                record["headers"] = dict(result.headers)
            record.update(_body(result))
        out.write(json.dumps(record) + "\n")
    out.flush()
    return 1 if failed else 0


def _is_item(line: str) -> bool:
    text = line.strip()
    return bool(text) and not text.startswith("#")


def _count_items(lines: Iterable[str]) -> int | None:
    """How many items a regular file holds (for the progress display's
    total and ETA), read once ahead and rewound; ``None`` for a stream
    (stdin, a pipe) that cannot be read twice."""
    if not isinstance(lines, io.IOBase) or not lines.seekable():
        return None
    start = lines.tell()
    try:
        return sum(1 for line in lines if _is_item(line))
    finally:
        lines.seek(start)


def _parse_line(text: str) -> Any:
    if not text.startswith("{"):
        return text
    try:
        item = json.loads(text)
    except ValueError as exc:
        return InvalidItem(ValueError(f"not a JSON object: {exc}"))
    if not isinstance(item, dict):
        return InvalidItem(ValueError("not a JSON object"))
    if not isinstance(item.get("url"), str):
        return InvalidItem(ValueError("the JSON object has no 'url' string"))
    unknown = [key for key in item if key not in LINE_KEYS]
    if unknown:
        names = ", ".join(repr(key) for key in unknown)
        return InvalidItem(ValueError(f"key{'s' if len(unknown) > 1 else ''} {names} not allowed in an input line; "
                                   f"a line may give only {', '.join(LINE_KEYS)}"), item["url"])
    return item


def _url_of(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return item.get("url")
    if isinstance(item, InvalidItem):
        return item.url
    return None


def _body(response: Response) -> dict[str, str]:
    content = response.content or b""
    try:
        text = content.decode(response.encoding or "utf-8")
    except (UnicodeDecodeError, LookupError):
        return {"body_base64": base64.b64encode(content).decode("ascii")}
    return {"body": text}
