"""The SmoothNMF estimator and its update steps (numpy/scipy/numba only; no I/O)."""

from espm_cli.solver.backends import Backend, available_backends, get_backend, register_backend
from espm_cli.solver.estimator import LOSS_NAMES, SmoothNMF, smooth_nmf
from espm_cli.solver.minibatch import MiniBatchSmoothNMF

__all__ = ["Backend", "LOSS_NAMES", "MiniBatchSmoothNMF", "SmoothNMF", "available_backends", "get_backend",
           "register_backend", "smooth_nmf"]
