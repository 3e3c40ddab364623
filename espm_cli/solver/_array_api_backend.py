"""A device backend written once against the Python array API standard.

The same step functions run on numpy (``backend="array-api"``; in the tests also under
array-api-strict, which refuses anything outside the standard) and on an NVIDIA GPU
through CuPy or PyTorch (``backend="cuda"``, ``"cupy"``, ``"torch"``): every array
operation goes through ``xp``, the namespace array-api-compat gives for the data. The only
library-specific code is the sparse product of the counts (scipy.sparse for numpy,
cupyx.scipy.sparse for CuPy, torch's CSR tensors for PyTorch; a library without sparse
arrays gets the dense counts) and the transfers to and from the device.

What it computes is the reference's, step for step (:mod:`espm_cli.solver.reference` for
KL, :mod:`espm_cli.solver.beta_steps` for β = 2): the loss, the MM statistics, the
Laplacian by neighbour sums on the pixel grid, the log sparsity tangent, the closed-form
minimiser and the simplex root (the bracketed Newton solve of
:mod:`espm_cli.solver.simplex`, vectorised over all groups, in float64), fixed entries, and
the projection of an extrapolated point (as ``make_feasible(..., rescale=False)``). It
serves β = 1 (KL) and β = 2 (Frobenius) without masked pixels or entries; other β and masks
stay on the CPU backends.

Where things live: ``prepare_counts`` moves X to the device once (CSR of the nonzeros
when X comes sparse and the library has sparse arrays, dense otherwise) and keeps the host
copy the starts read. The fit loop moves G, W, H and the held entries to the device once
(``to_device``), and back at the end (``to_host``); only the objective terms (three
floats) come back per evaluation. A step given host (numpy) arrays returns host arrays
(the starts call the H step that way). docs/gpu.md.
"""

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from espm_cli.solver.backends import Backend, register_backend
from espm_cli.solver.counts import prepare_counts as prepare_host_counts
from espm_cli.solver.losses import mm_exponents, zero_entries_message
from espm_cli.solver.reference import sparsity_weights

_ROOT_RTOL = 1e-13  # of the simplex root, relative to the target (as simplex.py)
_ROOT_MAX_ITER = 200
_SHRINK_FLOOR = 0.5  # of the extrapolated point, as fit_loop
_BLOCK_ENTRIES = 1 << 19  # of the dense model per block of pixels (as masked_counts.py)
_GPU_BLOCK_ENTRIES = 1 << 26  # on a GPU (256 MB of float32)


# --- namespaces, devices and what is available ------------------------------------------


def _compat():
    try:
        return importlib.import_module("array_api_compat")
    except ImportError:
        raise ValueError(
            "the array-API backends need array-api-compat; install it with "
            "pip install 'espm-cli[gpu]' (or pip install array-api-compat)."
        ) from None


def _gpu_library(name):
    """(module, reason) for 'cupy' or 'torch' on a CUDA device; module None with a reason."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None, f"{name} not installed"
    except Exception as error:  # noqa: BLE001 (a broken install, e.g. a CUDA library missing)
        return None, f"{name} does not import ({type(error).__name__}: {error})"
    try:
        if name == "cupy":
            count = module.cuda.runtime.getDeviceCount()
        else:
            count = module.cuda.device_count() if module.cuda.is_available() else 0
    except Exception as error:  # noqa: BLE001 (no driver: reported, not raised)
        return None, f"{name} finds no CUDA device ({type(error).__name__})"
    if count < 1:
        return None, f"{name} finds no CUDA device"
    return module, f"{name} {module.__version__}, {count} CUDA device{'s' if count > 1 else ''}"


def availability():
    """What each array-API backend would run on here, and why not where it cannot.

    Returns
    -------
    list of (name, available, detail)
    """
    rows = []
    try:
        compat = _compat()
        rows.append(("array-api", True, f"numpy through array-api-compat {compat.__version__}"))
    except ValueError:
        compat = None
        rows.append(("array-api", False, "array-api-compat not installed"))
    reasons = {}
    for name in ("cupy", "torch"):
        module, reason = _gpu_library(name)
        reasons[name] = (module is not None, reason)
    for name in ("cupy", "torch"):
        ok, reason = reasons[name]
        if ok and compat is None:
            ok, reason = False, "array-api-compat not installed"
        rows.append((name, ok, reason))
    usable = [name for name, ok, _ in rows if name in ("cupy", "torch") and ok]
    if usable:
        rows.insert(1, ("cuda", True, f"through {usable[0]}: {reasons[usable[0]][1]}"))
    else:
        rows.insert(
            1,
            (
                "cuda",
                False,
                "; ".join(reason for _, reason in reasons.values())
                + ("" if compat is not None else "; array-api-compat not installed"),
            ),
        )
    return rows


def _cuda_namespace(library, device):
    """(xp, device) of CuPy or PyTorch on a CUDA device; ValueError in one line if none."""
    compat = _compat()
    names = ("cupy", "torch") if library is None else (library,)
    reasons = []
    for name in names:
        module, reason = _gpu_library(name)
        if module is None:
            reasons.append(reason)
            continue
        if name == "torch":
            return compat.array_namespace(module.empty(0)), module.device(device or "cuda")
        index = 0
        if device not in (None, "cuda"):
            text = str(device)
            if not text.startswith("cuda:") or not text[5:].isdigit():
                raise ValueError(f"device={device!r} is not a CUDA device for cupy; use 'cuda' or 'cuda:N'.")
            index = int(text[5:])
        if index != module.cuda.runtime.getDevice():
            # array-api-compat creates CuPy arrays on the current device only
            raise ValueError(
                f"device={device!r}: cupy runs on the current CUDA device "
                f"({module.cuda.runtime.getDevice()}); select another with "
                "CUDA_VISIBLE_DEVICES, or use backend='torch'."
            )
        return compat.array_namespace(module.empty(0)), module.cuda.Device(index)
    backend = "cuda" if library is None else library
    raise ValueError(
        f"backend={backend!r} is not available here ({'; '.join(reasons)}): "
        "install the GPU extra (pip install 'espm-cli[gpu]') on a machine with "
        "an NVIDIA GPU, or use backend='auto'."
    )


def _torch_namespace(device):
    """PyTorch on ``device`` (any device torch accepts, also 'cpu'; default: CUDA)."""
    if device is None or str(device).startswith("cuda"):
        return _cuda_namespace("torch", device)
    compat = _compat()
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        raise ValueError(
            "backend='torch' is not available here (torch not installed); use backend='auto'."
        ) from None
    return compat.array_namespace(torch.empty(0)), torch.device(device)


def _numpy_namespace(device):
    compat = _compat()
    if device not in (None, "cpu"):
        raise ValueError(
            f"device={device!r}: backend='array-api' runs numpy on the CPU "
            "(device='cpu' or None); use backend='cuda' for a GPU."
        )
    return compat.array_namespace(np.empty(0)), "cpu"


# --- the prepared counts ----------------------------------------------------------------


@dataclass(frozen=True)
class _Nonzeros:
    """X's nonzeros on the device in CSR order (channel-major), with the transposed layout.

    ``times(v, M)`` is X_v @ M and ``transposed_times(v, M)`` is X_vᵀ @ M, where X_v has
    X's pattern and the values ``v`` (in CSR order); ``make`` builds the library's sparse
    matrix from (values, indptr, indices, shape).
    """

    rows: Any
    cols: Any
    values: Any
    indptr: Any
    indptr_t: Any
    indices_t: Any
    order_t: Any
    shape: tuple
    make: Callable

    def times(self, xp, values, M):
        return self.make(values, self.indptr, self.cols, self.shape) @ M

    def transposed_times(self, xp, values, M):
        return self.make(xp.take(values, self.order_t), self.indptr_t, self.indices_t, self.shape[::-1]) @ M


def _sparse_maker(xp):
    """The library's CSR constructor for ``xp`` (None: no sparse arrays, use dense)."""
    compat = _compat()
    if compat.is_numpy_namespace(xp):
        return lambda values, indptr, indices, shape: sp.csr_array((values, indices, indptr), shape=shape)
    if compat.is_cupy_namespace(xp):
        cupyx_sparse = importlib.import_module("cupyx.scipy.sparse")
        return lambda values, indptr, indices, shape: cupyx_sparse.csr_matrix(
            (values, indices, indptr), shape=shape
        )
    if compat.is_torch_namespace(xp):
        torch = importlib.import_module("torch")
        return lambda values, indptr, indices, shape: _TorchCSR(
            torch.sparse_csr_tensor(indptr, indices, values, size=shape)
        )
    return None


