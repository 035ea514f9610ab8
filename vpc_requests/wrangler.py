"""Reading the Worker's own configuration (``wrangler.toml``, ``wrangler.json``,
``wrangler.jsonc``) the way wrangler reads its ``vpc_services`` key, and the
source-file layer both configuration files share: parsing TOML / JSON / JSONC
and finding the line of any value, so that errors can name it.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple, Union

# Reading is the standard library's TOML parser (its backport before 3.11):
# several times faster than tomlkit, which is kept for editing.
if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - Python < 3.11
    import tomli as _toml

from .errors import ConfigError

__all__ = [
    "WRANGLER_FILES",
    "BindingSpec",
    "ConfigWarning",
    "Document",
    "document_kind",
    "find_wrangler_file",
    "parse_document",
    "read_bindings",
    "read_document",
]

#: The names wrangler looks for, in the order this package tries them.
WRANGLER_FILES: tuple[str, ...] = ("wrangler.toml", "wrangler.json", "wrangler.jsonc")

#: A path inside a document: keys and list indices, ``("env", "dev", "vpc_services", 0)``.
KeyPath = tuple[Union[str, int], ...]

_BINDING_KEYS = ("binding", "service_id", "service", "remote")


class ConfigWarning(UserWarning):
    """A configuration file holds something that is ignored (an unknown key,
    a top-level ``vpc_services`` an environment does not inherit)."""


# -- the source-file layer ------------------------------------------------------


@dataclass
class Document:
    """A parsed configuration file that remembers its text, so that the line
    of any value can be found when something in it is wrong.

    :param path: the file, as given.
    :param text: its text.
    :param data: the parsed value (plain ``dict`` / ``list`` / scalars).
    :param kind: ``"toml"`` or ``"json"``.
    """

    path: str
    text: str
    data: Any
    kind: str
    _lines: dict[KeyPath, int] | None = field(default=None, repr=False)
    _headers: list[tuple[int, KeyPath]] = field(default_factory=list, repr=False)

    def line_of(self, path: KeyPath) -> int | None:
        """The 1-based line where the value at ``path`` is written.

        :param path: keys and indices from the document's root.
        :returns: the line, or ``None`` when it cannot be found.
        """
        if self._lines is None:
            scanner: _TomlLines | _JsonLines = _TomlLines(self.text) if self.kind == "toml" else _JsonLines(self.text)
            try:
                self._lines = scanner.scan()
            except (IndexError, ValueError):  # pragma: no cover - defensive
                self._lines = {}
            self._headers = getattr(scanner, "headers", [])
        return self._lines.get(tuple(path))

    @property
    def headers(self) -> list[tuple[int, KeyPath]]:
        """TOML only: each table header's line and path, in file order
        (``[services.host]`` of the 3rd service is ``("services", 2, "host")``)."""
        self.line_of(())
        return list(self._headers)

    def locate(self, base: KeyPath, dotted: str | None = None) -> int | None:
        """The line of ``dotted`` (``host.hostname``, ``a.b[0]``) under ``base``,
        falling back to the nearest enclosing value that has a line.

        :param base: where the object holding the field starts.
        :param dotted: the field inside it, as :class:`ConfigError` names fields.
        :returns: the best line found, or ``None``.
        """
        path = tuple(base) + split_field(dotted)
        for end in range(len(path), 0, -1):
            line = self.line_of(path[:end])
            if line is not None:
                return line
        return None

    def error(self, message: str, base: KeyPath, dotted: str | None = None) -> ConfigError:
        """A :class:`ConfigError` naming this file, the line of the value and
        the field (``base`` and ``dotted`` joined).

        :returns: the error (not raised).
        """
        path = tuple(base) + split_field(dotted)
        return ConfigError(message, path=self.path, line=self.locate(base, dotted),
                           field=join_field(path) or None)

    def warn(self, message: str, path: KeyPath) -> None:
        """Emit a :class:`ConfigWarning` naming this file and the line of ``path``."""
        line = self.line_of(path)
        where = f"{self.path}:{line}" if line is not None else self.path
        warnings.warn(f"{where}: {message}", ConfigWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside
    this package."""
    here = os.path.dirname(__file__)
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(here):
        frame, level = frame.f_back, level + 1
    return level


