"""The SmoothNMF estimator and its update steps (numpy/scipy/numba only; no I/O)."""

from espm_cli.solver.backends import Backend, available_backends, get_backend, register_backend
from espm_cli.solver.estimator import LOSS_NAMES, SmoothNMF, smooth_nmf
from espm_cli.solver.minibatch import MiniBatchSmoothNMF
from espm_cli.solver.semi_nmf import SemiNMF

__all__ = [
    "Backend",
    "LOSS_NAMES",
    "MiniBatchSmoothNMF",
    "SemiNMF",
    "SmoothNMF",
    "available_backends",
    "get_backend",
    "register_backend",
    "smooth_nmf",
]
