"""How two libraries are imported: the hooks into it, both undone once the import is done.

structlog without rich
----------------------

``import structlog`` imports ``structlog.dev`` and ``structlog.tracebacks``, which import
rich (and pygments through it) whenever it is installed, for their pretty tracebacks: 3.3 MiB
of RSS in every daemon (issue 24), which never renders with rich. synthmon's console
renderer is handed every exception already as text (``format_exc_info`` comes before it in
monitor.sinks.log), so rich's traceback formatter is never called and the output is the
same either way (tests/test_lean_imports.py renders both and compares). ``once`` still
imports rich for its table, as it did.

This module is imported by ``monitor/__init__.py``, before any module of synthmon imports
structlog. If structlog was imported before (a host program, a test), nothing changes. If a
structlog release needs rich to import at all, structlog is imported again with it: the
saving is lost, not the daemon (the test says so).

aiohttp's default TLS contexts without the CA certificates, until a handshake needs them
---------------------------------------------------------------------------------------
``aiohttp.connector`` makes two client SSL contexts as it is imported (for requests that
name no context of their own), and each loads the system's CA certificates at once: ~2 MiB
of RSS in every daemon (issue 24), which never uses them (a probe's requests carry their
own context, monitor.probes.tls, made only for a config with https). While ``aiohttp`` is
imported, a context asked to load the default certificates notes it instead, and loads them
before its first handshake, or as soon as anything asks what it holds (``_DeferredCerts``).
What it verifies with is the same either way (tests/test_lean_imports.py); aiohttp made
them at import so that the first handshake does not read the files on the event loop, which
here it does once, for a request without a context of its own, if there ever is one. The
hook waits for the first ``import aiohttp`` (a finder on ``sys.meta_path``, gone once it has
found it), so importing synthmon imports no aiohttp; if aiohttp was imported before (a host
program, a test), nothing changes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ssl
import sys
import threading
from collections.abc import Callable, Sequence
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


def import_structlog_without_rich() -> None:
    if "structlog" in sys.modules:
        return
    had, saved = "rich" in sys.modules, sys.modules.get("rich")
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` raises ImportError
    try:
        import structlog
    except ImportError:
        for name in [m for m in sys.modules if m == "structlog" or m.startswith("structlog.")]:
            del sys.modules[name]
    finally:
        if had:
            sys.modules["rich"] = saved  # type: ignore[assignment]
        else:
            del sys.modules["rich"]
    import structlog  # noqa: F401  # at worst, as it imports itself


class _DeferredCerts(ssl.SSLContext):
    """A context whose default CA certificates are loaded at the first use that needs them:
    a handshake (``wrap_bio``, ``wrap_socket``), or a question about what it holds."""

    _deferred: list[Callable[[], None]]

    def _load(self) -> None:
        with _LOADING:
            deferred, self._deferred = self._deferred, []
            for load in deferred:
                load()

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._load()
        return super().wrap_bio(*args, **kwargs)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load()
        return super().wrap_socket(*args, **kwargs)

    def get_ca_certs(self, binary_form: bool = False) -> Any:
        self._load()
        return super().get_ca_certs(binary_form)

    def cert_store_stats(self) -> dict[str, int]:
        self._load()
        return super().cert_store_stats()


_LOADING = threading.Lock()


def _deferring(name: str) -> Callable[..., None]:
    real = getattr(ssl.SSLContext, name)

    def defer(self: ssl.SSLContext, *args: Any) -> None:
        if type(self) is ssl.SSLContext:
            self.__class__ = _DeferredCerts
        if not isinstance(self, _DeferredCerts):  # a subclass of a library's: as ever
            real(self, *args)
            return
        if "_deferred" not in self.__dict__:
            self._deferred = []
        self._deferred.append(lambda: real(self, *args))

    return defer


def _exec_deferring(loader: Loader, module: ModuleType) -> None:
    """``loader.exec_module(module)`` with default CA certificates deferred meanwhile."""
    # load_default_certs is ssl.SSLContext's own, set_default_verify_paths its C base's.
    names = ("load_default_certs", "set_default_verify_paths")
    saved = {name: ssl.SSLContext.__dict__.get(name) for name in names}
    for name in names:
        setattr(ssl.SSLContext, name, _deferring(name))
    try:
        loader.exec_module(module)
    finally:
        for name, real in saved.items():
            if real is None:
                delattr(ssl.SSLContext, name)
            else:
                setattr(ssl.SSLContext, name, real)


class _WhenAiohttpIsImported(MetaPathFinder):
    """Finds ``aiohttp`` as the other finders do (once), and runs its module with the
    default certificates deferred: importing synthmon imports no aiohttp (``check`` never
    needs it), and whatever imports it first, the daemon's contexts are made alike."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != "aiohttp":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        real = spec.loader
        spec.loader = _Deferring(real)
        return spec


class _Deferring(Loader):
    def __init__(self, real: Loader) -> None:
        self.real = real

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # Handed back before the module runs: it and its spec name the real loader.
        module.__loader__ = self.real
        if module.__spec__ is not None:
            module.__spec__.loader = self.real
        _exec_deferring(self.real, module)


def import_aiohttp_with_deferred_certs() -> None:
    """From now on, the first ``import aiohttp`` (if it is still to come) defers them."""
    if "aiohttp" not in sys.modules and not any(
            isinstance(f, _WhenAiohttpIsImported) for f in sys.meta_path):
        sys.meta_path.insert(0, _WhenAiohttpIsImported())