class _TorchCSR:
    """A torch CSR tensor whose product takes any strided dense operand."""

    def __init__(self, matrix):
        self.matrix = matrix

    def __matmul__(self, dense):
        return self.matrix @ dense.contiguous()


@dataclass(frozen=True)
class DeviceCounts:
    """X (n_channels, n_pixels) on a device, with the host copy the starts read.

    Attributes
    ----------
    host : CountData
        The counts on the host (``dense``, ``csr``, ``total``, ``channel_totals`` are read
        through it).
    xp : namespace
    device : object
    dtype : xp dtype
        The compute dtype.
    beta : float
        1 (KL) or 2 (Frobenius).
    X : xp array of shape (c, p) or None
        The dense counts on the device (None on the sparse path).
    nonzeros : _Nonzeros or None
        The nonzero counts on the device (sparse path).
    data_constant : float
        The data-only part of the divergence (Σ X^β; Σ log X for β = 0), float64.
    block_entries : int
        Entries of the dense model per block of pixels (β other than 1 and 2).
    """

    host: Any
    xp: Any
    device: Any
    dtype: Any
    beta: float
    X: Any
    nonzeros: _Nonzeros | None
    data_constant: float
    block_entries: int

    @property
    def shape(self):
        return self.host.shape

    @property
    def is_sparse(self):
        return self.host.is_sparse

    @property
    def dense(self):
        return self.host.dense

    @property
    def csr(self):
        return self.host.csr

    @property
    def rows(self):
        return self.host.rows

    @property
    def cols(self):
        return self.host.cols

    @property
    def total(self):
        return self.host.total

    @property
    def channel_totals(self):
        return self.host.channel_totals


def _put(xp, device, array, dtype=None):
    """A host array (or scalar) on the device, in ``dtype`` (default: its own)."""
    array = np.asarray(array)
    if dtype is None:
        dtype = getattr(
            xp,
            {
                np.dtype(np.float64): "float64",
                np.dtype(np.float32): "float32",
                np.dtype(np.int32): "int32",
                np.dtype(np.int64): "int64",
                np.dtype(bool): "bool",
            }[array.dtype],
        )
    return xp.asarray(array, dtype=dtype, device=device)


def _prepare(namespace, X, dtype, *, beta=1.0, observed_pixels=None, missing=None, device=None):
    if observed_pixels is not None or missing is not None:
        raise ValueError(
            "the array-API backends do not serve masked pixels or entries; use "
            "backend='reference' (or 'auto')."
        )
    xp, device = namespace(device)
    np_dtype = np.dtype(dtype)
    compute = xp.float32 if np_dtype == np.float32 else xp.float64
    # The host copy is what the reference shows the starts: CSR for β = 2 (the general
    # path's MaskedCounts always is), X as it came for KL.
    host = prepare_host_counts(X if beta == 1.0 or sp.issparse(X) else sp.csr_array(X), np_dtype)
    make = _sparse_maker(xp) if sp.issparse(X) else None
    nonzeros, dense = None, None
    if make is not None:
        csr = host.csr
        # the nonzeros in pixel-major order (a stable sort keeps the channels ascending)
        order_t = np.argsort(host.cols, kind="stable")
        indptr_t = np.concatenate(([0], np.cumsum(np.bincount(host.cols, minlength=csr.shape[1]))))
        # cupyx's CSR wants int32; numpy's take and torch's index_select are fastest on int64
        index = np.int32 if _compat().is_cupy_namespace(xp) and csr.nnz < 2**31 else np.int64
        nonzeros = _Nonzeros(
            rows=_put(xp, device, host.rows.astype(index)),
            cols=_put(xp, device, csr.indices.astype(index)),
            values=_put(xp, device, csr.data, compute),
            indptr=_put(xp, device, csr.indptr.astype(index)),
            indptr_t=_put(xp, device, indptr_t.astype(index)),
            indices_t=_put(xp, device, host.rows[order_t].astype(index)),
            order_t=_put(xp, device, order_t.astype(index)),
            shape=csr.shape,
            make=make,
        )
        values = csr.data.astype(np.float64)
    else:
        counts = host.dense if host.dense is not None else host.csr.toarray()
        dense = _put(xp, device, counts, compute)
        values = counts.astype(np.float64, copy=False)
    positive = values[values > 0]
    n_entries = host.shape[0] * host.shape[1]
    if beta <= 0 and positive.size < n_entries:
        raise ValueError(zero_entries_message(beta, n_entries - positive.size))
    if beta == 0.0:
        constant = float(np.sum(np.log(positive)))
    elif beta == 1.0:
        constant = 0.0  # (the KL path uses the total and Σ X log X/Y)
    else:
        constant = float(np.sum(positive**beta))
    compat = _compat()
    on_gpu = compat.is_cupy_namespace(xp) or (
        compat.is_torch_namespace(xp) and getattr(device, "type", "") == "cuda"
    )
    return DeviceCounts(
        host=host,
        xp=xp,
        device=device,
        dtype=compute,
        beta=float(beta),
        X=dense,
        nonzeros=nonzeros,
        data_constant=constant,
        block_entries=_GPU_BLOCK_ENTRIES if on_gpu else _BLOCK_ENTRIES,
    )


