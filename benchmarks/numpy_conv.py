"""numpy_cnn.conv2d forward against torch's CPU conv2d, side by side in one run.

Goal: numpy <= 2x torch's time on (8, 16, 64, 64) with 32 3x3 filters, padding 1,
the same number of threads for both (BLAS threads for numpy, intra-op for torch). Both dtypes
are timed: float64 is numpy_cnn's default, float32 is where torch's oneDNN kernels shine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[..., object], repeats: int, *args: object) -> float:
    """Median wall time of ``fn(*args, padding=1)`` after one warm-up call."""
    fn(*args, padding=1)  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args, padding=1)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--dtype", choices=("float64", "float32"), nargs="+", default=["float64", "float32"]
    )
    args = parser.parse_args()

    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from mobilenet_study.numpy_cnn import conv2d

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    for dtype in args.dtype:
        x = rng.standard_normal((8, 16, 64, 64)).astype(dtype)
        w = rng.standard_normal((32, 16, 3, 3)).astype(dtype)
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        with threadpool_limits(limits=args.threads), torch.no_grad():
            np.testing.assert_allclose(
                conv2d(x, w, padding=1),
                torch.nn.functional.conv2d(xt, wt, padding=1).numpy(),
                rtol=1e-3,
                atol=1e-3,
            )
            t_numpy = median_seconds(conv2d, args.repeats, x, w)
            t_torch = median_seconds(torch.nn.functional.conv2d, args.repeats, xt, wt)
        print(f"x (8, 16, 64, 64), w (32, 16, 3, 3), padding 1, {dtype}, threads {args.threads}")
        print(f"  numpy conv2d  median {t_numpy * 1e3:8.2f} ms")
        print(f"  torch conv2d  median {t_torch * 1e3:8.2f} ms")
        print(f"  ratio numpy/torch: {t_numpy / t_torch:.2f}x (goal <= 2.00x)")


if __name__ == "__main__":
    main()