def split_field(dotted: str | None) -> KeyPath:
    """``"host.resolver_ips[1]"`` -> ``("host", "resolver_ips", 1)``."""
    if not dotted:
        return ()
    parts: list[str | int] = []
    for piece in dotted.split("."):
        name, *indices = piece.split("[")
        if name:
            parts.append(name)
        parts.extend(int(index.rstrip("]")) for index in indices if index.rstrip("]").isdigit())
    return tuple(parts)


def join_field(path: KeyPath) -> str:
    """``("env", "dev", "vpc_services", 0, "binding")`` -> ``"env.dev.vpc_services[0].binding"``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def read_document(path: str | Path, *, kind: str | None = None, newline: str | None = None) -> Document:
    """Read and parse a TOML or JSON(C) file.

    :param path: the file; ``.json`` and ``.jsonc`` are JSON with comments and
        trailing commas allowed (as wrangler allows them), anything else TOML.
    :param kind: force ``"toml"`` or ``"json"``.
    :param newline: passed to :func:`open`; ``""`` keeps ``\\r\\n`` as written
        (for editing).
    :returns: the document.
    :raises ConfigError: when the file is missing, unreadable or malformed,
        with the line of the syntax error.
    """
    name = str(path)
    try:
        with open(path, encoding="utf-8", newline=newline) as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError("file not found", path=name) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=name) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", path=name) from None
    return parse_document(text, name, kind=kind)


def parse_document(text: str, name: str, *, kind: str | None = None) -> Document:
    """Parse configuration text (see :func:`read_document`).

    :param text: the file's text.
    :param name: the file's name, for errors and to choose the format.
    :param kind: force ``"toml"`` or ``"json"``.
    :returns: the document.
    :raises ConfigError: when the text is malformed.
    """
    kind = kind or document_kind(name)
    if kind == "json":
        return Document(name, text, _parse_json(text, name), "json")
    return Document(name, text, _parse_toml(text, name), "toml")


def document_kind(name: str | Path) -> str:
    """``"json"`` for ``.json`` / ``.jsonc`` files, else ``"toml"``."""
    return "json" if str(name).lower().endswith((".json", ".jsonc")) else "toml"


def _parse_toml(text: str, name: str) -> Any:
    try:
        return _toml.loads(text)
    except Exception as exc:  # TOMLDecodeError, "... (at line L, column C)"
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message) or re.search(
            r"at line (\d+) col (\d+)", message)
        line = int(found.group(1)) if found else None
        if found:
            message = message[: found.start()].strip()
        raise ConfigError(f"invalid TOML: {message}", path=name, line=line) from None


def _parse_json(text: str, name: str) -> Any:
    try:
        return json.loads(strip_jsonc(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg} (column {exc.colno})", path=name,
                          line=exc.lineno) from None


_JSON_STRING = r'"(?:[^"\\\n]|\\.)*"'
_COMMENTS = re.compile(_JSON_STRING + r"|//[^\n]*|/\*.*?\*/", re.DOTALL)
_TRAILING_COMMA = re.compile(_JSON_STRING + r"|,(?=\s*[}\]])")


def strip_jsonc(text: str) -> str:
    """JSON with comments (``//``, ``/* */``) and trailing commas -> plain
    JSON, keeping every character's line and column (comments become spaces).

    :param text: JSONC text; ``//`` inside strings is kept.
    :returns: JSON text.
    """

    def comment(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith('"'):
            return token
        return re.sub(r"[^\n]", " ", token)

    def comma(match: re.Match[str]) -> str:
        token = match.group(0)
        return token if token.startswith('"') else " "

    if "/" in text:
        text = _COMMENTS.sub(comment, text)
    return _TRAILING_COMMA.sub(comma, text)


class _Lines:
    """Base of the line scanners: offsets -> 1-based lines."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[KeyPath, int] = {}
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_right(self._starts, self.pos if pos is None else pos)

    def record(self, path: KeyPath, pos: int | None = None) -> None:
        self.lines.setdefault(path, self.line(pos))


class _JsonLines(_Lines):
    """Line of every value of a (comment-stripped) JSON document."""

    _TOKEN = re.compile(r'\s*(' + _JSON_STRING + r'|[{}\[\],:]|[^\s{}\[\],:"]+)', re.DOTALL)

    def scan(self) -> dict[KeyPath, int]:
        self.tokens = [(m.group(1), m.start(1)) for m in self._TOKEN.finditer(strip_jsonc(self.text))]
        self.index = 0
        self.value(())
        return self.lines

    def next(self) -> tuple[str, int]:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def value(self, path: KeyPath, at: int | None = None) -> None:
        """Record the value at the next token (at its key's line, ``at``)."""
        token, pos = self.next()
        self.record(path, pos if at is None else at)
        if token == "{":
            while True:
                token, pos = self.next()
                if token == "}":
                    return
                if token == ",":
                    continue
                key = json.loads(token)
                self.next()  # ':'
                self.value(path + (key,), at=pos)
        elif token == "[":
            index = 0
            while self.tokens[self.index][0] != "]":
                if self.tokens[self.index][0] == ",":
                    self.index += 1
                    continue
                self.value(path + (index,))
                index += 1
            self.index += 1


class _TomlLines(_Lines):
    """Line of every key, table and array element of a (valid) TOML document.

    Only the structure is read (headers, keys, inline tables and arrays);
    values are skipped. ``tomllib`` has already checked the syntax.
    """

    _BARE = re.compile(r"[A-Za-z0-9_-]+")
    _SPACE = re.compile(r"[ \t]*")
    _BLANK = re.compile(r"(?:\s|#[^\n]*)*")
    _STRINGS = (('"""', re.compile(r'"""(?:[^\\]|\\.)*?"""+', re.DOTALL)),
                ("'''", re.compile(r"'''.*?'''+", re.DOTALL)),
                ('"', re.compile(r'"(?:[^"\\\n]|\\.)*"')),
                ("'", re.compile(r"'[^'\n]*'")))
    _SCALAR = re.compile(r"[^,\]}\n#]*")

    def scan(self) -> dict[KeyPath, int]:
        self.counts: dict[KeyPath, int] = {}
        self.headers: list[tuple[int, KeyPath]] = []
        table: KeyPath = ()
        text = self.text
        while True:
            self.pos = _end(self._BLANK, text, self.pos)
            if self.pos >= len(text):
                return self.lines
            if text.startswith("[[", self.pos):
                start = self.pos
                self.pos += 2
                path = self.resolve(self.key(), array=True)
                index = self.counts.get(path, 0)
                self.counts[path] = index + 1
                table = path + (index,)
                self.record(path, start)
                self.record(table, start)
                self.headers.append((self.line(start), table))
                self.pos = text.index("]]", self.pos) + 2
            elif text.startswith("[", self.pos):
                start = self.pos
                self.pos += 1
                table = self.resolve(self.key(), array=False)
                self.record(table, start)
                self.headers.append((self.line(start), table))
                self.pos = text.index("]", self.pos) + 1
            else:
                self.pair(table)

    def resolve(self, key: KeyPath, *, array: bool) -> KeyPath:
        """A header's key path with the current index of each array of tables
        it passes through (``[services.host]`` -> ``("services", 3, "host")``)."""
        out: KeyPath = ()
        for position, part in enumerate(key):
            out += (part,)
            last = position == len(key) - 1
            if out in self.counts and not (array and last):
                out += (self.counts[out] - 1,)
        return out

    def key(self) -> KeyPath:
        """A (dotted) key at ``pos``."""
        parts: list[str] = []
        while True:
            self.pos = _end(self._SPACE, self.text, self.pos)
            char = self.text[self.pos]
            if char in "\"'":
                end = self.skip_string()
                parts.append(_unquote(self.text[self.pos:end]))
                self.pos = end
            else:
                match = self._BARE.match(self.text, self.pos)
                if match is None:
                    raise ValueError(f"no key at offset {self.pos}")
                parts.append(match.group(0))
                self.pos = match.end()
            self.pos = _end(self._SPACE, self.text, self.pos)
            if not self.text.startswith(".", self.pos):
                return tuple(parts)
            self.pos += 1

    def pair(self, table: KeyPath) -> None:
        """``key = value`` at ``pos``, inside ``table``."""
        start = self.pos
        key = self.key()
        for end in range(1, len(key) + 1):
            self.record(table + key[:end], start)
        self.pos = self.text.index("=", self.pos) + 1
        self.value(table + key)

    def value(self, path: KeyPath) -> None:
        self.pos = _end(self._SPACE, self.text, self.pos)
        char = self.text[self.pos]
        if char == "{":
            self.pos += 1
            while True:
                self.pos = _end(self._BLANK, self.text, self.pos)
                if self.text[self.pos] == "}":
                    self.pos += 1
                    return
                if self.text[self.pos] == ",":
                    self.pos += 1
                    continue
                self.pair(path)
        elif char == "[":
            self.pos += 1
            index = 0
            while True:
                self.pos = _end(self._BLANK, self.text, self.pos)
                if self.text[self.pos] == "]":
                    self.pos += 1
                    return
                if self.text[self.pos] == ",":
                    self.pos += 1
                    continue
                self.record(path + (index,))
                self.value(path + (index,))
                index += 1
        elif char in "\"'":
            self.pos = self.skip_string()
        else:
            self.pos = _end(self._SCALAR, self.text, self.pos)

    def skip_string(self) -> int:
        """The offset just past the string that starts at ``pos``."""
        for opener, pattern in self._STRINGS:
            if self.text.startswith(opener, self.pos):
                match = pattern.match(self.text, self.pos)
                if match is None:
                    raise ValueError(f"unterminated string at offset {self.pos}")
                return match.end()
        raise ValueError(f"no string at offset {self.pos}")  # pragma: no cover


def _end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where ``pattern`` (one that matches the empty string too) ends at ``pos``."""
    match = pattern.match(text, pos)
    return pos if match is None else match.end()


def _unquote(token: str) -> str:
    if token.startswith('"'):
        unquoted: str = json.loads(token)
        return unquoted
    return token[1:-1]


# -- wrangler's vpc_services ----------------------------------------------------


class BindingSpec(NamedTuple):
    """One ``vpc_services`` entry of the Worker's configuration.

    :param binding: the binding's name (``env.<binding>`` in the Worker).
    :param service_id: the bound service's id, or ``None`` when it is bound
        by name.
    :param service: the bound service's name (``service = "<name>"``), or ``None``.
    :param where: the entry's place in the document (for error lines).
    """

    binding: str
    service_id: str | None
    service: str | None
    where: KeyPath


def find_wrangler_file(directory: str | Path = ".") -> Path:
    """The Worker configuration in ``directory``: the first of
    :data:`WRANGLER_FILES` that exists, else ``wrangler.toml``.

    :param directory: where to look.
    :returns: the path (which may not exist).
    """
    folder = Path(directory)
    for name in WRANGLER_FILES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return folder / WRANGLER_FILES[0]


def read_bindings(document: Document, environment: str | None = None) -> list[BindingSpec]:
    """The ``vpc_services`` bindings of a Worker configuration, as wrangler
    reads them.

    :param document: the parsed wrangler file (see :func:`read_document`).
    :param environment: ``[env.NAME]`` to read, or ``None`` for the top level.
        ``vpc_services`` is not inherited: an environment without its own gets
        no bindings, with a :class:`ConfigWarning` when the top level has some.
    :returns: the entries, in file order.
    :raises ConfigError: for a missing environment, a malformed entry or a
        duplicate binding name.
    """
    root = document.data
    if not isinstance(root, Mapping):
        raise document.error(f"the configuration must be a table/object, got {type(root).__name__}", ())
    base: KeyPath = ()
    table: Mapping[str, Any] = root
    if environment is not None:
        table = _environment(document, environment)
        base = ("env", environment)
        if "vpc_services" not in table:
            if "vpc_services" in root:
                document.warn(
                    f'"vpc_services" exists at the top level, but not on "env.{environment}"; '
                    f'it is not inherited, so environment {environment!r} has no VPC bindings. '
                    f'Add "vpc_services" to "env.{environment}"',
                    ("vpc_services",),
                )
            return []
    entries = table.get("vpc_services", [])
    where = base + ("vpc_services",)
    if not isinstance(entries, list):
        raise document.error(
            f"must be an array of {{ binding, service_id }} tables, got {_describe(entries)}", where)
    specs = [_binding(document, entry, where + (index,)) for index, entry in enumerate(entries)]
    _check_unique(document, specs)
    return specs


def _environment(document: Document, name: str) -> Mapping[str, Any]:
    envs = document.data.get("env", {})
    if not isinstance(envs, Mapping):
        raise document.error(f"must be a table of environments, got {_describe(envs)}", ("env",))
    table = envs.get(name)
    if table is None:
        known = ", ".join(sorted(envs)) or "none"
        raise ConfigError(f"no environment {name!r}; defined: {known}", path=document.path,
                          field=f"env.{name}")
    if not isinstance(table, Mapping):
        raise document.error(f"must be a table, got {_describe(table)}", ("env", name))
    return table


def _binding(document: Document, entry: object, where: KeyPath) -> BindingSpec:
    """Validate one entry as wrangler does; unknown keys only warn."""
    if not isinstance(entry, Mapping):
        raise document.error(
            f'bindings should be tables like {{ binding = "NAME", service_id = "..." }}, '
            f"got {_describe(entry)}", where)
    for key in entry:
        if key not in _BINDING_KEYS:
            document.warn(
                f"unexpected field {key!r} in {join_field(where)}; "
                f"expected: {', '.join(_BINDING_KEYS)}",
                where + (key,),
            )
    binding = entry.get("binding")
    if not isinstance(binding, str) or not binding:
        raise document.error(f'should have a string "binding" field, got {_describe(binding)}',
                             where, "binding")
    service_id, service = entry.get("service_id"), entry.get("service")
    if service_id is not None and service is not None:
        raise document.error(
            f'give "service_id" or "service", not both (got {service_id!r} and {service!r})',
            where, "service")
    key, value = ("service", service) if service is not None else ("service_id", service_id)
    if not isinstance(value, str) or not value.strip():
        raise document.error(
            f'should have a string "service_id" field (or "service" with the service\'s name), '
            f"got {_describe(value)}", where, key)
    remote = entry.get("remote")
    if remote is not None and not isinstance(remote, bool):
        raise document.error(f"should be a boolean, got {_describe(remote)}", where, "remote")
    return BindingSpec(binding, service_id, service, where)


def _check_unique(document: Document, specs: list[BindingSpec]) -> None:
    first: dict[str, BindingSpec] = {}
    for spec in specs:
        if spec.binding in first:
            line = document.line_of(first[spec.binding].where + ("binding",))
            at = f" (first defined at line {line})" if line is not None else ""
            raise document.error(f"binding name {spec.binding!r} is used more than once{at}",
                                 spec.where, "binding")
        first[spec.binding] = spec


def _describe(value: object) -> str:
    """``value`` for messages: its TOML/JSON type and its repr."""
    if value is None:
        return "nothing"
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string",
             list: "array", dict: "table"}
    kind = next((name for cls, name in kinds.items() if isinstance(value, cls)), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 80 else text[:77] + '...'}"