def _on_device(data, array):
    """``array`` on the data's device (as it is when it is already there)."""
    if array is None:
        return None
    if _is_device_array(data, array):
        return array
    return _put(data.xp, data.device, array)


def _is_device_array(data, array):
    compat = _compat()
    if not compat.is_array_api_obj(array):
        return False
    return compat.array_namespace(array) is data.xp or (
        compat.is_numpy_namespace(data.xp) and isinstance(array, np.ndarray)
    )


def to_host(array):
    """A device array as a numpy array (numpy arrays as they are)."""
    if array is None or isinstance(array, np.ndarray):
        return array
    if hasattr(array, "get") and type(array).__module__.startswith("cupy"):
        return array.get()
    if type(array).__module__.startswith("torch"):
        return array.detach().cpu().numpy()
    return np.from_dlpack(array)


def _inputs(data, H, *arrays, dtype=None):
    """(host, device arrays): ``host`` says whether the result goes back to numpy."""
    host = not _is_device_array(data, H)
    moved = []
    for array in (H,) + arrays:
        array = _on_device(data, array)
        if array is not None and dtype is not None and array.dtype != dtype:
            array = data.xp.astype(array, dtype)
        moved.append(array)
    return host, moved


def _output(data, array, host):
    return to_host(array) if host else array


# --- array-API pieces: the grid, the closed form, the simplex root -----------------------


def _f64(xp, array):
    return xp.astype(array, xp.float64) if array.dtype != xp.float64 else array


def _device_of(array):
    return _compat().device(array)


def neighbour_sum(xp, H, shape_2d):
    """Sum of the 4-neighbours of every pixel, per component (as grid.neighbour_sum)."""
    ny, nx = shape_2d
    k = H.shape[0]
    maps = xp.reshape(H, (k, ny, nx))
    row = xp.zeros((k, 1, nx), dtype=H.dtype, device=_device_of(H))
    col = xp.zeros((k, ny, 1), dtype=H.dtype, device=_device_of(H))
    total = (
        xp.concat([row, maps[:, :-1, :]], axis=1)
        + xp.concat([maps[:, 1:, :], row], axis=1)
        + xp.concat([col, maps[:, :, :-1]], axis=2)
        + xp.concat([maps[:, :, 1:], col], axis=2)
    )
    return xp.reshape(total, (k, ny * nx))


def laplacian_energy(xp, H, shape_2d):
    """``Σ_k Σ_edges (H_kp − H_kq)²`` in float64 (as grid.laplacian_energy)."""
    ny, nx = shape_2d
    maps = xp.reshape(_f64(xp, H), (H.shape[0], ny, nx))
    vertical = maps[:, 1:, :] - maps[:, :-1, :]
    horizontal = maps[:, :, 1:] - maps[:, :, :-1]
    return float(xp.sum(vertical * vertical) + xp.sum(horizontal * horizontal))


def quadratic_log_minimiser(xp, a, beta, c):
    """Positive root of ``2 a h² + β h − c = 0`` (as simplex.quadratic_log_minimiser)."""
    root = xp.sqrt(beta * beta + 8.0 * a * c)
    positive_beta = 2.0 * c / (beta + root)
    other = (root - beta) / (4.0 * a)
    h = xp.where(beta > 0, positive_beta, other)
    return xp.where(xp.isfinite(h), h, xp.zeros_like(h))


def _sum_and_slope(xp, nu, a, beta, c, free, eps):
    shifted = beta + nu[None, :]
    h = quadratic_log_minimiser(xp, a, shifted, c)
    root = xp.sqrt(shifted * shifted + 8.0 * a * c)
    zero = xp.zeros_like(h)
    slope = xp.where((h > eps) & (root > 0), -h / root, zero)
    clipped = xp.clip(h, min=eps)
    return (xp.sum(xp.where(free, clipped, zero), axis=0), xp.sum(xp.where(free, slope, zero), axis=0))


def _bracketed_newton_step(xp, nu, excess, slope, low, high, tolerance):
    """As simplex.bracketed_newton_step."""
    low = xp.where(excess > 0, nu, low)
    high = xp.where(excess <= 0, nu, high)
    newton = nu - excess / slope
    inside = xp.isfinite(newton) & (newton > low) & (newton < high)
    step = xp.where(inside, newton, 0.5 * (low + high))
    done = (xp.abs(excess) <= tolerance) | (high - low <= 1e-15 * xp.maximum(xp.abs(low), xp.abs(high)))
    return xp.where(done, nu, step), low, high, done


def _one_hot(xp, index, n_rows, like):
    rows = xp.arange(n_rows, device=_device_of(like))
    return xp.reshape(rows, (n_rows, 1)) == xp.reshape(index, (1, index.shape[0]))


def simplex_minimiser(xp, a, beta, c, free, target, eps, rtol=_ROOT_RTOL, max_iter=_ROOT_MAX_ITER):
    """Minimise ``Σ_k a h² + β h − c log h`` per column subject to ``Σ_free h = target``.

    The vectorised bracketed Newton solve of :func:`espm_cli.solver.simplex.simplex_minimiser`
    (same bracket, same steps, same handling of linear entries), in float64, on every
    column at once: a column stops moving once it is done.

    Parameters
    ----------
    a, beta, c : xp arrays broadcastable to (n_entries, n_groups)
    free : xp bool array of shape (n_entries, n_groups)
    target : xp float64 array of shape (n_groups,)
    eps : float

    Returns
    -------
    xp float64 array of shape (n_entries, n_groups): the minimiser, 0 where not free.
    """
    with np.errstate(all="ignore"):  # numpy-backed namespaces: inactive columns divide by 0
        return _simplex_minimiser(xp, a, beta, c, free, target, eps, rtol, max_iter)


