"""The source-file layer shared by the wrangler file and the services file:
reading a configuration file safely, parsing TOML / JSON / JSONC as wrangler
does, and finding the line of any value, so that errors can name it.

Reading refuses what is not a configuration file before reading it (a FIFO,
a device, a directory, more than :data:`MAX_CONFIG_BYTES`); parsing turns
every failure of the parsers (syntax, nesting too deep for the recursion
limit, an integer longer than Python converts) into a :class:`ConfigError`
naming the file and, where it can be found, the line.
"""

from __future__ import annotations

import bisect
import difflib
import json
import os
import re
import stat
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, Union

# Reading is the standard library's TOML parser (its backport before 3.11):
# several times faster than tomlkit, which is kept for editing.
if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - Python < 3.11
    import tomli as _toml

from .._errors import ConfigError

__all__ = [
    "MAX_CONFIG_BYTES",
    "ConfigWarning",
    "Document",
    "KeyPath",
    "caller_level",
    "decode_config",
    "describe",
    "did_you_mean",
    "document_kind",
    "join_field",
    "parse_document",
    "read_config_text",
    "read_document",
    "split_field",
    "strip_jsonc",
]

#: The largest configuration file read (32 MiB); a bigger one is refused
#: before it is read. Real wrangler and services files are a few kilobytes.
MAX_CONFIG_BYTES = 32 * 1024 * 1024

#: A path inside a document: keys and list indices, ``("env", "dev", "vpc_services", 0)``.
KeyPath = tuple[Union[str, int], ...]


class ConfigWarning(UserWarning):
    """A configuration file holds something that is ignored (an unknown key,
    a top-level ``vpc_services`` an environment does not inherit)."""


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
            except (IndexError, ValueError, RecursionError):  # pragma: no cover - defensive
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
        warnings.warn(f"{where}: {message}", ConfigWarning, stacklevel=caller_level())


def caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside
    this package (not only outside this layer: the CLI and the pytest plugin
    call in from other layers)."""
    here = os.path.dirname(os.path.dirname(__file__))
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


# -- reading --------------------------------------------------------------------

# Byte order marks wrangler refuses (workers-utils/src/parse.ts,
# removeBOMAndValidate); the UTF-8 one it strips, and so do we.
_OTHER_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32 BE"), (b"\xff\xfe\x00\x00", "UTF-32 LE"),
               (b"\xfe\xff", "UTF-16 BE"), (b"\xff\xfe", "UTF-16 LE"))
_UTF8_BOM = "\ufeff"
_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def read_config_text(path: str | Path, *, newline: str | None = None) -> str:
    """The text of a configuration file, read safely: the one function that
    reads the wrangler file and the services file.

    The file is opened without blocking and checked before anything is
    read: only a regular file of at most :data:`MAX_CONFIG_BYTES` is read, so
    a FIFO, ``/dev/zero`` or a huge file is refused at once. The text must be
    UTF-8; a UTF-8 byte order mark is dropped and a UTF-16/32 one refused, as
    wrangler does (``workers-utils/src/parse.ts``).

    :param path: the file.
    :param newline: ``None`` turns ``\\r\\n`` and ``\\r`` into ``\\n`` (as
        :func:`open` does); ``""`` keeps the line ends as written (for editing).
    :returns: the text.
    :raises ConfigError: when the file is missing, not a regular file, too
        large, unreadable or not UTF-8.
    """
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ConfigError("file not found", path=name) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", path=name) from None
    try:
        info = os.fstat(fd)
        for test, kind in _FILE_KINDS:
            if test(info.st_mode):
                raise ConfigError(f"not a regular file ({kind}); refused without reading it", path=name)
        if info.st_size > MAX_CONFIG_BYTES:
            _too_large(name, info.st_size)
        data = _read_at_most(fd, MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", path=name) from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:  # it grew after fstat
        _too_large(name, len(data))
    return decode_config(data, name, newline=newline)


def _too_large(name: str, size: int) -> NoReturn:
    raise ConfigError(f"larger than the {MAX_CONFIG_BYTES // (1024 * 1024)} MiB limit for a configuration "
                      f"file ({size} bytes); refused without reading it", path=name)


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def decode_config(data: bytes, name: str, *, newline: str | None = None) -> str:
    """Configuration bytes -> text (see :func:`read_config_text`).

    :raises ConfigError: for a UTF-16/32 byte order mark or bytes that are not UTF-8.
    """
    for mark, encoding in _OTHER_BOMS:
        if data.startswith(mark):
            raise ConfigError(f"the file starts with a {encoding} byte order mark; save it as UTF-8 "
                              "(as wrangler requires)", path=name, line=1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=name, line=line) from None
    text = text[1:] if text.startswith(_UTF8_BOM) else text
    if newline is None and "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_document(path: str | Path, *, kind: str | None = None, newline: str | None = None) -> Document:
    """Read (with :func:`read_config_text`) and parse a TOML or JSON(C) file.

    :param path: the file; ``.json`` and ``.jsonc`` are JSON with comments and
        trailing commas allowed (as wrangler allows them), anything else TOML.
    :param kind: force ``"toml"`` or ``"json"``.
    :param newline: passed to :func:`read_config_text`.
    :returns: the document.
    :raises ConfigError: when the file is missing, refused, unreadable or
        malformed, with the line of the syntax error.
    """
    return parse_document(read_config_text(path, newline=newline), str(path), kind=kind)


# -- parsing --------------------------------------------------------------------


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


_TOO_DEEP = "nested too deeply to read (more levels of arrays/tables than Python's recursion limit)"


def _parse_toml(text: str, name: str) -> Any:
    try:
        return _toml.loads(text)
    except RecursionError:
        raise ConfigError(f"invalid TOML: {_TOO_DEEP}", path=name) from None
    except _toml.TOMLDecodeError as exc:  # "... (at line L, column C)"
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message) or re.search(
            r"at line (\d+) col (\d+)", message)
        line = int(found.group(1)) if found else None
        if found:
            message = message[: found.start()].strip()
        raise ConfigError(f"invalid TOML: {message}", path=name, line=line) from None
    except ValueError as exc:  # an integer longer than int() converts
        raise ConfigError(f"invalid TOML: {_long_number(exc)}", path=name,
                          line=_long_number_line(text, _TOML_SKIP)) from None


def _parse_json(text: str, name: str) -> Any:
    plain = strip_jsonc(text)
    try:
        return json.loads(plain, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        message = f"{exc.msg} (column {exc.colno})"
        if plain.startswith("/*", exc.pos):
            message = f"unterminated /* comment (column {exc.colno})"
        raise ConfigError(f"invalid JSON: {message}", path=name, line=exc.lineno) from None
    except _Constant as exc:  # NaN / Infinity: JSON.parse refuses them, so does wrangler
        line = _first_line(plain, _JSON_SKIP + r"|(?<![\w.])(?:-?Infinity|NaN)(?!\w)")
        raise ConfigError(f"invalid JSON: {exc.args[0]} is not a JSON value", path=name, line=line) from None
    except RecursionError:
        raise ConfigError(f"invalid JSON: {_TOO_DEEP}", path=name, line=_deepest_line(plain)) from None
    except ValueError as exc:  # an integer longer than int() converts
        raise ConfigError(f"invalid JSON: {_long_number(exc)}", path=name,
                          line=_long_number_line(plain, _JSON_SKIP)) from None


class _Constant(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in JSON text."""


def _refuse_constant(token: str) -> NoReturn:
    raise _Constant(token)


def _long_number(exc: ValueError) -> str:
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    if limit:
        return f"a number with more than {limit} digits"
    return str(exc)  # pragma: no cover - not a digit limit


def _long_number_line(text: str, skip: str) -> int | None:
    """The line of the first integer longer than Python converts, skipping
    strings and comments (``skip``)."""
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    if not limit:  # pragma: no cover - no digit limit, so no such error
        return None
    return _first_line(text, skip + rf"|[0-9][0-9_]{{{limit},}}")


def _first_line(text: str, pattern: str) -> int | None:
    """The 1-based line of the first match of ``pattern`` that is not one of
    the strings or comments it also matches (those start with a quote, ``#``
    or ``/``)."""
    for match in re.finditer(pattern, text):
        if match.group(0)[:1] not in "\"'#/":
            return text.count("\n", 0, match.start()) + 1
    return None


