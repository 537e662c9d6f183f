"""How far a model load has got, from llama.cpp itself, and a way to abandon it.

llama.cpp reports the fraction of the weights loaded through ``llama_model_params``'
``progress_callback`` and aborts the load when the callback returns false. llama-cpp-python's
``Llama`` fills its model params in ``__init__`` from ``llama_model_default_params()`` and
takes no callback, so for the length of one load that factory is wrapped to add ours. Only
the loading thread gets the callback; another thread loading at the same time gets the
plain defaults, and loads that report progress take turns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import llama_cpp.llama_cpp as llama_cpp_lib

from ..errors import LoadCancelled
from .results import ProgressReport

_one_load_at_a_time = threading.Lock()


@dataclass
class LoadOutcome:
    cancelled: bool = False
    error: BaseException | None = None

    def raise_if_stopped(self, model_path: str) -> None:
        """After a failed load: say whether the report stopped it rather than the file."""
        if self.error is not None:
            raise self.error
        if self.cancelled:
            raise LoadCancelled(f"{model_path}: loading was cancelled")


@contextmanager
def reporting_progress(report: ProgressReport | None) -> Iterator[LoadOutcome]:
    """Within this block, a ``llama_cpp.Llama`` built on this thread calls ``report``."""
    outcome = LoadOutcome()
    if report is None:
        yield outcome
        return

    @llama_cpp_lib.llama_progress_callback
    def callback(fraction: float, _user_data: object) -> bool:
        try:
            keep_loading = report(min(max(float(fraction), 0.0), 1.0)) is not False
        except BaseException as error:  # an exception cannot unwind through llama.cpp's C++
            outcome.error = error
            return False
        outcome.cancelled = not keep_loading
        return keep_loading

    loading_thread = threading.get_ident()
    plain_defaults = llama_cpp_lib.llama_model_default_params

    def defaults_with_callback() -> llama_cpp_lib.llama_model_params:
        params = plain_defaults()
        if threading.get_ident() == loading_thread:
            params.progress_callback = callback
        return params

    with _one_load_at_a_time:
        llama_cpp_lib.llama_model_default_params = defaults_with_callback
        try:
            yield outcome
        finally:
            llama_cpp_lib.llama_model_default_params = plain_defaults