def _simplex_minimiser(xp, a, beta, c, free, target, eps, rtol, max_iter):
    beta = _f64(xp, beta)
    shape = beta.shape
    a = xp.broadcast_to(_f64(xp, a), shape)
    c = xp.broadcast_to(_f64(xp, c), shape)
    free = xp.broadcast_to(free, shape)
    zero = xp.zeros(shape, dtype=xp.float64, device=_device_of(beta))
    inf = xp.full(shape, xp.inf, dtype=xp.float64, device=_device_of(beta))
    n_free = xp.sum(xp.astype(free, xp.float64), axis=0)
    linear = xp.all(~free | ((a == 0) & (c == 0)), axis=0) & (n_free > 0)
    reachable = free & ((a > 0) | (c > 0))
    beta_ref = xp.min(xp.where(reachable, beta, inf), axis=0)
    beta = beta - xp.where(xp.isfinite(beta_ref), beta_ref, xp.zeros_like(beta_ref))[None, :]
    nu_low = xp.max(xp.where(reachable, c / target - 2.0 * a * target - beta, -inf), axis=0)
    c_total = xp.sum(xp.where(free, c, zero), axis=0)
    beta_min = xp.min(xp.where(free, beta, inf), axis=0)
    nu_high = c_total / (target - n_free * eps) - beta_min
    active = (n_free > 0) & ~linear
    group_zero = xp.zeros_like(nu_low)
    nu_low = xp.where(active, nu_low, group_zero)
    nu_high = xp.where(active, xp.maximum(nu_high, nu_low), group_zero)
    nu = nu_low
    for _ in range(max_iter):
        if not bool(xp.any(active)):
            break
        total, slope = _sum_and_slope(xp, nu, a, beta, c, free, eps)
        step, low, high, done = _bracketed_newton_step(
            xp, nu, total - target, slope, nu_low, nu_high, rtol * target
        )
        nu_low = xp.where(active, low, nu_low)
        nu_high = xp.where(active, high, nu_high)
        nu = xp.where(active, step, nu)
        active = active & ~done
    h = xp.where(free, xp.clip(quadratic_log_minimiser(xp, a, beta + nu[None, :], c), min=eps), zero)
    # Linear free entries (a = c = 0) bound ν from below by −β (simplex.py).
    linear_entries = free & (a == 0) & (c == 0)
    mixed = xp.any(linear_entries, axis=0) & ~linear & (n_free > 0)
    if bool(xp.any(mixed)):
        linear_beta = xp.where(linear_entries, beta, inf)
        best = xp.argmin(linear_beta, axis=0)
        nu_floor = -xp.min(linear_beta, axis=0)
        nu_floor = xp.where(mixed, nu_floor, group_zero)
        at_floor = xp.where(
            free, xp.clip(quadratic_log_minimiser(xp, a, beta + nu_floor[None, :], c), min=eps), zero
        )
        room = target - xp.sum(at_floor, axis=0)
        poles = free & (a == 0) & (c > 0)
        pole_beta = xp.min(xp.where(poles, beta, inf), axis=0)
        take = mixed & (room > 0) & (pole_beta > -nu_floor)
        at_floor = at_floor + xp.where(_one_hot(xp, best, shape[0], beta), room[None, :], zero)
        h = xp.where(take[None, :], at_floor, h)
    if bool(xp.any(linear)):
        best = xp.argmin(xp.where(free, beta, inf), axis=0)
        spread = xp.where(free, xp.full(shape, eps, dtype=xp.float64, device=_device_of(beta)), zero)
        rest = xp.broadcast_to((target - (n_free - 1.0) * eps)[None, :], shape)
        spread = xp.where(_one_hot(xp, best, shape[0], beta), rest, spread)
        h = xp.where(linear[None, :], spread, h)
    return h


def _held(xp, fixed, shape, like):
    """(free mask, fixed array or None) of a factor's held entries."""
    if fixed is None:
        return xp.ones(shape, dtype=xp.bool, device=_device_of(like)), None
    return fixed < 0, fixed


def _quadratic_update(xp, a, beta, c, *, free, fixed, simplex_rows, eps, dtype):
    """Minimiser of ``Σ a h² + β h − c log h`` under bounds, held entries and a simplex.

    As constraints.quadratic_update / multiplicative_w_update: the closed form in the
    inputs' dtype, the simplex root (on ``simplex_rows`` of every column, all rows for
    the H simplex) in float64.
    """
    updated = xp.clip(quadratic_log_minimiser(xp, a, beta, c), min=eps)
    if simplex_rows is not None:
        rows = xp.reshape(simplex_rows, (simplex_rows.shape[0], 1))
        group = free & rows
        target = xp.ones(beta.shape[1:], dtype=xp.float64, device=_device_of(beta))
        if fixed is not None:
            target = target - xp.sum(xp.where(rows & ~free, fixed, xp.zeros_like(fixed)), axis=0)
        root = simplex_minimiser(xp, a, beta, c, group, target, eps)
        updated = xp.where(rows, xp.astype(root, updated.dtype), updated)
    if fixed is not None:
        updated = xp.where(free, updated, xp.astype(fixed, updated.dtype))
    return xp.astype(updated, dtype)


# --- any β: the power surrogate and its minimisers (surrogate.py) ------------------------

_LOG_STEP = math.log(4.0)  # bracket expansion per step, in log h (as surrogate.py)
_POWER_RTOL = 1e-15  # on log h


class _Power:
    """surrogate.PowerSurrogate on a device: coefficient arrays of one shape, float64."""

    def __init__(self, xp, P, Q, h0, a, lin, c, beta):
        shape = P.shape
        self.xp, self.beta = xp, float(beta)
        self.P, self.Q, self.h0 = P, Q, h0
        self.a, self.lin, self.c = (_full(xp, value, shape, P) for value in (a, lin, c))
        self.e1, self.e2 = mm_exponents(self.beta)

    @property
    def shape(self):
        return self.P.shape

    def derivative(self, h, shift):
        """``g(h) + shift`` and ``h g'(h)`` (as PowerSurrogate.derivative)."""
        t = h / self.h0
        up = self.P * t**self.e1
        down = self.Q * t**self.e2
        return (
            up - down + 2.0 * self.a * h + self.lin + shift - self.c / h,
            self.e1 * up - self.e2 * down + 2.0 * self.a * h + self.c / h,
        )


def _full(xp, value, shape, like):
    """A float64 array of ``shape`` from a scalar or a broadcastable array."""
    if isinstance(value, (int, float)):
        return xp.full(shape, float(value), dtype=xp.float64, device=_device_of(like))
    return xp.broadcast_to(_f64(xp, value), shape)


def _power_law(s, shift):
    """The root without Laplacian, where it is a power law (surrogate._power_law), else None."""
    xp = s.xp
    if bool(xp.any(s.a != 0)) or bool(xp.any(s.c != 0)):
        return None
    e1, e2 = s.e1, s.e2
    lin = s.lin + shift
    if e1 == 0.0:
        t = (s.Q / (s.P + lin)) ** (-1.0 / e2)
    elif e2 == 0.0:
        t = (xp.clip(s.Q - lin, min=0.0) / s.P) ** (1.0 / e1)
    elif not bool(xp.any(lin != 0)):
        t = (s.Q / s.P) ** (1.0 / (e1 - e2))
    else:
        return None
    return xp.where(xp.isfinite(t), t * s.h0, xp.zeros_like(t))


