"""Batches of fetches through one binding: :func:`fetch_many`, what
:meth:`Binding.fetch_many <vpc_requests.Binding.fetch_many>` runs (the
JSON-lines job of ``vpc-requests fetch-many`` on top of it is in the CLI's
layer, :mod:`vpc_requests._cli.jobs`).

A batch runs at most ``concurrency`` fetches at a time on as many worker
threads, each using the binding's one connection pool (grown to hold
``concurrency`` connections, so none is opened only to be thrown away). The
input is read lazily, never more than ``2 * concurrency`` items ahead of the
consumer; results come back in input order. Stopping (the consumer stops
iterating, ``KeyboardInterrupt``, the batch's abort signal) aborts the
fetches in flight, starts no new one, and joins every worker thread before
control returns.
"""

from __future__ import annotations

import collections
import contextvars
import sys
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Mapping, Sized
from typing import TYPE_CHECKING, Any, Union, cast

from requests.models import PreparedRequest, Request, Response

from .._errors import AbortError
from .._transport.abort import AbortController, AbortSignal
from .._transport.tracing import instrumented

if TYPE_CHECKING:
    from .binding import Binding

__all__ = ["PROGRESS_INTERVAL", "FetchResults", "InvalidItem", "Item", "fetch_many"]

#: What one input item may be: a URL, a :class:`requests.Request` or
#: :class:`requests.PreparedRequest`, or a mapping of :meth:`Binding.fetch`
#: arguments with the resource under ``"url"``.
Item = Union[str, Request, PreparedRequest, Mapping[str, Any]]

#: Seconds between two plain progress lines on stderr (without tqdm).
PROGRESS_INTERVAL = 2.0

# How long the consumer waits at a time for the next result before checking
# for a stop again (KeyboardInterrupt reaches a waiting thread anyway on
# POSIX; this bounds the delay elsewhere).
_POLL = 0.25


