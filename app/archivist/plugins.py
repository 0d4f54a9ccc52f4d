"""Plugin discovery and the host that keeps a failing plugin from taking the app down.

Built-in features are plugins too: the core's own model backend is registered here by
module, and the FAISS and safety plugins arrive through the same ``archivist``
entry-point group a third party uses. The host calls each plugin's hook implementation
on its own, so one that raises is reported with its name and disabled for the session
while the others carry on.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import pluggy

from archivist import API_VERSION, hookspecs
from archivist.context import PluginContext

# Time limits by "Protocol.method": archivist.contract says which calls have one and why
# loading a model or syncing a library has none (re-exported here, the table's old home).
from archivist.contract import DEFAULT_TIMEOUTS as DEFAULT_TIMEOUTS
from archivist.contract import HOOK_PROTOCOLS, HOST_TIMEOUTS, KEPT_ON_FAILURE, method_key, missing, resolve_timeouts
from archivist.errors import ArchivistError, PluginFailure
from archivist.protocols import Closable
from archivist.types import PluginError

if TYPE_CHECKING:
    from archivist.protocols import DocumentLoader, Library, ModelBackend, Panel, Retriever, SafetyFilter

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "archivist"
BUILTIN_DISTRIBUTION = "archivist"
# Core modules that implement hooks; they always load, even in safe mode.
CORE_PLUGINS: tuple[str, ...] = ("archivist.engine.backend",)

# Module attribute a plugin sets to the API version it was written against, e.g. "1.0".
API_ATTRIBUTE = "ARCHIVIST_API_VERSION"
# Hooks called on the caller's thread, without the ``hooks`` time limit: the window
# collects panels on the GUI thread, and a panel may make Qt objects there.
UNGUARDED_HOOKS: frozenset[str] = frozenset({"register_panels"})
# Errors kept per plugin that stays on after failing (see PluginHost.record_error).
MAX_ERRORS_KEPT = 20

T = TypeVar("T")


@dataclass
class PluginRecord:
    """What the user is shown about one plugin: where it came from and how it fares."""

    name: str
    version: str
    origin: str  # "core", "built-in" or "third-party"
    module: str
    enabled: bool = True
    errors: list[PluginError] = field(default_factory=list)
    disabled_by_user: bool = False

    @property
    def builtin(self) -> bool:
        return self.origin in ("core", "built-in")

    def hooks(self, pm: pluggy.PluginManager) -> list[str]:
        plugin = pm.get_plugin(self.name)
        if plugin is None:
            return []
        return sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "origin": self.origin,
            "module": self.module,
            "enabled": self.enabled,
            "disabled_by_user": self.disabled_by_user,
            "errors": [e.to_dict() for e in self.errors],
        }


@dataclass(frozen=True)
class Contribution(Generic[T]):
    """An object a plugin registered, remembered with the plugin it came from and the
    Protocol it was registered as (that of the hook's ``register``; None when made by
    hand, in which case the time limits go by whichever hook Protocol ``obj`` satisfies)."""

    plugin: str
    obj: T
    protocol: type | None = None


def allowed_plugins_from_env() -> set[str] | None:
    """``ARCHIVIST_PLUGINS=a,b`` loads only those entry-point plugins; unset loads all."""
    raw = os.environ.get("ARCHIVIST_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def api_compatible(wanted: str, have: str = API_VERSION) -> bool:
    """A plugin written for ``wanted`` runs on ``have``: same major, no newer minor."""
    try:
        w_major, w_minor = (int(x) for x in (wanted.split(".") + ["0"])[:2])
        h_major, h_minor = (int(x) for x in (have.split(".") + ["0"])[:2])
    except ValueError:
        return False
    return w_major == h_major and w_minor <= h_minor


def get_plugin_manager(
    *,
    safe_mode: bool = False,
    allowed: set[str] | None = None,
    disabled: set[str] | None = None,
    load_entry_points: bool = True,
    records: dict[str, PluginRecord] | None = None,
    import_timeout: float | None = HOST_TIMEOUTS["import"],
) -> pluggy.PluginManager:
    """A plugin manager with the core plugins and the entry-point plugins that may load.

    ``safe_mode`` keeps only plugins shipped in Archivist's own distribution;
    ``allowed`` (default: from ``ARCHIVIST_PLUGINS``) restricts entry-point plugins by
    name; ``disabled`` names plugins the user switched off (listed, never imported).
    A plugin whose import fails, outlasts ``import_timeout`` seconds (None: no limit;
    the import goes on, abandoned, on a daemon thread) or wants another API version is
    recorded in ``records`` and skipped.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    records = records if records is not None else {}
    version = _archivist_version()
    for module_name in CORE_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        records[module_name] = PluginRecord(module_name, version, "core", module_name)
    if not load_entry_points:
        return pm
    if allowed is None:
        allowed = allowed_plugins_from_env()
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist is not None else ""
        builtin = _normalise(dist) == BUILTIN_DISTRIBUTION
        if safe_mode and not builtin:
            continue
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        record = PluginRecord(
            name=ep.name,
            version=ep.dist.version if ep.dist is not None else "",
            origin="built-in" if builtin else "third-party",
            module=ep.value,
        )
        records[ep.name] = record
        if disabled and ep.name in disabled:
            record.enabled = False
            record.disabled_by_user = True
            continue
        try:
            plugin = ep.load() if import_timeout is None else _call_with_timeout(ep.load, (), {}, import_timeout)
        except PluginTimeout:
            record.enabled = False
            message = (f"its import did not finish within {import_timeout:g} s, so Archivist stopped waiting "
                       f"(`archivist plugins disable {ep.name}` keeps it from loading)")
            record.errors.append(PluginError(ep.name, "load", message))
            log.warning("plugin %s failed to load: %s", ep.name, message)
            continue
        except Exception as exc:  # a broken plugin must not stop the app
            record.enabled = False
            record.errors.append(PluginError(ep.name, "load", _describe(exc)))
            log.warning("plugin %s failed to load: %s", ep.name, _describe(exc))
            continue
        wanted = getattr(plugin, API_ATTRIBUTE, None)
        if wanted is not None and not api_compatible(str(wanted)):
            record.enabled = False
            message = (
                f"needs plugin API {wanted}, but this Archivist provides {API_VERSION}; "
                "update the plugin or Archivist"
            )
            record.errors.append(PluginError(ep.name, "api version", message))
            log.warning("plugin %s disabled: %s", ep.name, message)
            continue
        pm.register(plugin, name=ep.name)
    return pm