def power_minimiser(s, eps, shift, start=None, entries=None, max_iter=_ROOT_MAX_ITER):
    """Minimiser over h >= eps of the surrogate plus ``shift * h`` (surrogate.power_minimiser).

    The same bracket and Newton/bisection steps on log h, every entry at once: an entry
    stops moving when it is done. ``entries`` (bool) limits the work to those entries
    (the others are returned at eps).
    """
    xp = s.xp
    shift = _full(xp, shift, s.shape, s.P)
    closed = _power_law(s, shift)
    if closed is not None:
        return xp.clip(closed, min=eps)
    h = xp.full(s.shape, float(eps), dtype=xp.float64, device=_device_of(s.P))
    g_eps, _ = s.derivative(h, shift)
    active = g_eps < 0
    if entries is not None:
        active = active & entries
    if not bool(xp.any(active)):
        return h
    guess = s.h0 if start is None else start
    low = xp.full(s.shape, math.log(eps), dtype=xp.float64, device=_device_of(s.P))
    high = xp.log(xp.clip(guess, min=eps))
    for _ in range(max_iter):  # expand upwards until g > 0 there
        value, _ = s.derivative(xp.exp(high), shift)
        below = active & (value <= 0)
        if not bool(xp.any(below)):
            break
        low = xp.where(below, high, low)
        high = xp.where(below, high + _LOG_STEP, high)
    u = xp.minimum(xp.maximum(xp.log(xp.clip(guess, min=eps)), low), high)
    todo = active
    one = xp.ones_like(u)
    for _ in range(max_iter):
        if not bool(xp.any(todo)):
            break
        value, slope = s.derivative(xp.exp(u), shift)
        lo = xp.where(value < 0, u, low)
        hi = xp.where(value >= 0, u, high)
        newton = u - value / slope
        inside = xp.isfinite(newton) & (newton > lo) & (newton < hi)
        new_u = xp.where(inside, newton, 0.5 * (lo + hi))
        done = (
            (xp.abs(new_u - u) <= _POWER_RTOL * xp.maximum(one, xp.abs(u)))
            | (value == 0)
            | (hi - lo <= _POWER_RTOL * xp.maximum(one, xp.abs(hi)))
        )
        low = xp.where(todo, lo, low)
        high = xp.where(todo, hi, high)
        u = xp.where(todo & (value != 0), new_u, u)
        todo = todo & ~done
    return xp.where(active, xp.clip(xp.exp(u), min=eps), h)


def power_simplex_minimiser(s, free, target, eps, rtol=_ROOT_RTOL, max_iter=_ROOT_MAX_ITER):
    """The surrogate minimised per column with ``Σ_free h = target`` (surrogate.py's).

    Bracket ``[max −g_k(T), max −g_k(T / n_free)]`` per column over the entries with a data
    or Laplacian term, Newton on ν kept inside, each evaluation the per-entry solve warm
    started; columns whose entries are all linear put their mass on the smallest ``lin``.
    """
    xp = s.xp
    shape = s.shape
    zero = xp.zeros(shape, dtype=xp.float64, device=_device_of(s.P))
    inf = xp.full(shape, xp.inf, dtype=xp.float64, device=_device_of(s.P))
    free = xp.broadcast_to(free, shape)
    n_free = xp.sum(xp.astype(free, xp.float64), axis=0)
    linear_entry = (s.P == 0) & (s.Q == 0) & (s.a == 0) & (s.c == 0)
    reachable = free & ~linear_entry
    groups = xp.any(reachable, axis=0)
    h = zero
    if bool(xp.any(groups)):
        T = xp.broadcast_to(target[None, :], shape)
        g_full, _ = s.derivative(T, 0.0)
        g_share, _ = s.derivative(T / n_free[None, :], 0.0)
        nu_low = xp.max(xp.where(reachable, -g_full, -inf), axis=0)
        nu_high = xp.maximum(xp.max(xp.where(reachable, -g_share, -inf), axis=0), nu_low)
        group_zero = xp.zeros_like(nu_low)
        nu_low = xp.where(groups, nu_low, group_zero)
        nu_high = xp.where(groups, nu_high, group_zero)
        nu = nu_low
        current = s.h0
        active = groups
        for _ in range(max_iter):
            if not bool(xp.any(active)):
                break
            columns = xp.broadcast_to(active[None, :], shape)
            values = power_minimiser(
                s, eps, xp.broadcast_to(nu[None, :], shape), start=current, entries=columns
            )
            current = xp.where(columns, values, current)
            _, slope_log = s.derivative(values, nu[None, :])
            slopes = xp.where((values > eps) & (slope_log > 0), -values / slope_log, zero)
            total = xp.sum(xp.where(free, values, zero), axis=0)
            slope = xp.sum(xp.where(reachable, slopes, zero), axis=0)
            step, low, high, done = _bracketed_newton_step(
                xp, nu, total - target, slope, nu_low, nu_high, rtol * target
            )
            nu_low = xp.where(active, low, nu_low)
            nu_high = xp.where(active, high, nu_high)
            nu = xp.where(active, step, nu)
            active = active & ~done
        at_eps = xp.full(shape, float(eps), dtype=xp.float64, device=_device_of(s.P))
        h = xp.where(groups[None, :], xp.where(free, xp.where(reachable, current, at_eps), zero), h)
    linear_groups = ~groups & (n_free > 0)
    if bool(xp.any(linear_groups)):
        best = xp.argmin(xp.where(free, s.lin, inf), axis=0)
        spread = xp.where(free, xp.full(shape, float(eps), dtype=xp.float64, device=_device_of(s.P)), zero)
        rest = xp.broadcast_to((target - (n_free - 1.0) * eps)[None, :], shape)
        spread = xp.where(_one_hot(xp, best, shape[0], s.P), rest, spread)
        h = xp.where(linear_groups[None, :], spread, h)
    return h


def _power_update(s, *, free, fixed, simplex_rows, eps, dtype):
    """constraints.constrained_update for a β without closed form."""
    xp = s.xp
    with np.errstate(all="ignore"):
        updated = power_minimiser(s, eps, 0.0)
        if simplex_rows is not None:
            rows = xp.reshape(simplex_rows, (simplex_rows.shape[0], 1))
            target = xp.ones(s.shape[1:], dtype=xp.float64, device=_device_of(s.P))
            if fixed is not None:
                target = target - xp.sum(xp.where(rows & ~free, fixed, xp.zeros_like(fixed)), axis=0)
            root = power_simplex_minimiser(s, free & rows, target, eps)
            updated = xp.where(rows, root, updated)
        if fixed is not None:
            updated = xp.where(free, updated, fixed)
    return xp.astype(updated, dtype)


