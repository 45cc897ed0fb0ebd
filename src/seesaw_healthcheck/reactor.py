"""The check event loop: ``select.epoll``, a timer heap and a coroutine trampoline.

One reactor runs in one thread. Checkers are ``async def`` coroutines; what they await are
tiny ``types.coroutine`` generators that yield a request to the reactor:

- ``(fd, events)``: resume me when ``fd`` is ready (one-shot epoll registration);
- a ``Future``: resume me when it is resolved;
- a ``_Sleep`` or ``_Within``: a timer, or a tightening of my deadline.

The reactor resumes a task with ``coro.send(None)`` and, once the task's deadline has
passed, with ``coro.throw(TimeoutError())`` so its ``finally`` blocks close its sockets.

Why not asyncio: a health check is a handful of syscalls; asyncio's transports, handles and
callbacks cost more CPU than the syscalls. This loop keeps per-check work to one ``Task``,
one heap entry for its deadline and one epoll registration per socket.

fd registrations use ``EPOLLONESHOT``: an fd that fired is disarmed by the kernel, so a
socket nobody waits on never wakes the loop, and re-arming is one ``epoll_ctl(MOD)``.
Closing a socket removes it from the epoll set in the kernel; the fd number may then be
reused by a new socket, so ADD/MOD fall back to each other on ENOENT/EEXIST.
"""

from __future__ import annotations

import _socket
import contextlib
import functools
import heapq
import logging
import math
import os
import select
import threading
import time as _time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Final, Generic, TypeVar, cast