@dataclass(frozen=True)
class KnownPlugin:
    """A plugin as its installation describes it, found without importing it."""

    name: str
    origin: str  # "core", "built-in" or "third-party"
    module: str


def known_plugins() -> list[KnownPlugin]:
    """Every plugin installed, third-party ones included whatever the mode, read from
    the entry points' metadata only: nothing is imported, so a plugin that hangs or
    crashes on import can still be named (``archivist plugins disable NAME``)."""
    found = [KnownPlugin(name, "core", name) for name in CORE_PLUGINS]
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist is not None else ""
        builtin = _normalise(dist) == BUILTIN_DISTRIBUTION
        if all(k.name != ep.name for k in found):
            found.append(KnownPlugin(ep.name, "built-in" if builtin else "third-party", ep.value))
    return found


class PluginHost:
    """Calls hooks one plugin at a time and runs contributions under a guard.

    The first exception from a plugin (in a hook or in an object it contributed)
    disables that plugin for the session: its hooks are no longer called and its
    contributions are dropped. ``on_error`` listeners (the GUI, the CLI) are told. So
    does registering an object that is not what the hook's Protocol says
    (:data:`archivist.contract.HOOK_PROTOCOLS`), an import or a hook call that outlasts
    its limit (:data:`archivist.contract.HOST_TIMEOUTS`). A safety filter's ``screen``
    is the exception (:data:`archivist.contract.KEPT_ON_FAILURE`): its failure is
    recorded and told, and the plugin stays on; the screener fails closed instead.
    """

    def __init__(
        self,
        context: PluginContext,
        *,
        safe_mode: bool = False,
        allowed: set[str] | None = None,
        disabled: set[str] | None = None,
        load_entry_points: bool = True,
        extra_plugins: Iterable[tuple[str, object]] = (),
        timeouts: Mapping[str, Any] | None = None,
    ) -> None:
        # PluginContext.loaders() answers from this host.
        self.context = replace(context, find_loaders=self._loader_objects)
        self.records: dict[str, PluginRecord] = {}
        # Seconds per "Protocol.method", and the host's own "import" and "hooks" (see
        # archivist.contract.resolve_timeouts: the defaults, ``timeouts`` over them).
        self.timeouts = resolve_timeouts(timeouts)
        self.pm = get_plugin_manager(
            safe_mode=safe_mode,
            allowed=allowed,
            disabled=disabled,
            load_entry_points=load_entry_points,
            records=self.records,
            import_timeout=self.timeouts.get("import"),
        )
        self.trace = bool(os.environ.get("ARCHIVIST_TRACE_PLUGINS"))
        for name, plugin in extra_plugins:
            self.add(name, plugin)
        self.listeners: list[Callable[[PluginError], None]] = []
        self._cache: dict[str, list[Contribution[Any]]] = {}
        self._collect_lock = threading.RLock()
        # One lock per hook, so that a hook implementation (on a guard thread) may ask
        # for another hook's contributions while its own are being collected.
        self._hook_locks: dict[str, threading.Lock] = {}

    def use_context(self, context: PluginContext) -> None:
        """Hand the plugins ``context`` from now on (its ``find_loaders`` set to this
        host's). Contributions are collected again, so that none keeps the old one."""
        with self._collect_lock:
            self.context = replace(context, find_loaders=self._loader_objects)
            self._cache = {}

    def _loader_objects(self) -> list[DocumentLoader]:
        return [c.obj for c in self.loaders()]

    def add(self, name: str, plugin: object, origin: str = "third-party") -> None:
        """Register a plugin object directly (tests, embedding apps)."""
        self.pm.register(plugin, name=name)
        self.records[name] = PluginRecord(name, "", origin, getattr(plugin, "__name__", name))
        self._cache = {}

    @property
    def errors(self) -> list[PluginError]:
        return [e for r in self.records.values() for e in r.errors]

    def enabled(self, name: str) -> bool:
        record = self.records.get(name)
        return record is not None and record.enabled

    def disable(self, name: str, where: str, exc: BaseException) -> PluginError:
        """Record ``exc`` against plugin ``name`` and switch the plugin off for the session."""
        return self.record_error(name, where, exc, disable=True)

    def record_error(self, name: str, where: str, exc: BaseException, *, disable: bool = False) -> PluginError:
        """Record ``exc`` against plugin ``name`` and tell the listeners; with ``disable``,
        also switch the plugin off for the session (:meth:`disable`). A plugin left on
        keeps its last errors only (a filter failing on every text must not fill memory)."""
        error = PluginError(name, where, _describe(exc))
        record = self.records.setdefault(name, PluginRecord(name, "", "third-party", name))
        record.errors.append(error)
        if disable:
            record.enabled = False
            self._cache = {}
            log.error("plugin %s failed in %s and was disabled: %s", name, where, error.message)
        else:
            del record.errors[:-MAX_ERRORS_KEPT]
            log.error("plugin %s failed in %s (it stays on): %s", name, where, error.message)
        for listener in list(self.listeners):
            try:
                listener(error)
            except Exception:  # a listener's failure must not hide the plugin's
                log.exception("plugin error listener failed")
        return error

    def call_hook(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every enabled implementation of ``hook_name`` in pluggy's order and return
        (plugin, result) pairs for the results that are not None, as changed by any hook
        wrappers (see :meth:`_call`)."""
        return self._call(hook_name, kwargs)

    def _call(self, hook_name: str, kwargs: dict[str, Any],
              bind: Callable[[str], dict[str, Any]] | None = None) -> list[tuple[str, Any]]:
        """Run ``hook_name``'s implementations the way pluggy's own call loop does, one
        plugin at a time so that one that raises is disabled and the rest go on.

        Order, as pluggy documents it: the wrappers first (``wrapper=True`` and the older
        ``hookwrapper=True``; ``tryfirst`` ones outermost), then the plain implementations
        from the last registered to the first, ``tryfirst`` before and ``trylast`` after
        the rest. A wrapper's code after its ``yield`` runs once the plain ones are done:
        a new-style wrapper receives their results and what it returns becomes the
        results; an old-style one receives a :class:`pluggy.Result` and may
        ``force_result``. A result a wrapper returns keeps the plugin that produced it
        (matched by identity); an object the wrapper made itself is credited to the
        wrapper. A plain implementation that raises is disabled and left out of the
        results; pluggy would hand its exception to the wrappers, but here one plugin's
        bug stays its own.

        Each piece of a plugin's hook code runs under the ``hooks`` time limit (but
        :data:`UNGUARDED_HOOKS`): one that outlasts it is disabled and left running,
        abandoned, on its guard thread. ``bind(plugin)`` gives arguments of that plugin's
        own (a ``register`` callback that knows whom a contribution came from).
        """
        hook = getattr(self.pm.hook, hook_name)
        limit = None if hook_name in UNGUARDED_HOOKS else self.timeouts.get("hooks")
        results: list[tuple[str, Any]] = []
        teardowns: list[tuple[str, Any, bool]] = []
        for impl in reversed(hook.get_hookimpls()):
            name = impl.plugin_name
            if not self.enabled(name):
                continue
            given = {**kwargs, **bind(name)} if bind is not None else kwargs
            args = {arg: given[arg] for arg in impl.argnames if arg in given}
            wrapper = bool(impl.wrapper or impl.hookwrapper)
            mark = len(results)
            started = time.perf_counter()
            try:
                if wrapper:
                    teardown = _hook_step(limit, _started_wrapper, impl.function, args)
                    teardowns.append((name, teardown, bool(impl.hookwrapper)))
                else:
                    value = _hook_step(limit, impl.function, **args)
                    if value is not None:  # as pluggy: None is no result
                        results.append((name, value))
            except StopIteration:
                self.disable(name, hook_name, RuntimeError("the hook wrapper did not yield"))
            except Exception as exc:
                del results[mark:]
                self.disable(name, hook_name, exc)
            finally:
                self._trace(name, hook_name, started)
        for name, teardown, old_style in reversed(teardowns):
            plain = [value for _, value in results]
            outcome: pluggy.Result[list[Any]] = pluggy.Result(plain, None)
            started = time.perf_counter()
            running = False
            try:
                _hook_step(limit, teardown.send, outcome if old_style else plain)
            except StopIteration as stop:
                changed = outcome.get_result() if old_style else stop.value
                if changed is not plain and isinstance(changed, list):
                    owners = {id(value): plugin for plugin, value in results}
                    results = [(owners.get(id(value), name), value) for value in changed]
                continue
            except PluginTimeout as exc:
                running = True  # still running on its guard thread: it cannot be closed
                self.disable(name, hook_name, exc)
                continue
            except Exception as exc:
                self.disable(name, hook_name, exc)
                continue
            finally:
                if not running:
                    teardown.close()
                self._trace(name, hook_name, started)
            self.disable(name, hook_name, RuntimeError("the hook wrapper yielded twice"))
        return results

    def contributions(self, hook_name: str) -> list[Contribution[Any]]:
        """Objects registered through ``hook_name``'s ``register`` callback, cached."""
        with self._collect_lock:
            lock = self._hook_locks.setdefault(hook_name, threading.Lock())
            cache = self._cache
        with lock:  # the window warms these up on a worker thread
            found = cache.get(hook_name)
            if found is None:
                found = cache[hook_name] = self._collect(hook_name)
        return [c for c in found if self.enabled(c.plugin)]

    def _collect(self, hook_name: str) -> list[Contribution[Any]]:
        collected: list[Contribution[Any]] = []
        protocol = HOOK_PROTOCOLS.get(hook_name)
        open_ = [True]  # a hook given up on may still call register later: ignored

        def register_for(plugin: str) -> dict[str, Any]:
            def register(obj: Any) -> None:
                if not open_[0] or not self.enabled(plugin):
                    return
                # isinstance with a runtime-checkable Protocol looks for the names only;
                # missing() also wants the methods callable, and says what is not there.
                lacks = missing(obj, protocol) if protocol is not None else []
                if protocol is not None and (lacks or not isinstance(obj, protocol)):
                    self.disable(plugin, hook_name, TypeError(
                        f"{type(obj).__name__} registered through {hook_name} is not an "
                        f"archivist.{protocol.__name__}: it lacks {', '.join(lacks)}"))
                    return
                collected.append(Contribution(plugin, obj, protocol))

            return {"register": register}

        before = {name for name, record in self.records.items() if not record.enabled}
        try:
            self._call(hook_name, {"context": self.context}, bind=register_for)
        finally:
            open_[0] = False
        failed = {name for name, record in self.records.items() if not record.enabled} - before
        # A plugin that raised while registering contributes nothing, even what it
        # registered before it raised.
        return [c for c in collected if c.plugin not in failed]

    def model_backends(self) -> list[Contribution[ModelBackend]]:
        return cast("list[Contribution[ModelBackend]]", self.contributions("register_model_backends"))

    def retrievers(self) -> list[Contribution[Retriever]]:
        return cast("list[Contribution[Retriever]]", self.contributions("register_retrievers"))

    def loaders(self) -> list[Contribution[DocumentLoader]]:
        return cast("list[Contribution[DocumentLoader]]", self.contributions("register_loaders"))

    def libraries(self) -> list[Contribution[Library]]:
        return cast("list[Contribution[Library]]", self.contributions("register_libraries"))

    def safety_filters(self) -> list[Contribution[SafetyFilter]]:
        return cast("list[Contribution[SafetyFilter]]", self.contributions("register_safety_filters"))

    def panels(self) -> list[Contribution[Panel]]:
        """Only the GUI asks: it is what imports a panel plugin's Qt code."""
        return cast("list[Contribution[Panel]]", self.contributions("register_panels"))

    def time_limit(self, contribution: Contribution[Any], method: str) -> float | None:
        """Seconds ``contribution``'s ``method`` may take (None: no limit), looked up by
        the Protocol that declares it (:func:`archivist.contract.method_key`)."""
        key = method_key(contribution.obj, method, contribution.protocol)
        return self.timeouts.get(key) if key is not None else None

    def close(self) -> None:
        """Call ``close`` on every contribution collected so far that has it
        (:class:`~archivist.protocols.Closable`); one that raises is disabled, the
        rest are still closed. Nothing is collected for this."""
        with self._collect_lock:
            collected = [c for found in self._cache.values() for c in found]
        # An object registered through two hooks (a library that is also its retriever)
        # is closed once.
        collected = list({id(c.obj): c for c in reversed(collected)}.values())
        for contribution in collected:
            if isinstance(contribution.obj, Closable) and self.enabled(contribution.plugin):
                try:
                    self.run(contribution, "close")
                except PluginFailure as exc:
                    log.warning("%s", exc)

    def run(self, contribution: Contribution[Any], method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``contribution.obj.method`` under guard.

        An exception, or a call that outlasts its time limit (:meth:`time_limit`: by
        "Protocol.method"), disables the plugin for the session and raises
        :class:`PluginFailure`; for the methods in
        :data:`archivist.contract.KEPT_ON_FAILURE` (a safety filter's ``screen``) the
        error is recorded and the plugin stays on, and the caller fails closed. A call
        that hangs is abandoned on a daemon thread: Python cannot stop it, but nobody
        waits for it. A call without a limit runs on the caller's thread.
        """
        where = f"{type(contribution.obj).__name__}.{method}"
        if not self.enabled(contribution.plugin):
            raise PluginFailure(f"plugin {contribution.plugin} is disabled for this session")
        function = getattr(contribution.obj, method)
        limit = self.time_limit(contribution, method)
        started = time.perf_counter()
        try:
            if limit is None:
                return function(*args, **kwargs)
            return _call_with_timeout(function, args, kwargs, limit)
        except ArchivistError:
            # An expected outcome the plugin reports (an unreadable file, a model that
            # will not load), not a bug in the plugin: the caller handles it.
            raise
        except Exception as exc:
            key = method_key(contribution.obj, method, contribution.protocol)
            if key in KEPT_ON_FAILURE:
                error = self.record_error(contribution.plugin, where, exc)
                raise PluginFailure(
                    f"plugin {error.plugin} failed in {where} (it stays on): {error.message}", error
                ) from exc
            error = self.disable(contribution.plugin, where, exc)
            raise PluginFailure(
                f"plugin {error.plugin} failed in {where} and was disabled: {error.message}", error
            ) from exc
        finally:
            self._trace(contribution.plugin, where, started)

    def _trace(self, plugin: str, where: str, started: float) -> None:
        if self.trace:
            elapsed = (time.perf_counter() - started) * 1000.0
            log.warning("[trace] %s %s %.2f ms", plugin, where, elapsed)


class PluginTimeout(Exception):
    """A contribution took longer than its time limit."""


class _Worker(threading.Thread):
    """A daemon thread that runs guarded plugin calls one after another.

    Starting a thread per call cost about 1 ms on a busy 2-core machine, which the safety
    filter paid for every streamed sentence. Workers are kept and reused; one whose call
    outlasts its limit is abandoned (Python cannot stop it) and never handed work again.
    """

    def __init__(self) -> None:
        super().__init__(name="archivist-plugin-call", daemon=True)
        self.inbox: queue.SimpleQueue[tuple[Callable[[], Any], dict[str, Any], threading.Event]] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            call, outcome, done = self.inbox.get()
            try:
                outcome["value"] = call()
            except BaseException as exc:  # handed to the caller's thread
                outcome["error"] = exc
            finally:
                done.set()


_idle_workers: list[_Worker] = []
_idle_lock = threading.Lock()


def _call_with_timeout(function: Callable[..., Any], args: Any, kwargs: Any, limit: float) -> Any:
    with _idle_lock:
        worker = _idle_workers.pop() if _idle_workers else None
    if worker is None:
        worker = _Worker()
        worker.start()
    outcome: dict[str, Any] = {}
    done = threading.Event()
    worker.inbox.put((lambda: function(*args, **kwargs), outcome, done))
    if not done.wait(limit):
        raise PluginTimeout(f"gave up after {limit:g} s without an answer")
    with _idle_lock:
        _idle_workers.append(worker)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _hook_step(limit: float | None, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """One piece of a plugin's hook code, under ``limit`` seconds when there is one."""
    return function(*args, **kwargs) if limit is None else _call_with_timeout(function, args, kwargs, limit)


def _started_wrapper(function: Callable[..., Any], args: dict[str, Any]) -> Any:
    """A hook wrapper's generator, run to its ``yield`` (StopIteration: it never yields)."""
    teardown = function(**args)
    next(teardown)
    return teardown


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


def _archivist_version() -> str:
    from archivist import __version__

    return __version__


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