# --- the statistics of the data ---------------------------------------------------------


def _column_sums(xp, B):
    return xp.sum(_f64(xp, B), axis=0)


def _kl_ratio(data, B, H):
    """X / (B H) at the nonzeros (sparse: in CSR order) or everywhere (dense)."""
    xp = data.xp
    if data.nonzeros is not None:
        return data.nonzeros.values / _model_at_nonzeros(xp, data.nonzeros, B, H)
    return data.X / (B @ H)


def _model_at_nonzeros(xp, nz, B, H):
    """(B H) at the nonzeros, in CSR order: one component at a time (1-D gathers)."""
    model = xp.take(B[:, 0], nz.rows) * xp.take(H[0, :], nz.cols)
    for q in range(1, H.shape[0]):
        model = model + xp.take(B[:, q], nz.rows) * xp.take(H[q, :], nz.cols)
    return model


def _ratio_times_Ht(data, ratio, H):
    """(X / Y) Hᵀ, shape (c, k)."""
    xp = data.xp
    if data.nonzeros is not None:
        return data.nonzeros.times(xp, ratio, xp.permute_dims(H, (1, 0)))
    return ratio @ xp.permute_dims(H, (1, 0))


def _Bt_times_ratio(data, ratio, B):
    """Bᵀ (X / Y), shape (k, p)."""
    xp = data.xp
    if data.nonzeros is not None:
        return xp.permute_dims(data.nonzeros.transposed_times(xp, ratio, B), (1, 0))
    return xp.permute_dims(B, (1, 0)) @ ratio


def _kl_divergence(data, B, H, ratio):
    xp = data.xp
    counts = data.nonzeros.values if data.nonzeros is not None else data.X
    positive = counts > 0
    logs = xp.where(
        positive, counts * xp.log(xp.where(positive, ratio, xp.ones_like(ratio))), xp.zeros_like(ratio)
    )
    model_total = float(xp.sum(_column_sums(xp, B) * xp.sum(_f64(xp, H), axis=1)))
    return model_total - data.total + float(xp.sum(_f64(xp, logs)))


def _frobenius_data_part(data, B):
    """Bᵀ X, shape (k, p)."""
    xp = data.xp
    if data.nonzeros is not None:
        return _Bt_times_ratio(data, data.nonzeros.values, B)
    return xp.permute_dims(B, (1, 0)) @ data.X


def _frobenius_divergence(data, B, H, data_part):
    xp = data.xp
    H64, B64 = _f64(xp, H), _f64(xp, B)
    model_square = float(xp.sum((xp.permute_dims(B64, (1, 0)) @ B64) * (H64 @ xp.permute_dims(H64, (1, 0)))))
    cross = float(xp.sum(_f64(xp, data_part) * H64))
    return 0.5 * data.data_constant - cross + 0.5 * model_square


def _regularisation_terms(xp, H, shape_2d, lambda_L, mu, epsilon_reg):
    laplacian = 0.0
    if lambda_L > 0 and shape_2d is not None:
        laplacian = 0.5 * lambda_L * laplacian_energy(xp, H, shape_2d)
    mu = sparsity_weights(mu, H.shape[0])
    log_sparsity = 0.0
    if np.any(mu > 0):
        sums = xp.sum(xp.log(_f64(xp, H) + epsilon_reg), axis=1)
        log_sparsity = float(xp.sum(_put(xp, _device_of(H), mu) * sums))
    return laplacian, log_sparsity


# --- the steps --------------------------------------------------------------------------


