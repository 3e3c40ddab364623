"""Compile the fast backend's kernels ahead of the first fit: ``python -m espm_cli.solver.warmup``.

numba compiles each kernel on its first call and caches the machine code beside the
source (``cache=True``), so only the very first fit of an installation pays the compile
(a few seconds). ``make install`` runs this module once, so that the first
``espm decompose`` of a fresh install starts at once; after a plain ``pip install``, run it
yourself, or let the first fit do it.

A tiny fit is run for each loss served (KL, also with masked entries, Frobenius) and
each count type the kernels are specialised for (float32 for counts exactly representable in float32, float64
otherwise), with fewer and more components than the kernels' register width, so every
specialisation is compiled.
"""

import logging
import time
import warnings

import numpy as np

logger = logging.getLogger(__name__)


def compile_kernels():
    """Run the tiny fits that compile (or load from the cache) every kernel.

    Returns
    -------
    float
        Seconds it took.
    """
    from espm_cli.solver import SmoothNMF, available_backends

    begin = time.perf_counter()
    if "numba" not in available_backends():
        return 0.0
    rng = np.random.default_rng(0)
    G = np.abs(rng.normal(size=(24, 6))) + 0.1
    counts = rng.poisson(3.0, size=(36, 24))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-integer counts, ConvergenceWarning
        for X in (counts.astype(np.uint16), counts + 0.1):
            for k in (2, 5):
                for beta_loss in ("kullback-leibler", "frobenius"):
                    SmoothNMF(
                        k,
                        G=G,
                        simplex="H",
                        shape_2d=(6, 6),
                        lambda_L=0.5,
                        mu=0.1,
                        max_iter=3,
                        backend="numba",
                        random_state=0,
                        beta_loss=beta_loss,
                    ).fit(X)
                    SmoothNMF(
                        k,
                        G=G,
                        simplex="W",
                        G_continuum=np.arange(6) >= 4,
                        max_iter=2,
                        backend="numba",
                        random_state=0,
                        beta_loss=beta_loss,
                    ).fit(X)
            for k in (2, 5):  # KL with missing entries (held-out folds, masks)
                SmoothNMF(
                    k, G=G, mask=rng.random(counts.shape) < 0.2, max_iter=2, backend="numba", random_state=0
                ).fit(X)
    seconds = time.perf_counter() - begin
    logger.info("numba kernels ready in %.1f s", seconds)
    return seconds


def main():
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("espm_cli: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    compile_kernels()


if __name__ == "__main__":
    main()