def fetch_many(
    binding: Binding,
    resources: Iterable[Item],
    *,
    concurrency: int = 8,
    progress: bool = False,
    signal: AbortSignal | None = None,
    total: int | None = None,
    **fetch_kwargs: Any,
) -> FetchResults:
    """Fetch every item of ``resources`` through ``binding``, at most
    ``concurrency`` at a time, and yield the results in input order.

    Nothing starts until the first result is asked for. The returned
    :class:`FetchResults` is an iterator (generator-compatible: ``close()``,
    ``send()``, ``throw()``) and a context manager. A plain ``for`` over an
    unstored call (``for r in binding.fetch_many(urls): ...``) stops the
    batch when the loop is left, by ``break`` or an exception: the results
    object is dropped there and CPython closes it. A stored one
    (``results = binding.fetch_many(urls)``) lives as long as its variable,
    and so does its batch (the workers finish up to ``2 * concurrency``
    requests already read): use it in a ``with`` block, which stops the
    batch when the block is left by any exception (``KeyboardInterrupt``
    included) or normally, or call ``close()``::

        with binding.fetch_many(urls) as results:
            for result in results:
                ...

    Stopping aborts the fetches in flight and starts no new one; every
    worker thread has ended when ``close()`` (or the ``with`` block) returns.

    With ``stream=True`` each response is yielded with its body unread;
    stopping the batch does not cut the bodies of responses already
    yielded, and closes those never yielded.

    :param binding: the binding every fetch goes through.
    :param resources: any iterable of items: a URL string, a
        :class:`requests.Request` or :class:`requests.PreparedRequest`, or a
        mapping of :meth:`~vpc_requests.Binding.fetch` arguments holding the
        resource under ``"url"`` (``{"url": ..., "method": "POST", "body":
        ...}``); its values override ``fetch_kwargs``. Read lazily, at most
        ``2 * concurrency`` items ahead of the results yielded.
    :param concurrency: the most fetches in flight at once (worker threads).
    :param progress: show progress on stderr: a ``tqdm`` bar when ``tqdm``
        is installed (``pip install 'vpc_requests[progress]'``), else a line
        every :data:`PROGRESS_INTERVAL` seconds with the count, the rate and,
        when the total is known, the ETA. A batch stopped before its end
        (``close()``, ``break``, Ctrl-C) ends with "stopped after N of M",
        never "done".
    :param signal: an :class:`~vpc_requests.AbortSignal` for the whole
        batch: when it fires, the fetches in flight stop and the iteration
        raises :class:`~vpc_requests.AbortError`.
    :param total: how many items ``resources`` holds, for the progress
        display, when it has no length (a file read lazily); by default
        ``len(resources)`` where there is one.
    :param fetch_kwargs: passed to every :meth:`~vpc_requests.Binding.fetch`
        (``method``, ``headers``, ``timeout``, ...).
    :returns: a :class:`FetchResults` iterator of one result per item, in
        input order: the :class:`requests.Response`, or the exception that
        item's fetch raised (a bad item never stops the batch).
    :raises ValueError: for a ``concurrency`` below 1.
    :raises ~vpc_requests.AbortError: from the iteration, when ``signal``
        fired.
    :raises KeyboardInterrupt: as raised, after the batch has stopped
        (also when a response hook raised it in a worker thread).
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
    if signal is not None and not isinstance(signal, AbortSignal):
        raise TypeError(f"signal must be an AbortSignal, got {type(signal).__name__}")
    if total is None and hasattr(resources, "__len__"):
        total = len(cast(Sized, resources))
    # As many pooled connections as threads: none opened only to be discarded.
    binding.adapter.ensure_pool_maxsize(concurrency)
    batch = _Batch(binding, concurrency, signal, fetch_kwargs)
    meter = _progress(binding.name, total) if progress else None
    return FetchResults(batch.results(iter(resources), meter))


class FetchResults(Generator[Union[Response, Exception], None, None]):
    """The results of :func:`fetch_many`: an iterator over them in input
    order (generator-compatible), and a context manager that stops the
    batch when its block is left.

    ``close()`` stops the batch: the fetches in flight are aborted, no new
    one starts, and every worker thread has ended when it returns; the
    iteration then ends. It is idempotent, and what leaving a ``with``
    block or dropping the object does.
    """

    __slots__ = ("_generator",)

    def __init__(self, generator: Generator[Response | Exception, None, None]) -> None:
        self._generator = generator

    def __iter__(self) -> FetchResults:
        return self

    def __next__(self) -> Response | Exception:
        return next(self._generator)

    def send(self, value: None, /) -> Response | Exception:
        """As :meth:`generator.send`."""
        return self._generator.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None, /) -> Response | Exception:
        """As :meth:`generator.throw`: the batch stops, then it is raised."""
        if val is None and tb is None:  # the one-argument form (the others are deprecated)
            return self._generator.throw(typ)
        return self._generator.throw(typ, val, tb)

    def close(self) -> None:
        """Stop the batch (see the class)."""
        self._generator.close()

    def __enter__(self) -> FetchResults:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Slot:
    """One item on its way through the batch; ``context``: the consumer's
    context when it was read, when requests is traced (its fetch then runs
    in it, so its span has the consumer's span as parent)."""

    __slots__ = ("context", "done", "item", "result")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.result: Any = None
        self.done = False
        self.context: contextvars.Context | None = contextvars.copy_context() if instrumented() else None


class InvalidItem:
    """An input item that could not be read: its fetch raises ``error``
    (the JSON-lines job gives one for a line it cannot use)."""

    __slots__ = ("error", "url")

    def __init__(self, error: Exception, url: str | None = None) -> None:
        self.error = error
        self.url = url


class _Batch:
    """The worker threads and the bookkeeping of one :func:`fetch_many` call."""

    def __init__(
        self, binding: Binding, concurrency: int, signal: AbortSignal | None, kwargs: dict[str, Any]
    ) -> None:
        self.binding = binding
        self.concurrency = concurrency
        self.window = 2 * concurrency
        self.kwargs = kwargs
        self.user_signal = signal
        # Every fetch of the batch runs under this signal: aborting it stops
        # the fetches in flight at once, and any fetch a worker might still
        # begin fails before it sends anything.
        self.controller = AbortController()
        self.stopping = False
        lock = threading.Lock()
        self.work_ready = threading.Condition(lock)  # workers wait here
        self.result_ready = threading.Condition(lock)  # the consumer waits here
        self.todo: collections.deque[_Slot] = collections.deque()
        self.awaited: _Slot | None = None  # the result the consumer waits for
        # A KeyboardInterrupt (or SystemExit) raised in a worker, by a hook:
        # it stops the batch at once and is raised to the consumer.
        self.fatal: BaseException | None = None
        self.workers: list[threading.Thread] = []

    # -- the consumer's side

    def results(self, items: Iterator[Any], meter: _Meter | None) -> Generator[Response | Exception, None, None]:
        user_signal = self.user_signal
        remove_callback = None
        if user_signal is not None:
            remove_callback = user_signal.add_callback(self._on_user_abort)
        pending: collections.deque[_Slot] = collections.deque()
        exhausted = False
        clean = False
        try:
            while True:
                while not exhausted and len(pending) < self.window:
                    if user_signal is not None and user_signal.aborted:
                        break
                    try:
                        item = next(items)
                    except StopIteration:
                        exhausted = True
                        break
                    slot = _Slot(item)
                    pending.append(slot)
                    self._submit(slot)
                if user_signal is not None and user_signal.aborted:
                    raise AbortError(user_signal.reason)
                if not pending:
                    clean = True
                    return
                head = pending[0]
                if not head.done:
                    self._wait(head)
                if self.fatal is not None:
                    raise self.fatal
                if user_signal is not None and user_signal.aborted:
                    raise AbortError(user_signal.reason)
                pending.popleft()
                result = head.result
                head.result = head.item = None
                if meter is not None:
                    meter.update(isinstance(result, Exception))
                yield result
        finally:
            self._stop(abort=not clean)
            if remove_callback is not None:
                remove_callback()
            for slot in pending:  # done, never yielded: give the connections back
                if isinstance(slot.result, Response):
                    slot.result.close()
            if meter is not None:
                meter.close(completed=clean)

    def _wait(self, head: _Slot) -> None:
        user_signal = self.user_signal
        with self.result_ready:
            self.awaited = head
            try:
                while not head.done and self.fatal is None:
                    if user_signal is not None and user_signal.aborted:
                        return
                    self.result_ready.wait(_POLL)
            finally:
                self.awaited = None

    def _submit(self, slot: _Slot) -> None:
        with self.work_ready:
            self.todo.append(slot)
            self.work_ready.notify()
        if len(self.workers) < self.concurrency:
            worker = threading.Thread(
                target=self._work,
                name=f"vpc_requests-fetch_many-{self.binding.name}-{len(self.workers) + 1}",
                daemon=True,
            )
            self.workers.append(worker)
            worker.start()

    def _on_user_abort(self, reason: object) -> None:
        self.controller.abort(reason)
        with self.result_ready:
            self.result_ready.notify_all()

    def _stop(self, abort: bool) -> None:
        """Start nothing more, abort what is in flight (unless the batch ran
        to its end), and join the workers."""
        with self.work_ready:
            self.stopping = True
            self.todo.clear()
            self.work_ready.notify_all()
        if abort:
            self.controller.abort("fetch_many stopped")
        for worker in self.workers:
            try:
                worker.join()
            except RuntimeError:  # not started: interrupted between append and start
                pass

    # -- the workers' side

    def _work(self) -> None:
        work_ready = self.work_ready
        todo = self.todo
        while True:
            with work_ready:
                while not todo and not self.stopping:
                    work_ready.wait()
                if self.stopping:
                    return
                slot = todo.popleft()
            try:
                if slot.context is None:
                    slot.result = self._fetch(slot.item)
                else:
                    slot.result = slot.context.run(self._fetch, slot.item)
            except Exception as exc:  # noqa: BLE001 - the item's result
                slot.result = exc
            except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt, SystemExit: stop the batch
                with self.result_ready:
                    self.fatal = exc
                    self.stopping = True
                    self.result_ready.notify_all()
                return
            with self.result_ready:
                slot.done = True
                if slot is self.awaited:  # wake the consumer only for its result
                    self.result_ready.notify()

    def _fetch(self, item: Any) -> Response:
        kwargs = self.kwargs
        if isinstance(item, Mapping):
            options = dict(item)
            if "url" not in options:
                raise TypeError(f"a fetch_many item given as a mapping needs a 'url'; got keys {sorted(options)}")
            resource = options.pop("url")
            kwargs = {**kwargs, **options} if kwargs else options
        elif type(item) is InvalidItem:
            raise item.error
        else:
            resource = item
        own = kwargs.get("signal")
        stream = kwargs.get("stream", False)
        if own is None and not stream:
            return self.binding.fetch(resource, **{**kwargs, "signal": self.controller.signal})
        # A signal for this item alone, following the batch's while the fetch
        # runs, and the item's own (for a streamed body, as long as it is
        # read): a streamed response's abort scope then stays with the item,
        # not on the batch's signal for the whole batch.
        alone = AbortController()
        unlink = [self.controller.signal.add_callback(alone.abort)]
        if own is not None:
            unlink_own = own.add_callback(alone.abort)
            if not stream:
                unlink.append(unlink_own)
        try:
            return self.binding.fetch(resource, **{**kwargs, "signal": alone.signal})
        finally:
            for remove in unlink:
                remove()


# ------------------------------------------------------------------- progress


class _Meter:
    """Progress of a batch: counts results; shows them."""

    def update(self, failed: bool) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self, completed: bool) -> None:  # pragma: no cover - interface
        """Show the last state: ``completed`` when every item got its
        result, else the batch was stopped."""
        raise NotImplementedError