__all__ = [
    "Clock",
    "Event",
    "Future",
    "MockClock",
    "Reactor",
    "Task",
    "Timer",
    "current_task",
    "limit_deadline",
    "readable",
    "sleep",
    "within",
    "writable",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Final: the compiled build keeps these in C variables instead of the module's dict.
EPOLLIN: Final = select.EPOLLIN
EPOLLOUT: Final = select.EPOLLOUT
_ONESHOT: Final = select.EPOLLONESHOT
_READ_ONESHOT: Final = EPOLLIN | _ONESHOT
_WRITE_ONESHOT: Final = EPOLLOUT | _ONESHOT

_monotonic: Final = _time.monotonic
_MAX_DEADLINE_BUCKETS: Final = 64  # distinct timeouts; beyond that, deadlines go to the heap
# Per loop turn: at most this many epoll events, and at most this many due timers before
# polling again. When the loop falls behind (a burst of due checks, a stall of the
# interpreter lock), this keeps finishing the checks already in flight between starting
# new ones, instead of starting thousands and reading their answers after their deadlines.
MAX_EVENTS: Final = 1024
TIMER_BATCH: Final = 256


class Clock:
    """Where a reactor reads the time: the system's monotonic clock.

    Everything that schedules (timers, deadlines, the server's intervals and batch delays)
    reads this clock through its reactor, so tests can swap in a ``MockClock``.
    """

    autojump = False  # a plain clock never moves by itself

    def time(self) -> float:
        return _monotonic()

    def poll_timeout(self, timeout: float) -> float:
        """How long (real seconds, -1: forever) to block for a wait of ``timeout``."""
        return timeout

    def idle(self, timeout: float) -> None:
        """A poll for a wait of ``timeout`` found nothing ready."""


class MockClock(Clock):
    """Virtual time for tests (trio's ``MockClock``): it moves only when told to, or, with
    ``autojump_threshold``, jumps to the next timer or deadline once the loop has had
    nothing to do for that many real seconds. 0 jumps at once (nothing real to wait for);
    a few tens of milliseconds leave real peers (sockets, threads) time to answer first.
    """

    def __init__(self, start: float = 1000.0, autojump_threshold: float = math.inf) -> None:
        self._now = start
        self.autojump_threshold = autojump_threshold
        self.autojump = autojump_threshold != math.inf

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the time forward (the reactor's thread, or while it is not running)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds

    def poll_timeout(self, timeout: float) -> float:
        if not self.autojump:
            return timeout
        if timeout < 0:
            return self.autojump_threshold
        return min(timeout, self.autojump_threshold)

    def idle(self, timeout: float) -> None:
        if self.autojump and timeout > 0:
            self._now += timeout  # the wait is over: straight to the next due time


class Timer:
    """A scheduled callback; ``cancel()`` makes the heap skip it when it comes due."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Sleep:
    __slots__ = ("delay",)

    def __init__(self, delay: float) -> None:
        self.delay = delay


class _Within:
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Future(Generic[T]):
    """A value some callback on the reactor thread will provide; ``await fut`` waits for it.

    Not thread-safe: resolve it on the reactor thread (from an ``add_reader`` callback, a
    timer, or a ``call_soon_threadsafe`` callback).
    """

    __slots__ = ("_done", "_exception", "_result", "_waiters")

    def __init__(self) -> None:
        self._done = False
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._waiters: list[Task] = []

    def done(self) -> bool:
        return self._done

    def set_result(self, value: T) -> None:
        if self._done:
            raise RuntimeError("Future already resolved")
        self._result = value
        self._resolve()

    def set_exception(self, exc: BaseException) -> None:
        if self._done:
            raise RuntimeError("Future already resolved")
        self._exception = exc
        self._resolve()

    def _resolve(self) -> None:
        self._done = True
        waiters, self._waiters = self._waiters, []
        for task in waiters:
            task.reactor._ready.append((task, self))

    def result(self) -> T:
        if not self._done:
            raise RuntimeError("Future not resolved yet")
        if self._exception is not None:
            raise self._exception
        return self._result  # type: ignore[return-value]

    def __await__(self) -> Generator[Any, None, T]:
        if not self._done:
            yield self
        return self.result()


class Event:
    """A flag a callback sets and one task waits on, with a timeout (reactor thread)."""

    __slots__ = ("_future", "is_set")

    def __init__(self) -> None:
        self.is_set = False
        self._future: Future[None] | None = None

    def set(self) -> None:
        self.is_set = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    def clear(self) -> None:
        self.is_set = False

    async def wait(self, reactor: Reactor, timeout: float | None = None) -> bool:
        """Until set (True), or ``timeout`` seconds have passed (False)."""
        if self.is_set:
            return True
        future: Future[None] = Future()
        self._future = future
        timer: Timer | None = None
        if timeout is not None:
            timer = reactor.call_later(
                timeout, lambda: None if future.done() else future.set_result(None)
            )
        try:
            await future
        finally:
            self._future = None
            if timer is not None:
                timer.cancel()
        return self.is_set


class Task:
    """A coroutine running on a reactor. ``cancel()`` closes it (its ``finally`` runs)."""

    __slots__ = (
        "coro",
        "deadline",
        "done",
        "on_done",
        "reactor",
        "result",
        "timed_out",
        "wait",
    )

    def __init__(
        self,
        reactor: Reactor,
        coro: Coroutine[Any, Any, Any],
        deadline: float | None,
        on_done: Callable[[Any], object] | None,
    ) -> None:
        self.reactor = reactor
        self.coro = coro
        self.deadline = deadline
        self.on_done = on_done
        self.done = False
        self.timed_out = False
        self.result: Any = None  # the outcome, kept only when there is no on_done
        # What the task is suspended on: an fd (int), a Timer, a Future, or None.
        self.wait: object = None

    def cancel(self) -> None:
        """Stop the task now; ``on_done`` is not called. Reactor thread only."""
        if self.done:
            return
        self.done = True
        self.reactor._detach(self)
        try:
            self.coro.close()
        except BaseException:  # a coroutine that refuses to close: nothing more to do
            log.exception("task %r did not close cleanly", self.coro)


async def _nothing() -> None:
    pass


# What a finished task's ``coro`` becomes: the coroutine object is freed right away instead
# of living on with the task until its pending deadline entry is dropped (memory that the
# next check's allocations then reuse while it is still in the cache).
_FINISHED: Final = _nothing()
_FINISHED.close()


class _Done:
    """A task's last request in the compiled build: the value its coroutine returned."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value: object = value

    def __await__(self) -> Generator[Any, None, None]:
        yield self


async def _outcome(coro: Coroutine[Any, Any, Any]) -> None:
    """The compiled build's task body: runs ``coro`` and hands what it returns to the
    reactor as a last request (``_Done``), never resumed.

    A coroutine returns by raising StopIteration out of ``send``, and compiled code builds
    a traceback (a code object and a frame) for every exception it catches: ~6,000
    instructions per check. An ``await`` between compiled coroutines passes the value
    without an exception. Interpreted, catching StopIteration is cheaper than this extra
    coroutine, so the plain-Python build does not wrap.
    """
    await _Done(await coro)


def _probe() -> None:
    """Never called: its class tells whether this module runs compiled."""


# True when this module runs as mypyc-compiled code (see build_info), False as plain Python.
COMPILED: Final = _probe.__class__ is not types.FunctionType


class _Wait:
    """An awaitable that yields one ``request`` to the reactor: the compiled build's
    ``readable``, ``writable``, ``sleep`` and ``within``.

    mypyc compiles a generator into an object that a compiled coroutine can await but an
    interpreted one cannot (it has no ``__await__``), and ``types.coroutine`` cannot mark
    it. A class with an ``__await__`` generator is awaitable from both. (An iterator class
    ending the wait with ``raise StopIteration`` works too but costs 4x: compiled code
    builds a traceback for every exception it raises.) Interpreted, the
    ``types.coroutine`` generators below are cheaper, so the plain-Python build keeps
    those.
    """

    __slots__ = ("request",)

    def __init__(self, request: object) -> None:
        self.request: object = request

    def __await__(self) -> Generator[Any, None, None]:
        yield self.request


def _readable_wait(sock: _socket.socket | int) -> _Wait:
    return _Wait((sock if isinstance(sock, int) else sock.fileno(), _READ_ONESHOT))


def _writable_wait(sock: _socket.socket | int) -> _Wait:
    return _Wait((sock if isinstance(sock, int) else sock.fileno(), _WRITE_ONESHOT))


def _readable_gen(sock: _socket.socket | int) -> Generator[Any, None, None]:
    yield (sock if isinstance(sock, int) else sock.fileno(), _READ_ONESHOT)


def _writable_gen(sock: _socket.socket | int) -> Generator[Any, None, None]:
    yield (sock if isinstance(sock, int) else sock.fileno(), _WRITE_ONESHOT)


WaitFunction = Callable[[_socket.socket | int], Awaitable[None]]

readable: WaitFunction
"""``await readable(sock)``: wait until ``sock`` is readable (or has an error or hang-up)."""
writable: WaitFunction
"""``await writable(sock)``: wait until ``sock`` is writable (a non-blocking connect has
finished)."""
if COMPILED:
    readable = cast(WaitFunction, _readable_wait)
    writable = cast(WaitFunction, _writable_wait)
else:
    readable = types.coroutine(_readable_gen)
    writable = types.coroutine(_writable_gen)


class _Running:
    """Which task is being resumed right now, if any: one per process (cheaper than a
    thread-local on the hot path; one reactor runs checks per process at a time). An
    object rather than a module global, which compiled code would look up in a dict."""

    __slots__ = ("task",)

    def __init__(self) -> None:
        self.task: Task | None = None


_RUNNING: Final = _Running()


def current_task() -> Task | None:
    """The task whose coroutine is running (None outside any task)."""
    return _RUNNING.task


def current_reactor() -> Reactor:
    """The reactor running the calling coroutine (for services shared by its tasks)."""
    task = _RUNNING.task
    if task is None:
        raise RuntimeError("not inside a task running on a seesaw_healthcheck Reactor")
    return task.reactor


def limit_deadline(seconds: float) -> None:
    """Synchronous ``within``: the current task's deadline becomes at most now + seconds.

    Cheaper than ``await within(...)`` (no trip through the reactor); a no-op outside a task.
    """
    task = _RUNNING.task
    if task is None:
        return
    when = task.reactor.clock.time() + seconds
    deadline = task.deadline
    if deadline is not None and when >= deadline:
        return
    bucket = task.reactor._deadlines.get(seconds)
    if bucket is not None and seconds > 0:  # the common case, inlined
        task.deadline = when
        bucket.append(task)
    else:
        task.reactor._tighten(task, seconds)


def _sleep_gen(seconds: float) -> Generator[Any, None, None]:
    yield _Sleep(seconds)


def _within_gen(seconds: float) -> Generator[Any, None, None]:
    yield _Within(seconds)


def _sleep_wait(seconds: float) -> _Wait:
    return _Wait(_Sleep(seconds))


def _within_wait(seconds: float) -> _Wait:
    return _Wait(_Within(seconds))


sleep: Callable[[float], Awaitable[None]]
"""``await sleep(seconds)``: suspend the task for ``seconds``."""
within: Callable[[float], Awaitable[None]]
"""``await within(seconds)``: make the task's deadline at most ``seconds`` from now (never
extends it)."""
if COMPILED:
    sleep = cast(Callable[[float], Awaitable[None]], _sleep_wait)
    within = cast(Callable[[float], Awaitable[None]], _within_wait)
else:
    sleep = types.coroutine(_sleep_gen)
    within = types.coroutine(_within_gen)


class Reactor:
    """epoll + timer heap + trampoline. All methods but ``call_soon_threadsafe`` and
    ``stop`` belong to the reactor's thread."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock if clock is not None else Clock()
        self._epoll = select.epoll()
        # Timers and heap deadlines: a heap of the distinct due times (floats compare
        # several times faster than (when, seq, item) tuples, and a heap of 10,000 checks'
        # timers compares ~14 times per push and pop), and what is due at each, in the
        # order it was added.
        self._heap: list[float] = []
        self._due: dict[float, list[Any]] = {}
        # Deadlines of tasks, bucketed by their relative timeout: within one bucket they
        # come in increasing order, so a deque is a priority queue with O(1) push and pop
        # (a heap of 100,000 pending deadlines costs microseconds per check). An entry is
        # the task itself (no tuple per check); its deadline is ``task.deadline``, which
        # is at most the time it was appended for (deadlines only tighten), so a bucket's
        # head is due no later than it would have been; a tightened task is also in the
        # bucket of its new timeout, and found there in time.
        self._deadlines: dict[float, deque[Task]] = {}
        self._waiters: dict[int, Task] = {}  # fd -> task suspended on it
        self._registered: dict[int, Task | None] = {}  # fd -> task that armed it last
        self._readers: dict[int, Callable[[], object]] = {}
        self._ready: deque[tuple[Task, Future[Any]]] = deque()
        self._threadsafe: deque[Callable[[], object]] = deque()
        self._wake_pending = False
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._wake_lock = threading.Lock()
        self._epoll.register(self._wake_fd, EPOLLIN)
        self._running = False
        self._closed = False
        # Callbacks close() runs (services shared by the reactor's tasks); a dict keeps
        # registration order and makes removal O(1) (bound methods compare by self+func).
        self._on_close: dict[Callable[[], object], None] = {}
        # What the modules running on this reactor keep per reactor, by a key each owns
        # (trio's RunVar): state that must not outlive the loop or be shared between loops.
        self.run_vars: dict[object, object] = {}

    # --- time and timers -------------------------------------------------------------

    def time(self) -> float:
        """Seconds on the reactor's clock (monotonic): the clock of ``call_at`` and
        deadlines."""
        return self.clock.time()

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(when, callback)
        self._schedule(when, timer)
        return timer

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return self.call_at(self.clock.time() + delay, callback)

    def _schedule(self, when: float, item: Timer | Task) -> None:
        """Have the loop take ``item`` (a Timer to fire, a Task whose deadline comes) at
        ``when``, after what is already due then."""
        if when != when:  # NaN: never due (and a NaN key would never be found again)
            when = math.inf
        items = self._due.get(when)
        if items is None:
            self._due[when] = [item]
            heapq.heappush(self._heap, when)
        else:
            items.append(item)

    def call_soon_threadsafe(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the reactor thread soon; callable from any thread.

        After ``close()`` the callback is dropped: nothing would run it, and the eventfd's
        number may belong to another file by then (the lock keeps the write and the close
        apart).
        """
        if self._closed:
            return
        self._threadsafe.append(callback)
        if not self._wake_pending:
            self._wake_pending = True
            with self._wake_lock:
                if self._wake_fd >= 0:
                    # A saturated counter is the only error: the loop is awake anyway.
                    with contextlib.suppress(OSError):
                        os.eventfd_write(self._wake_fd, 1)

    # --- fds -------------------------------------------------------------------------

    def add_reader(self, fd: _socket.socket | int, callback: Callable[[], object]) -> None:
        """Call ``callback`` whenever the long-lived ``fd`` is readable (level-triggered)."""
        num = fd if isinstance(fd, int) else fd.fileno()
        if num in self._readers:
            self._readers[num] = callback
            return
        self._readers[num] = callback
        self._arm(num, EPOLLIN, None)

    def remove_reader(self, fd: _socket.socket | int) -> None:
        num = fd if isinstance(fd, int) else fd.fileno()
        if self._readers.pop(num, None) is not None:
            self._registered.pop(num, None)
            with contextlib.suppress(OSError, ValueError):  # closed: the kernel dropped it
                self._epoll.unregister(num)

    def _arm(self, fd: int, events: int, task: Task | None) -> None:
        ep = self._epoll
        if self._registered.get(fd, False) is task:
            try:
                ep.modify(fd, events)
            except FileNotFoundError:  # closed and reopened by the same task
                ep.register(fd, events)
        else:
            try:
                ep.register(fd, events)
            except FileExistsError:
                ep.modify(fd, events)
        self._registered[fd] = task

    # --- close hooks -----------------------------------------------------------------

    def on_close(self, callback: Callable[[], object]) -> None:
        """Have ``close()`` call ``callback()`` (once; registering it again is a no-op).

        For resources shared by the reactor's tasks, such as ping's ICMP sockets. They run
        after unfinished tasks are cancelled and before the epoll fd is closed, the last
        registered first; an exception is logged, not raised.
        """
        if self._closed:
            raise RuntimeError("reactor is closed")
        self._on_close[callback] = None

    def remove_on_close(self, callback: Callable[[], object]) -> None:
        """Forget a ``callback`` given to ``on_close`` (no error if it is not there)."""
        self._on_close.pop(callback, None)

    # --- tasks -----------------------------------------------------------------------

    def spawn(
        self,
        coro: Coroutine[Any, Any, Any],
        deadline: float | None = None,
        on_done: Callable[[Any], object] | None = None,
    ) -> Task:
        """Start ``coro`` now (it runs until its first wait before this returns).

        ``on_done(result_or_exception)`` is called when it finishes — possibly before
        ``spawn`` returns, if it never waits. ``deadline`` is on the ``time()`` clock.
        """
        if COMPILED:
            coro = _outcome(coro)
        task = Task(self, coro, deadline, on_done)
        if deadline is not None:
            self._schedule(deadline, task)
        self._step(task, None)
        return task

    def _step(self, task: Task, exc: BaseException | None) -> None:
        """Resume ``task`` and serve what it asks for, until it waits or finishes."""
        running = _RUNNING
        coro: Any = task.coro
        while True:
            outer = running.task
            running.task = task
            try:
                if exc is not None:
                    req = coro.throw(exc)
                elif COMPILED:
                    # _outcome's compiled coroutine is an iterator too: next() resumes it
                    # without looking a method up (and it never ends in StopIteration).
                    req = next(coro)
                else:
                    req = coro.send(None)
            except StopIteration as stop:
                running.task = outer
                self._complete(task, stop.value)
                return
            except BaseException as error:
                running.task = outer
                self._finish(task, error)
                return
            running.task = outer
            exc = None
            cls = req.__class__
            if cls is _Done:  # the compiled build's way to finish (see _outcome)
                self._complete(task, req.value)
                return
            if cls is tuple:  # (fd, events): the hot path, inlined
                if task.timed_out:
                    exc = TimeoutError()  # past the deadline: no more waiting
                    continue
                fd, events = req
                waiters = self._waiters
                if waiters.setdefault(fd, task) is not task:
                    exc = RuntimeError(f"fd {fd} is already awaited by another task")
                    continue
                task.wait = fd
                registered = self._registered
                try:
                    # The same task re-arming its fd: MOD; a new socket (or a reused fd
                    # number): ADD. Each falls back to the other (see the module docstring).
                    if registered.get(fd) is task:
                        try:
                            self._epoll.modify(fd, events)
                        except FileNotFoundError:
                            self._epoll.register(fd, events)
                    else:
                        try:
                            self._epoll.register(fd, events)
                        except FileExistsError:
                            self._epoll.modify(fd, events)
                except (OSError, ValueError) as error:  # a closed or bogus fd
                    del waiters[fd]
                    task.wait = None
                    exc = error
                    continue
                registered[fd] = task
                return
            if task.timed_out and cls is not _Within:
                exc = TimeoutError()  # past the deadline: no more waiting
                continue
            if cls is Future:
                if req._done:
                    continue
                req._waiters.append(task)
                task.wait = req
                return
            if cls is _Within:
                self._tighten(task, req.seconds)
                if task.timed_out:
                    exc = TimeoutError()
                continue
            if cls is _Sleep:
                timer = self.call_at(
                    self.clock.time() + req.delay, functools.partial(self._wake, task)
                )
                task.wait = timer
                return
            exc = RuntimeError(f"reactor task yielded an unsupported value: {req!r}")

    def _complete(self, task: Task, value: Any) -> None:
        """The task's coroutine returned ``value``."""
        task.done = True
        task.wait = None
        task.coro = _FINISHED
        on_done = task.on_done
        if on_done is None:
            self._finish(task, value)
            return
        # _finish inlined for the usual case. The outcome goes to on_done only: a finished
        # task can stay referenced (by its pending deadline entry) for a while, and should
        # not keep its Result alive.
        try:
            on_done(value)
        except Exception:
            log.exception("on_done callback failed")

    def _tighten(self, task: Task, seconds: float) -> None:
        when = self.clock.time() + seconds
        if task.deadline is not None and when >= task.deadline:
            return
        task.deadline = when
        if seconds <= 0:
            task.timed_out = True
            return
        bucket = self._deadlines.get(seconds)
        if bucket is None:
            if len(self._deadlines) >= _MAX_DEADLINE_BUCKETS:
                self._schedule(when, task)
                return
            bucket = self._deadlines[seconds] = deque()
        bucket.append(task)

    def _expire_deadlines(self, now: float) -> None:
        empty = []
        # A copy: a task resumed with TimeoutError may start a check, adding a bucket.
        for seconds, bucket in list(self._deadlines.items()):
            # Checks mostly end in the order they started: dropping finished tasks from the
            # head keeps a bucket about as long as the number in flight (and frees them).
            while bucket:
                task = bucket[0]
                when = task.deadline
                if task.done:
                    bucket.popleft()
                elif when is not None and when <= now:  # (an entry's task has a deadline)
                    bucket.popleft()
                    self._timeout(task, when)
                else:
                    break
            if not bucket:
                empty.append(seconds)
        for seconds in empty:
            if not self._deadlines.get(seconds, True):
                del self._deadlines[seconds]

    def _next_deadline(self) -> float | None:
        earliest = None
        for bucket in self._deadlines.values():
            if bucket:
                when = bucket[0].deadline
                if when is not None and (earliest is None or when < earliest):
                    earliest = when
        return earliest

    def _wake(self, task: Task) -> None:
        if not task.done:
            task.wait = None
            self._step(task, TimeoutError() if task.timed_out else None)

    def _detach(self, task: Task) -> None:
        """Forget what ``task`` is suspended on (for a timeout or a cancel)."""
        wait = task.wait
        task.wait = None
        if wait is None:
            return
        if isinstance(wait, int):
            if self._waiters.get(wait) is task:
                del self._waiters[wait]
        elif isinstance(wait, Timer):
            wait.cancel()
        elif isinstance(wait, Future):
            with contextlib.suppress(ValueError):
                wait._waiters.remove(task)

    def _timeout(self, task: Task, when: float) -> None:
        if task.done or task.timed_out or when != task.deadline:
            return  # finished, told already, or a stale entry of a tightened deadline
        task.timed_out = True
        if task.wait is None:
            return  # running right now (or resolved and queued): it sees timed_out next
        self._detach(task)
        self._step(task, TimeoutError())

    def _finish(self, task: Task, outcome: Any) -> None:
        task.done = True
        task.wait = None
        task.coro = _FINISHED
        if task.on_done is not None:
            # The outcome goes to on_done only: a finished task can stay referenced (by its
            # pending deadline entry) for a while, and should not keep its Result alive.
            try:
                task.on_done(outcome)
            except Exception:
                log.exception("on_done callback failed")
            return
        task.result = outcome
        if isinstance(outcome, BaseException):
            log.error("reactor task failed", exc_info=outcome)

    # --- the loop --------------------------------------------------------------------

    def run_forever(self) -> None:
        self._run_until(None)

    def _run_until(self, task: Task | None) -> None:
        if self._closed:
            raise RuntimeError("reactor is closed")
        if self._running:
            raise RuntimeError("reactor is already running")
        self._running = True
        heap = self._heap
        due_items = self._due
        deadlines = self._deadlines
        waiters = self._waiters
        readers = self._readers
        ready = self._ready
        threadsafe = self._threadsafe
        poll = self._epoll.poll
        clock = self.clock
        autojump = clock.autojump
        wake_fd = self._wake_fd
        heappop = heapq.heappop
        more_due = False  # timers left due after the last turn's batch
        try:
            while self._running and (task is None or not task.done):
                if ready or threadsafe or more_due:
                    timeout = 0.0
                else:
                    due = heap[0] if heap else None
                    if deadlines:
                        first = self._next_deadline()
                        if first is not None and (due is None or first < due):
                            due = first
                    if due is None:
                        timeout = -1.0
                    else:
                        timeout = due - clock.time()
                        if timeout < 0:
                            timeout = 0.0
                if autojump:
                    events = poll(clock.poll_timeout(timeout), MAX_EVENTS)
                    if not events:
                        clock.idle(timeout)
                else:
                    events = poll(timeout, MAX_EVENTS)
                # What a wake-up can vouch for: readiness seen by this poll. A task whose
                # deadline had passed by then gets its timeout although its socket is ready:
                # the answer may have come after the deadline, and only the loop's own delay
                # would make it count (Go's deadlines judge the same way).
                polled_at = clock.time()
                for fd, _ in events:
                    waiter = waiters.pop(fd, None)
                    if waiter is not None:
                        waiter.wait = None
                        deadline = waiter.deadline
                        if deadline is not None and deadline < polled_at:
                            waiter.timed_out = True
                        self._step(waiter, TimeoutError() if waiter.timed_out else None)
                    elif fd == wake_fd:
                        # Drain first, then clear: a caller that saw the flag still set
                        # has its callback queued already; one that sees it clear writes
                        # again. Clearing first could lose that write and never wake.
                        with contextlib.suppress(BlockingIOError):
                            os.eventfd_read(wake_fd)
                        self._wake_pending = False
                    else:
                        reader = readers.get(fd)
                        if reader is not None:
                            try:
                                reader()
                            except Exception:
                                log.exception("reader callback for fd %d failed", fd)
                while threadsafe:
                    callback = threadsafe.popleft()
                    try:
                        callback()
                    except Exception:
                        log.exception("callback failed")
                while ready:
                    waiter, fut = ready.popleft()
                    if waiter.wait is fut and not waiter.done:
                        waiter.wait = None
                        deadline = waiter.deadline
                        if deadline is not None and deadline < polled_at:
                            waiter.timed_out = True
                        self._step(waiter, TimeoutError() if waiter.timed_out else None)
                if len(events) == MAX_EVENTS:
                    # More may be ready: read those before judging any deadline, so a
                    # check whose answer came in time is not failed for our own delay.
                    more_due = True
                    continue
                if deadlines:
                    self._expire_deadlines(clock.time())
                more_due = False
                if heap:
                    now = clock.time()
                    budget = TIMER_BATCH
                    while heap and heap[0] <= now:
                        if not budget:
                            more_due = True
                            break
                        when = heappop(heap)
                        items = due_items.pop(when)
                        for index, item in enumerate(items):
                            if not budget:  # the rest waits for the next turn, first
                                rest = items[index:]
                                later = due_items.get(when)
                                if later is None:
                                    due_items[when] = rest
                                    heapq.heappush(heap, when)
                                else:  # added for the same time meanwhile
                                    due_items[when] = rest + later
                                more_due = True
                                break
                            if item.__class__ is Timer:
                                if not item.cancelled:
                                    budget -= 1
                                    item.cancelled = True  # fired: a late cancel() is harmless
                                    try:
                                        item.callback()
                                    except Exception:
                                        log.exception("timer callback failed")
                            else:
                                budget -= 1
                                self._timeout(item, when)
        finally:
            self._running = False

    def stop(self) -> None:
        """Make ``run_forever`` return soon; callable from any thread."""

        def _stop() -> None:
            self._running = False

        self.call_soon_threadsafe(_stop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` to completion on this reactor and return its result (or raise).

        With ``timeout``, ``TimeoutError`` is thrown into it after that many seconds.
        """
        deadline = None if timeout is None else self.clock.time() + timeout
        outcome: list[Any] = []
        task = self.spawn(coro, deadline=deadline, on_done=outcome.append)
        if not task.done:
            try:
                self._run_until(task)
            except BaseException:
                task.cancel()
                raise
        if not task.done:  # stopped from elsewhere before the task finished
            task.cancel()
            raise RuntimeError("reactor stopped before the task finished")
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]  # type: ignore[no-any-return]

    def close(self) -> None:
        """Cancel unfinished tasks, run the ``on_close`` callbacks, release the fds."""
        if self._closed:
            return
        if self._running:
            raise RuntimeError("cannot close a running reactor")
        self._closed = True
        # Close unfinished tasks now, so their finally blocks close their sockets.
        pending = {id(task): task for task in self._waiters.values()}
        for bucket in self._deadlines.values():
            pending.update((id(task), task) for task in bucket)
        for items in self._due.values():
            pending.update((id(item), item) for item in items if isinstance(item, Task))
        pending.update((id(task), task) for task, _ in self._ready)
        for task in pending.values():
            task.cancel()
        self._waiters.clear()
        self._deadlines.clear()
        self._heap.clear()
        self._due.clear()
        self._ready.clear()
        # Last in, first out; a callback may remove others that have not run yet.
        while self._on_close:
            callback, _ = self._on_close.popitem()
            try:
                callback()
            except Exception:
                log.exception("reactor close callback failed")
        self.run_vars.clear()
        self._epoll.close()
        with self._wake_lock:
            os.close(self._wake_fd)
            self._wake_fd = -1

    def __enter__(self) -> Reactor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
