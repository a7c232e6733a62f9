"""Latency, timed one way for the cost stage (PyTorch, per model) and the deploy stage (ONNX
Runtime and PyTorch eager, per run): untimed warm-up calls, then timed repeats summarised by
their median and interquartile range."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Latency:
    """Milliseconds per batch: median and interquartile range of the timed repeats."""

    batch_size: int
    median_ms: float
    iqr_ms: float

    @property
    def median_ms_per_image(self) -> float:
        return self.median_ms / self.batch_size

    @property
    def iqr_ms_per_image(self) -> float:
        return self.iqr_ms / self.batch_size


def summarize_times(times_ms: Sequence[float], batch_size: int) -> Latency:
    """Median and IQR (75th - 25th percentile, linear interpolation) of timed batches."""
    if not times_ms:
        raise ValueError("no timings to summarise")
    q25, q75 = np.percentile(times_ms, [25, 75])
    return Latency(batch_size, float(statistics.median(times_ms)), float(q75 - q25))


def time_calls(
    call: Callable[[], object], warmup: int, repeats: int, *, cuda: bool = False
) -> list[float]:
    """Milliseconds of each of ``repeats`` calls, after ``warmup`` untimed ones.

    On the CPU, wall-clock time. On CUDA, kernels run asynchronously, so each call is
    bracketed by CUDA events and the device synchronised before reading them; the warm-up also
    absorbs cuDNN's algorithm search.
    """
    for _ in range(warmup):
        call()
    times_ms = []
    if cuda:
        torch.cuda.synchronize()
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            torch.cuda.synchronize()
            times_ms.append(start.elapsed_time(end))
        else:
            start_s = time.perf_counter()
            call()
            times_ms.append((time.perf_counter() - start_s) * 1e3)
    return times_ms


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` inside the block, restored after it."""
    old = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(old)
