"""The one seam between gaitrig and a TFLite runtime.

``ai_edge_litert`` (maintained, works with numpy 2) is preferred; ``tflite_runtime`` (last
release 2023, numpy < 2) is the fallback for old Raspberry Pi images. Both expose the same
``Interpreter`` / ``load_delegate`` API, so everything else in gaitrig imports neither.
"""
from __future__ import annotations

import ctypes
import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

# (module providing Interpreter and load_delegate, pip package), in order of preference.
RUNTIMES: tuple[tuple[str, str], ...] = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
)


class InterpreterUnavailableError(RuntimeError):
    """Neither TFLite runtime can be imported."""


class DelegateLoadError(RuntimeError):
    """The configured delegate library could not be loaded (wrong path, no device)."""


@dataclass(frozen=True)
class InterpreterConfig:
    """How to run a model: XNNPACK thread count and an optional delegate (e.g. Edge TPU)."""

    num_threads: int = 2
    delegate_path: str | None = None  # shared library for load_delegate, e.g. libedgetpu.so.1


def choose_runtime(importer: Callable[[str], ModuleType] = importlib.import_module
                   ) -> ModuleType:
    """The first importable runtime module; ``importer`` is injectable for tests."""
    failures = []
    for module, package in RUNTIMES:
        try:
            return importer(module)
        except ImportError as e:
            failures.append(f"{package} ({e})")
    raise InterpreterUnavailableError(
        "no TFLite runtime: install ai-edge-litert (preferred) or tflite-runtime; tried "
        + "; ".join(failures))


def make_interpreter(model_path: Path | str, config: InterpreterConfig = InterpreterConfig(),
                     runtime: ModuleType | None = None) -> Any:
    """A ready (tensors allocated) interpreter for ``model_path``."""
    if config.num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {config.num_threads}")
    rt = runtime or choose_runtime()
    delegates = None
    if config.delegate_path:
        try:
            # Open the library ourselves first: a failed load_delegate leaves a half-built
            # Delegate whose __del__ prints a traceback on stderr.
            ctypes.CDLL(config.delegate_path)
            delegates = [rt.load_delegate(config.delegate_path)]
        except (ValueError, OSError, RuntimeError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DelegateLoadError(f"cannot load TFLite delegate {config.delegate_path!r}: "
                                    f"{first}") from None
    interpreter = rt.Interpreter(model_path=str(model_path), num_threads=config.num_threads,
                                 experimental_delegates=delegates)
    interpreter.allocate_tensors()
    return interpreter


def runtime_name(runtime: ModuleType | None = None) -> str:
    return (runtime or choose_runtime()).__name__.split(".")[0]


class TimedInterpreter:
    """An interpreter that times its invokes and, for tests, takes at least ``min_ms`` each.

    Nothing here measures a Raspberry Pi; to see how a node behaves on one, its invokes are
    slowed to a stated estimate (e.g. 25 ms per landmark run, 40 ms per detector run): the
    wrapper sleeps the rest of the time after the real invoke, so the result is unchanged
    and the thread gives the CPU away as an accelerator's wait would.
    ``ewma_ms`` (the recent invoke time, smoothing ``alpha``) is what pacing reads.
    """

    def __init__(self, interpreter: Any, min_ms: float = 0.0, alpha: float = 0.2):
        if min_ms < 0:
            raise ValueError(f"min_ms must be >= 0, got {min_ms}")
        self._interpreter, self.min_ms, self.alpha = interpreter, min_ms, alpha
        self.runs = 0
        self.ewma_ms: float | None = None

    def invoke(self) -> None:
        t0 = time.perf_counter()
        self._interpreter.invoke()
        if (rest_s := self.min_ms / 1000 - (time.perf_counter() - t0)) > 0:
            time.sleep(rest_s)
        ms = (time.perf_counter() - t0) * 1000
        self.runs += 1
        self.ewma_ms = ms if self.ewma_ms is None else self.ewma_ms + self.alpha * (ms - self.ewma_ms)

    def __getattr__(self, name: str) -> Any:  # tensors, details: the wrapped interpreter's
        return getattr(self._interpreter, name)