def _progress(name: str, total: int | None) -> _Meter:
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainMeter(name, total)
    return _TqdmMeter(tqdm, name, total)


class _TqdmMeter(_Meter):
    def __init__(self, tqdm: Any, name: str, total: int | None) -> None:
        class Bar(tqdm):  # type: ignore[misc]  # tqdm is untyped: its class is Any
            monitor_interval = 0  # no monitor thread left behind

        self.bar = Bar(total=total, desc=name, unit="req", file=sys.stderr, dynamic_ncols=True)
        self.name = name
        self.total = total
        self.errors = 0

    def update(self, failed: bool) -> None:
        if failed:
            self.errors += 1
            self.bar.set_postfix(errors=self.errors, refresh=False)
        self.bar.update(1)

    def close(self, completed: bool) -> None:
        count = self.bar.n
        self.bar.close()
        if not completed:
            print(f"{self.name}: {_stopped(count, self.total)}", file=sys.stderr, flush=True)


class _PlainMeter(_Meter):
    """A line on stderr every :data:`PROGRESS_INTERVAL` seconds, and one at
    the end."""

    def __init__(self, name: str, total: int | None) -> None:
        self.name = name
        self.total = total
        self.count = 0
        self.errors = 0
        self.started = time.monotonic()
        self.next_line = self.started + PROGRESS_INTERVAL

    def update(self, failed: bool) -> None:
        self.count += 1
        self.errors += failed
        now = time.monotonic()
        if now >= self.next_line:
            self.next_line = now + PROGRESS_INTERVAL
            self._line(now, final=False)

    def close(self, completed: bool) -> None:
        self._line(time.monotonic(), final=True, completed=completed)

    def _line(self, now: float, final: bool, completed: bool = False) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = self.count / elapsed
        if self.total is not None:
            percent = 100.0 * self.count / self.total if self.total else 100.0
            text = f"{self.name}: {self.count}/{self.total} ({percent:.0f}%)"
        else:
            text = f"{self.name}: {self.count}"
        text += f", {rate:.1f} req/s"
        if final and completed:
            text += f", done in {_clock(elapsed)}"
        elif final:
            text += f", {_stopped(self.count, self.total)} in {_clock(elapsed)}"
        elif self.total is not None and rate > 0:
            text += f", ETA {_clock((self.total - self.count) / rate)}"
        if self.errors:
            text += f", {self.errors} error{'s' if self.errors != 1 else ''}"
        print(text, file=sys.stderr, flush=True)


def _stopped(count: int, total: int | None) -> str:
    return f"stopped after {count} of {total}" if total is not None else f"stopped after {count}"


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