def _statistics(data, B, H, for_W=False):
    """The step statistics at (B, H) (masked_counts.statistics without a mask).

    KL: Bᵀ(X/Y) and the ratio. Other β: P = Bᵀ Y^(β−1), Q = Bᵀ (X Y^(β−2)) of the H step
    (β = 2 factorised: BᵀB H and Bᵀ X) and, ``for_W``, P_W = Y^(β−1) Hᵀ, Q_W = X Y^(β−2) Hᵀ
    (before Gᵀ); for β = 0 also Σ log Y.
    """
    xp = data.xp
    if data.beta == 1.0:
        ratio = _kl_ratio(data, B, H)
        return {"BtR": _Bt_times_ratio(data, ratio, B), "ratio": ratio}
    Bt = xp.permute_dims(B, (1, 0))
    if data.beta == 2.0:
        return {"P": (Bt @ B) @ H, "Q": _frobenius_data_part(data, B)}
    beta = data.beta
    n_channels, n_pixels = data.shape
    step = max(1, data.block_entries // n_channels)
    P_blocks, Q_blocks = [], []
    P_W = Q_W = None
    log_model = 0.0
    for start in range(0, n_pixels, step):
        stop = min(n_pixels, start + step)
        H_block = H[:, start:stop]
        model = B @ H_block  # (c, pixels of the block): never the whole dense Y
        if beta == 0.0:
            log_model += float(xp.sum(xp.log(_f64(xp, model))))
        power = model ** (beta - 1.0)
        P_blocks.append(Bt @ power)
        if for_W:
            part = power @ xp.permute_dims(H_block, (1, 0))
            P_W = part if P_W is None else P_W + part
        if data.nonzeros is None:  # dense counts: X Y^(β−2) is 0 where X is
            weighted = data.X[:, start:stop] * model ** (beta - 2.0)
            Q_blocks.append(Bt @ weighted)
            if for_W:
                part = weighted @ xp.permute_dims(H_block, (1, 0))
                Q_W = part if Q_W is None else Q_W + part
    out = {"P": xp.concat(P_blocks, axis=1) if len(P_blocks) > 1 else P_blocks[0]}
    if data.nonzeros is not None:  # X Y^(β−2) at the nonzeros only
        nz = data.nonzeros
        weighted = nz.values * _model_at_nonzeros(xp, nz, B, H) ** (beta - 2.0)
        out["Q"] = _Bt_times_ratio(data, weighted, B)
        if for_W:
            Q_W = _ratio_times_Ht(data, weighted, H)
    else:
        out["Q"] = xp.concat(Q_blocks, axis=1) if len(Q_blocks) > 1 else Q_blocks[0]
    if for_W:
        out["P_W"], out["Q_W"] = P_W, Q_W
    if beta == 0.0:
        out["log_model"] = log_model
    return out


def _power_divergence(data, H, stats):
    """D_β from the H statistics: Σ Y^β = Σ P ⊙ H and Σ X Y^(β−1) = Σ Q ⊙ H (Y = B H)."""
    xp = data.xp
    H64 = _f64(xp, H)
    model_power = float(xp.sum(_f64(xp, stats["P"]) * H64))
    cross = float(xp.sum(_f64(xp, stats["Q"]) * H64))
    beta = data.beta
    if beta == 0.0:  # Σ (x/y − log x + log y − 1)
        return cross - data.data_constant + stats.pop("log_model") - data.shape[0] * data.shape[1]
    return (data.data_constant + (beta - 1.0) * model_power - beta * cross) / (beta * (beta - 1.0))


def h_step(
    data,
    G,
    W,
    H,
    *,
    shape_2d=None,
    lambda_L=0.0,
    mu=None,
    epsilon_reg=1.0,
    simplex=False,
    fixed=None,
    eps=1e-10,
    workspace=None,
):
    """One majorize-minimize update of H with W fixed (reference.h_step, β = 1 or 2).

    Parameters and result as :func:`espm_cli.solver.reference.h_step`; the arrays may be
    numpy (the result is then numpy) or on the data's device (the result stays there);
    ``workspace`` is what :func:`evaluate` returned at this W and H.
    """
    xp = data.xp
    with np.errstate(all="ignore"):
        host, (H, G, W, fixed) = _inputs(data, H, G, W, fixed)
        k, dtype = H.shape[0], H.dtype
        B = G @ W
        stats = workspace if workspace is not None else _statistics(data, B, H)
        mu = sparsity_weights(mu, k)
        laplacian = lambda_L > 0 and shape_2d is not None
        if data.beta == 1.0:  # reference.h_step, in H's dtype
            beta = xp.broadcast_to(xp.astype(_column_sums(xp, B), dtype)[:, None], H.shape)
            if np.any(mu > 0):
                beta = beta + _put(xp, data.device, mu, dtype)[:, None] / (H + epsilon_reg)
            c = H * stats["BtR"]
            if laplacian:
                a = xp.astype(0.5 * lambda_L * _degrees(xp, shape_2d, data.device), dtype)
                c = c + lambda_L * H * neighbour_sum(xp, H, shape_2d)
            else:
                a = xp.zeros((1, 1), dtype=dtype, device=data.device)
        elif data.beta != 2.0:  # beta_steps.h_step: the power surrogate, in float64
            H64 = _f64(xp, H)
            lin = 0.0
            if np.any(mu > 0):
                lin = _put(xp, data.device, mu)[:, None] / (H64 + epsilon_reg)
            a = c = 0.0
            if laplacian:
                a = 0.5 * lambda_L * _degrees(xp, shape_2d, data.device)
                c = lambda_L * H64 * neighbour_sum(xp, H64, shape_2d)
            surrogate = _Power(xp, _f64(xp, stats["P"]), _f64(xp, stats["Q"]), H64, a, lin, c, data.beta)
            free, fixed = _held(xp, fixed, H.shape, H)
            rows = xp.ones((k,), dtype=xp.bool, device=data.device) if simplex else None
            return _output(
                data,
                _power_update(surrogate, free=free, fixed=fixed, simplex_rows=rows, eps=eps, dtype=dtype),
                host,
            )
        else:  # beta_steps.h_step with PowerSurrogate.quadratic, in float64
            H64 = _f64(xp, H)
            lin = 0.0
            if np.any(mu > 0):
                lin = _put(xp, data.device, mu)[:, None] / (H64 + epsilon_reg)
            a = 0.5 * _f64(xp, stats["P"]) / H64
            c = xp.zeros_like(H64)
            if laplacian:
                a = a + 0.5 * lambda_L * _degrees(xp, shape_2d, data.device)
                c = lambda_L * H64 * neighbour_sum(xp, H64, shape_2d)
            beta = lin - _f64(xp, stats["Q"])
        free, fixed = _held(xp, fixed, H.shape, H)
        rows = xp.ones((k,), dtype=xp.bool, device=data.device) if simplex else None
        H_new = _quadratic_update(
            xp, a, beta, c, free=free, fixed=fixed, simplex_rows=rows, eps=eps, dtype=dtype
        )
    return _output(data, H_new, host)


def _degrees(xp, shape_2d, device):
    """Degrees of the grid's pixels, shape (1, p), float64 (as grid.grid_degrees)."""
    ones = xp.ones((1, shape_2d[0] * shape_2d[1]), dtype=xp.float64, device=device)
    return neighbour_sum(xp, ones, shape_2d)


def w_step(data, G, W, H, *, simplex_rows=None, fixed=None, eps=1e-10):
    """One majorize-minimize update of W with H fixed (reference.w_step, β = 1 or 2).

    Parameters and result as :func:`espm_cli.solver.reference.w_step` (host or device
    arrays, as :func:`h_step`).
    """
    xp = data.xp
    with np.errstate(all="ignore"):
        host, (W, G, H, fixed) = _inputs(data, W, G, H, fixed)
        dtype = W.dtype
        B = G @ W
        Gt = xp.permute_dims(G, (1, 0))
        Ht = xp.permute_dims(H, (1, 0))
        if data.beta == 1.0:  # W = numerator / denominator, constraints.multiplicative_w_update
            ratio = _kl_ratio(data, B, H)
            numerator = W * (Gt @ _ratio_times_Ht(data, ratio, H))
            denominator = xp.astype(
                _column_sums(xp, G)[:, None] * xp.sum(_f64(xp, H), axis=1)[None, :], dtype
            )
            a, beta, c = xp.zeros((1, 1), dtype=dtype, device=data.device), denominator, numerator
        elif data.beta != 2.0:  # beta_steps.w_step: the power law W = W⁰ (Q / P)^γ
            stats = _statistics(data, B, H, for_W=True)
            P, Q = _f64(xp, Gt @ stats["P_W"]), _f64(xp, Gt @ stats["Q_W"])
            surrogate = _Power(xp, P, Q, _f64(xp, W), 0.0, 0.0, 0.0, data.beta)
            free, fixed = _held(xp, fixed, W.shape, W)
            rows = (
                None if simplex_rows is None else _put(xp, data.device, np.asarray(simplex_rows, dtype=bool))
            )
            return _output(
                data,
                _power_update(surrogate, free=free, fixed=fixed, simplex_rows=rows, eps=eps, dtype=dtype),
                host,
            )
        else:  # beta_steps.w_step: P = Gᵀ B H Hᵀ, Q = Gᵀ X Hᵀ, float64 surrogate
            counts_Ht = (
                data.nonzeros.times(xp, data.nonzeros.values, Ht)
                if data.nonzeros is not None
                else data.X @ Ht
            )
            P = _f64(xp, Gt @ (B @ (H @ Ht)))
            Q = _f64(xp, Gt @ counts_Ht)
            W64 = _f64(xp, W)
            a, beta, c = 0.5 * P / W64, -Q, xp.zeros_like(W64)
        free, fixed = _held(xp, fixed, W.shape, W)
        rows = None if simplex_rows is None else _put(xp, data.device, np.asarray(simplex_rows, dtype=bool))
        W_new = _quadratic_update(
            xp, a, beta, c, free=free, fixed=fixed, simplex_rows=rows, eps=eps, dtype=dtype
        )
    return _output(data, W_new, host)


def evaluate(data, G, W, H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0):
    """The objective terms (host float64) and the H-step statistics from the same pass.

    Returns
    -------
    terms : ndarray of shape (3,)
    workspace : dict of device arrays, for the next :func:`h_step` at this W and H.
    """
    xp = data.xp
    with np.errstate(all="ignore"):
        _, (H, G, W) = _inputs(data, H, G, W)
        B = G @ W
        stats = _statistics(data, B, H)
        if data.beta == 1.0:
            divergence = _kl_divergence(data, B, H, stats.pop("ratio"))
        elif data.beta == 2.0:
            divergence = _frobenius_divergence(data, B, H, stats["Q"])
        else:
            divergence = _power_divergence(data, H, stats)
        laplacian, log_sparsity = _regularisation_terms(xp, H, shape_2d, lambda_L, mu, epsilon_reg)
    return np.array([divergence, laplacian, log_sparsity]), stats


def objective_terms(data, G, W, H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0):
    """The three terms of F in float64 (as reference.objective_terms / beta_steps')."""
    return evaluate(data, G, W, H, shape_2d=shape_2d, lambda_L=lambda_L, mu=mu, epsilon_reg=epsilon_reg)[0]


def _onto_simplex(xp, values, free, target, eps):
    """As initialization._onto_simplex: free entries >= eps summing to target per column."""
    zero = xp.zeros_like(values)
    free_values = xp.where(free, xp.clip(values, min=eps), zero)
    n_free = xp.sum(xp.astype(free, values.dtype), axis=0)
    excess = xp.where(free, free_values - eps, zero)
    excess_sums = xp.sum(excess, axis=0)
    room = target - n_free * eps
    positive = excess_sums > 0
    share = xp.where(
        positive[None, :], excess / xp.where(positive, excess_sums, xp.ones_like(excess_sums)), zero
    )
    even = xp.where(free, xp.broadcast_to(1.0 / xp.clip(n_free, min=1.0), values.shape), zero)
    share = xp.where(positive[None, :], share, even)
    return xp.where(free, eps + room * share, values)


def extrapolated_point(G, W, H, W_before, H_before, step, settings, update_W):
    """fit_loop's extrapolated trial on the device: the step, then the projection.

    ``W + step (W − W_before)`` (likewise H), no entry below half its value, projected onto
    the bounds, held entries and simplex exactly as ``make_feasible(..., rescale=False)``.
    """
    xp = _compat().array_namespace(H)
    with np.errstate(all="ignore"):
        dtype = H.dtype
        H_e = _f64(xp, xp.maximum(H + step * (H - H_before), _SHRINK_FLOOR * H))
        W_e = _f64(xp, xp.maximum(W + step * (W - W_before), _SHRINK_FLOOR * W) if update_W else W)
        eps = settings["eps"]
        fixed_W = settings["fixed_W"] if update_W else None
        fixed_H = settings["fixed_H"]
        W_e, H_e = xp.clip(W_e, min=eps), xp.clip(H_e, min=eps)
        free_W = xp.ones(W_e.shape, dtype=xp.bool, device=_device_of(W_e)) if fixed_W is None else fixed_W < 0
        free_H = xp.ones(H_e.shape, dtype=xp.bool, device=_device_of(H_e)) if fixed_H is None else fixed_H < 0
        if fixed_W is not None:
            W_e = xp.where(free_W, W_e, fixed_W)
        if fixed_H is not None:
            H_e = xp.where(free_H, H_e, fixed_H)
        if settings["simplex"] == "H":
            target = 1.0 - xp.sum(xp.where(free_H, xp.zeros_like(H_e), H_e), axis=0)
            H_e = _onto_simplex(xp, H_e, free_H, target, eps)
        elif settings["simplex"] == "W":
            simplex_rows = settings["simplex_rows"] if update_W else None
            rows = np.zeros(W_e.shape[0], bool) if simplex_rows is None else simplex_rows
            rows = xp.reshape(_put(xp, _device_of(W_e), np.asarray(rows, dtype=bool)), (W_e.shape[0], 1))
            group = free_W & rows
            whole = xp.all(free_W, axis=0) & xp.all(free_H, axis=1)
            sums = xp.sum(xp.where(group, W_e, xp.zeros_like(W_e)), axis=0)
            factor = xp.where(whole & (sums > 0), sums, xp.ones_like(sums))
            W_e = xp.where(whole[None, :], xp.clip(W_e / factor[None, :], min=eps), W_e)
            H_e = xp.where(whole[:, None], xp.clip(H_e * factor[:, None], min=eps), H_e)
            target = 1.0 - xp.sum(xp.where(rows & ~free_W, W_e, xp.zeros_like(W_e)), axis=0)
            W_e = _onto_simplex(xp, W_e, group, target, eps)
    return xp.astype(W_e, dtype), xp.astype(H_e, dtype)


# --- registration -----------------------------------------------------------------------


def serves_unmasked(beta, weighted):
    """Every β, without masked pixels or entries (masked channels are dropped before)."""
    return not weighted


def array_api_backend(namespace, *, default_dtype="float64"):
    """A :class:`~espm_cli.solver.backends.Backend` running these steps in a namespace.

    Parameters
    ----------
    namespace : callable
        ``namespace(device) -> (xp, device)``; raises ValueError (one line) when the
        library or the device is missing.
    default_dtype : str
        The compute dtype when the estimator's ``dtype`` is None.

    Returns
    -------
    Backend
    """

    def prepare_counts(X, dtype, *, beta=1.0, observed_pixels=None, missing=None, device=None):
        return _prepare(
            namespace, X, dtype, beta=beta, observed_pixels=observed_pixels, missing=missing, device=device
        )

    return Backend(
        prepare_counts,
        h_step,
        w_step,
        objective_terms,
        serves=serves_unmasked,
        evaluate=evaluate,
        to_device=_on_device,
        to_host=to_host,
        extrapolated_point=extrapolated_point,
        default_dtype=default_dtype,
    )


register_backend("array-api", array_api_backend(_numpy_namespace))
register_backend(
    "cuda", array_api_backend(lambda device: _cuda_namespace(None, device), default_dtype="float32")
)
register_backend(
    "cupy", array_api_backend(lambda device: _cuda_namespace("cupy", device), default_dtype="float32")
)
register_backend("torch", array_api_backend(_torch_namespace, default_dtype="float32"))