def _deepest_line(text: str) -> int | None:
    """The line where the nesting of a JSON text first reaches its deepest."""
    depth = deepest = 0
    at = None
    for match in re.finditer(_JSON_SKIP + r"|[\[\]{}]", text):
        token = match.group(0)
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, match.start()
        elif token in "]}":
            depth -= 1
    return None if at is None else text.count("\n", 0, at) + 1


_JSON_STRING = r'"(?:[^"\\\n]|\\.)*"'
_JSON_STRING_AT = re.compile(_JSON_STRING)
_JSON_SKIP = _JSON_STRING
_TOML_SKIP = r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*'
_JSONC_SPECIAL = re.compile(r'["/]')
_COMMA_SPECIAL = re.compile(r'[",]')
_SPACE_AFTER = re.compile(r"\s*")
_NOT_NEWLINE = re.compile(r"[^\n]")


def strip_jsonc(text: str) -> str:
    """JSON with comments (``//``, ``/* */``) and trailing commas -> plain
    JSON, keeping every character's line and column (comments become spaces).

    One pass from left to right, so the time is linear in the text's length
    whatever it holds (a regular expression that retries an unterminated
    ``/*`` at every opener is quadratic). An unterminated string or comment
    is left as it is, for the JSON parser to report.

    :param text: JSONC text; ``//`` inside strings is kept.
    :returns: JSON text.
    """
    if "/" in text:
        text = _strip_comments(text)
    if "," in text:
        text = _strip_trailing_commas(text)
    return text


def _strip_comments(text: str) -> str:
    out: list[str] = []
    done = pos = 0
    while True:
        match = _JSONC_SPECIAL.search(text, pos)
        if match is None:
            break
        start = match.start()
        if text[start] == '"':
            string = _JSON_STRING_AT.match(text, start)
            if string is None:  # unterminated: the parser reports it
                break
            pos = string.end()
            continue
        if text.startswith("//", start):
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
        elif text.startswith("/*", start):
            end = text.find("*/", start + 2)
            if end < 0:  # unterminated, and no "*/" anywhere after: the parser reports it
                break
            end += 2
        else:
            pos = start + 1
            continue
        out.append(text[done:start])
        out.append(_NOT_NEWLINE.sub(" ", text[start:end]))
        done = pos = end
    out.append(text[done:])
    return "".join(out)


def _strip_trailing_commas(text: str) -> str:
    out: list[str] = []
    done = pos = 0
    while True:
        match = _COMMA_SPECIAL.search(text, pos)
        if match is None:
            break
        start = match.start()
        if text[start] == '"':
            string = _JSON_STRING_AT.match(text, start)
            if string is None:
                break
            pos = string.end()
            continue
        after = _SPACE_AFTER.match(text, start + 1)
        end = after.end() if after is not None else start + 1
        if text.startswith(("}", "]"), end):
            out.append(text[done:start])
            out.append(" ")
            done = start + 1
        pos = end
    out.append(text[done:])
    return "".join(out)


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


# -- message helpers ------------------------------------------------------------


def describe(value: object) -> str:
    """``value`` for messages: its TOML/JSON type and its repr."""
    if value is None:
        return "nothing"
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string",
             list: "array", dict: "table"}
    kind = next((name for cls, name in kinds.items() if isinstance(value, cls)), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 80 else text[:77] + '...'}"


def did_you_mean(name: str, known: Iterable[str], *, cutoff: float = 0.75) -> str | None:
    """The known name closest to a misspelled ``name`` (``vpc_service``,
    ``vpc-services``, ``vpcServices`` -> ``vpc_services``), or ``None``.

    Case, ``-`` and ``_`` are ignored in the comparison, so camelCase and
    kebab-case spellings match their snake_case key.
    """
    def folded(text: str) -> str:
        return text.lower().replace("-", "").replace("_", "")

    table = {folded(key): key for key in known}
    found = difflib.get_close_matches(folded(name), list(table), n=1, cutoff=cutoff)
    return table[found[0]] if found else None
