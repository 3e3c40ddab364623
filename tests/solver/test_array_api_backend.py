"""The array-API backend gives the reference's fits, on numpy and under array-api-strict.

The same code runs on a GPU through CuPy or PyTorch; those cases are marked ``gpu`` and
skip without a device. array-api-strict refuses anything outside the standard, so the
"strict" runs check that the backend is written against the array API only (it has no
sparse arrays: sparse counts take the dense path there; numpy's take the scipy.sparse
path, the one CuPy and PyTorch take with their own sparse arrays).

Tolerances: float64 1e-10 relative (max difference over max value) after the iterations of
a full fit (starts, extrapolation, stopping rule: the whole loop); float32 1e-5 against
the float32 reference.
"""

import functools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from espm_cli.solver import SmoothNMF, get_backend, register_backend
from espm_cli.solver import simplex as reference_simplex
from espm_cli.solver.fit_loop import _extrapolate

array_api_strict = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")

from espm_cli.solver import _array_api_backend as backend_module  # noqa: E402

register_backend(
    "array-api-strict", backend_module.array_api_backend(lambda device: (array_api_strict, None))
)

AVAILABLE = {name: ok for name, ok, _ in backend_module.availability()}
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not AVAILABLE.get("cuda"), reason="no CUDA device with cupy or torch here")


def _torch_cpu():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


BACKENDS = [
    "array-api",
    "array-api-strict",
    pytest.param("cuda", marks=[gpu, needs_cuda]),
    pytest.param("torch-cpu", marks=pytest.mark.skipif(not _torch_cpu(), reason="torch not installed")),
]

SHAPE_2D = (6, 7)
N_CHANNELS = 30
N_ITER = 12


def _peaks_matrix():
    channels = np.arange(N_CHANNELS)
    peaks = [np.exp(-0.5 * ((channels - centre) / 1.5) ** 2) for centre in (5, 12, 19, 25)]
    ramp = channels / N_CHANNELS
    continuum = [np.exp(-3 * ramp) * (0.2 + ramp), 0.3 + 0.7 * np.sqrt(ramp)]
    return np.column_stack(peaks + continuum), np.array([False] * 4 + [True] * 2)


G_MATRIX, CONTINUUM = _peaks_matrix()


def _counts(seed=0, k=3):
    """Poisson counts (n_pixels, n_channels), about half zero, one all-zero pixel."""
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.1, 1.0, (G_MATRIX.shape[1], k))
    H = rng.dirichlet(np.ones(k) * 0.7, SHAPE_2D[0] * SHAPE_2D[1]).T
    X = rng.poisson(0.6 * G_MATRIX @ W @ H).T.astype(np.float64)
    X[4] = 0.0
    return X


COUNTS = _counts()

#: (name, estimator options): every constraint and regulariser the backend claims.
CASES = {
    "plain": dict(),
    "physics_smooth_sparse_simplexH_fixed": dict(
        physics=True, lambda_L=1.5, mu=[0.0, 0.5, 0.2], simplex="H", fixed=True
    ),
    "physics_simplexW_fixed": dict(physics=True, mu=0.3, simplex="W", fixed=True),
    "identity_smooth_simplexH": dict(lambda_L=2.0, simplex="H"),
}


def _params(backend, dtype, beta_loss, case, extrapolate=True):
    options = dict(CASES[case])
    physics = options.pop("physics", False)
    fixed = options.pop("fixed", False)
    params = dict(
        G=G_MATRIX if physics else None,
        G_continuum=CONTINUUM if physics else None,
        shape_2d=SHAPE_2D,
        max_iter=N_ITER,
        tol=0.0,
        random_state=0,
        dtype=dtype,
        beta_loss=beta_loss,
        extrapolate=extrapolate,
        **options,
    )
    if backend == "torch-cpu":
        params.update(backend="torch", device="cpu")
    else:
        params["backend"] = backend
    if fixed:
        m = G_MATRIX.shape[1] if physics else N_CHANNELS
        fixed_W, fixed_H = -np.ones((m, 3)), -np.ones((3, COUNTS.shape[0]))
        fixed_W[1, 2] = 0.2 if options.get("simplex") == "W" else 0.5
        fixed_H[0, ::5] = 0.3
        params.update(fixed_W=fixed_W, fixed_H=fixed_H)
    return params


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SmoothNMF(3, **params).fit(X)


@functools.cache
def _reference_fit(dtype, beta_loss, case, sparse_input):
    X = COUNTS.astype(dtype)
    return _fit(sp.csr_matrix(X) if sparse_input else X, **_params("reference", dtype, beta_loss, case))


def _relative(actual, expected):
    return float(np.max(np.abs(np.asarray(actual) - expected)) / np.max(np.abs(expected)))


def _assert_same_fit(fit, reference, rtol):
    assert fit.n_iter_ == reference.n_iter_
    for name in ("W_", "H_", "losses_", "initial_losses_"):
        difference = _relative(getattr(fit, name), getattr(reference, name))
        assert difference <= rtol, f"{name}: relative difference {difference:.2e} > {rtol}"


# array-api-strict has no sparse arrays: sparse input would take the same dense path.
INPUTS = [
    ("array-api", False),
    ("array-api", True),
    ("array-api-strict", False),
    *(
        pytest.param(*param.values, sparse, marks=param.marks)
        for param in BACKENDS[2:]
        for sparse in (False, True)
    ),
]


@pytest.mark.parametrize("backend, sparse_input", INPUTS)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("beta_loss", ["kullback-leibler", "frobenius"])
def test_fit_equals_reference_float64(backend, sparse_input, case, beta_loss):
    X = sp.csr_matrix(COUNTS) if sparse_input else COUNTS
    fit = _fit(X, **_params(backend, "float64", beta_loss, case))
    reference = _reference_fit("float64", beta_loss, case, sparse_input)
    assert isinstance(fit.H_, np.ndarray) and fit.H_.dtype == np.float64
    _assert_same_fit(fit, reference, 1e-10)


POSITIVE = COUNTS + 1.0  # β <= 0 needs X > 0 on every entry
#: β without closed form: the power surrogate, its 1-D solves and the simplex on them.
#: Itakura-Saito is compared at 1e-9: its fits amplify rounding (dense vs sparse sums)
#: about 10x more than the other β (measured 3e-10 on H after 12 iterations).
OTHER_BETAS = {0.0: 1e-9, 0.5: 1e-10, 1.5: 1e-10, 3.0: 1e-10}


@pytest.mark.parametrize("backend, sparse_input", INPUTS)
@pytest.mark.parametrize("case", ["plain", "physics_simplexW_fixed"])
@pytest.mark.parametrize("beta_loss", list(OTHER_BETAS))
def test_other_beta_equals_reference(backend, sparse_input, case, beta_loss):
    if backend == "array-api-strict" and (beta_loss, case) == (1.5, "physics_simplexW_fixed"):
        pytest.skip(
            "slow under array-api-strict (per-entry Newton solves in every simplex "
            "step); test_power_minimisers_equal_surrogate_py runs them there"
        )
    X = POSITIVE if beta_loss <= 0 else COUNTS
    X = sp.csr_matrix(X) if sparse_input else X
    fit = _fit(X, **_params(backend, "float64", beta_loss, case))
    _assert_same_fit(fit, _fit(X, **_params("reference", "float64", beta_loss, case)), OTHER_BETAS[beta_loss])


@pytest.mark.parametrize("beta_loss", [0.5, 3.0])
def test_other_beta_with_laplacian_and_simplex_equals_reference(beta_loss):
    """The per-entry Newton solves inside the simplex root (slow: numpy, 4 iterations)."""
    params = _params("array-api", "float64", beta_loss, "physics_smooth_sparse_simplexH_fixed")
    params["max_iter"] = 4
    X = sp.csr_matrix(COUNTS)
    _assert_same_fit(_fit(X, **params), _fit(X, **{**params, "backend": "reference"}), 1e-10)


def test_itakura_saito_refuses_zeros_like_the_reference():
    with pytest.raises(ValueError, match="beta_loss=0 is undefined where X is 0") as error:
        SmoothNMF(3, backend="array-api", beta_loss="itakura-saito", max_iter=2).fit(COUNTS)
    with pytest.raises(ValueError) as expected:
        SmoothNMF(3, backend="reference", beta_loss="itakura-saito", max_iter=2).fit(COUNTS)
    assert str(error.value) == str(expected.value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["plain", "physics_smooth_sparse_simplexH_fixed", "physics_simplexW_fixed"])
@pytest.mark.parametrize("beta_loss", ["kullback-leibler", "frobenius"])
def test_fit_equals_reference_float32(backend, case, beta_loss):
    X = sp.csr_matrix(COUNTS.astype(np.float32))
    fit = _fit(X, **_params(backend, "float32", beta_loss, case))
    assert fit.W_.dtype == fit.H_.dtype == np.float32
    _assert_same_fit(fit, _reference_fit("float32", beta_loss, case, True), 1e-5)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "array-api-strict"])
def test_other_beta_float32(backend):
    X = sp.csr_matrix(COUNTS.astype(np.float32))
    fit = _fit(X, **_params(backend, "float32", 1.5, "physics_simplexW_fixed"))
    assert fit.W_.dtype == fit.H_.dtype == np.float32
    _assert_same_fit(fit, _fit(X, **_params("reference", "float32", 1.5, "physics_simplexW_fixed")), 1e-5)


MONOTONE = [(beta, case) for beta in ("kullback-leibler", "frobenius") for case in CASES] + [
    (beta, case) for beta in (0.5, 3.0) for case in ("plain", "physics_simplexW_fixed")
]


@pytest.mark.parametrize("backend", ["array-api", "array-api-strict"])
@pytest.mark.parametrize("beta_loss, case", MONOTONE)
def test_objective_never_increases(backend, case, beta_loss):
    fit = _fit(sp.csr_matrix(COUNTS), **_params(backend, "float64", beta_loss, case, extrapolate=False))
    totals = np.concatenate([[fit.initial_losses_[-1]], fit.losses_[:, -1]])
    assert np.all(np.diff(totals) <= 1e-12 * np.abs(totals[:-1]))


def test_transform_equals_reference():
    params = _params(
        "array-api-strict", "float64", "kullback-leibler", "physics_smooth_sparse_simplexH_fixed"
    )
    params.pop("fixed_W"), params.pop("fixed_H")
    fit = _fit(COUNTS, **params)
    reference = _fit(COUNTS, **{**params, "backend": "reference"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_allclose(fit.transform(COUNTS), reference.transform(COUNTS), rtol=1e-9, atol=1e-12)


def _simplex_problem(seed, with_quadratic):
    """Groups with entries at the bound, held entries, linear entries and linear groups."""
    rng = np.random.default_rng(seed)
    shape = (4, 200)
    a = np.broadcast_to(rng.uniform(0, 2, (1, shape[1])) if with_quadratic else 0.0, shape)
    a = np.array(a)
    beta = rng.uniform(0.1, 5, shape) * rng.choice([1e-3, 1, 1e3], shape[1])
    c = rng.uniform(0, 5, shape) * rng.choice([1e-6, 1, 1e6], shape[1])
    c[0, :20] = 0.0
    c[1, 150:170] = 0.0  # with a = 0: linear entries in a mixed group
    a[1, 150:170] = 0.0
    c[:, 190:] = 0.0  # linear groups (an all-zero pixel without Laplacian)
    a[:, 190:] = 0.0
    free = np.ones(shape, bool)
    free[3, :50] = False
    target = np.where(free.all(axis=0), 1.0, 0.7)
    return a, beta, c, free, target


@pytest.mark.parametrize("namespace", ["numpy", "strict"])
@pytest.mark.parametrize("with_quadratic", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_simplex_root_equals_simplex_py(namespace, with_quadratic, seed):
    a, beta, c, free, target = _simplex_problem(seed, with_quadratic)
    expected = reference_simplex.simplex_minimiser(a, beta, c, free, target, 1e-10)
    if namespace == "strict":
        xp, put = array_api_strict, array_api_strict.asarray
    else:
        xp, put = backend_module._compat().array_namespace(np.empty(0)), np.asarray
    h = backend_module.simplex_minimiser(xp, put(a), put(beta), put(c), put(free), put(target), 1e-10)
    h = backend_module.to_host(h)
    np.testing.assert_allclose(h, expected, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize(
    "beta, laplacian", [(0.0, False), (0.5, False), (1.5, False), (3.0, False), (0.5, True), (1.5, True)]
)
def test_power_minimisers_equal_surrogate_py(beta, laplacian):
    """The per-entry solve and its simplex root, under array-api-strict, against surrogate.py."""
    from espm_cli.solver import surrogate

    rng = np.random.default_rng(int(10 * beta) + laplacian)
    shape = (4, 30)
    P, Q = rng.uniform(0.1, 3, shape), rng.uniform(0, 3, shape)
    Q[0, :5] = 0.0
    P[:, 26:] = Q[:, 26:] = 0.0  # columns with only a linear term
    h0 = rng.uniform(0.05, 1, shape)
    lin = rng.uniform(0, 0.5, shape)
    a = np.broadcast_to(rng.uniform(0.1, 2, (1, shape[1])), shape) if laplacian else 0.0
    c = rng.uniform(0, 1, shape) if laplacian else 0.0
    if laplacian:
        c[:, 26:] = 0.0
        a = np.where(np.arange(shape[1]) >= 26, 0.0, a)
    reference = surrogate.PowerSurrogate(P, Q, h0, a, lin, c, beta)
    put = array_api_strict.asarray
    device = backend_module._Power(
        array_api_strict,
        put(reference.P),
        put(reference.Q),
        put(reference.h0),
        put(reference.a),
        put(reference.lin),
        put(reference.c),
        beta,
    )
    free = np.ones(shape, bool)
    free[3, :10] = False
    target = np.where(free.all(axis=0), 1.0, 0.8)
    eps = 1e-10
    with np.errstate(all="ignore"):
        expected = surrogate.power_minimiser(reference, eps)
        got = backend_module.power_minimiser(device, eps, 0.0)
        np.testing.assert_allclose(backend_module.to_host(got), expected, rtol=1e-12)
        expected = surrogate.power_simplex_minimiser(reference, free, target, eps)
        got = backend_module.power_simplex_minimiser(device, put(free), put(target), eps)
    np.testing.assert_allclose(backend_module.to_host(got), expected, rtol=1e-11, atol=1e-300)


@pytest.mark.parametrize("simplex", [None, "H", "W"])
@pytest.mark.parametrize("fixed", [False, True])
@pytest.mark.parametrize("update_W", [True, False])
def test_extrapolated_point_equals_fit_loop(simplex, fixed, update_W):
    rng = np.random.default_rng(3)
    m, k, p = 6, 3, 20
    W, W_before = rng.uniform(1e-12, 1, (2, m, k))
    H, H_before = rng.uniform(1e-12, 1, (2, k, p))
    H[0, :3] = 1e-10  # entries at the bound
    fixed_W = fixed_H = None
    if fixed:
        fixed_W, fixed_H = -np.ones((m, k)), -np.ones((k, p))
        fixed_W[1, 2], fixed_H[0, ::4] = 0.2, 0.3
    rows = np.array([True] * 4 + [False] * 2)
    settings = dict(simplex=simplex, simplex_rows=rows, fixed_W=fixed_W, fixed_H=fixed_H, eps=1e-10)
    expected = _extrapolate(G_MATRIX, W, H, W_before, H_before, 0.7, settings, update_W)
    put = array_api_strict.asarray
    on_device = {
        **settings,
        "fixed_W": None if fixed_W is None else put(fixed_W),
        "fixed_H": None if fixed_H is None else put(fixed_H),
    }
    actual = backend_module.extrapolated_point(
        put(G_MATRIX), put(W), put(H), put(W_before), put(H_before), 0.7, on_device, update_W
    )
    for got, want in zip(actual, expected):
        np.testing.assert_allclose(backend_module.to_host(got), want, rtol=1e-14, atol=0)


def test_steps_keep_host_and_device_arrays_apart():
    """Numpy in, numpy out (the starts); device arrays in, device arrays out (the loop)."""
    backend = get_backend("array-api-strict")
    data = backend.prepare_counts(COUNTS, np.float64)
    G = np.eye(N_CHANNELS)
    W = np.full((N_CHANNELS, 3), 0.5)
    H = np.full((3, COUNTS.shape[0]), 0.5)
    assert isinstance(backend.h_step(data, G, W, H), np.ndarray)
    on_device = backend.h_step(data, *(backend.to_device(data, a) for a in (G, W, H)))
    assert type(on_device).__module__.startswith("array_api_strict")
    np.testing.assert_array_equal(backend.to_host(on_device), backend.h_step(data, G, W, H))


@pytest.mark.parametrize(
    "params, message",
    [
        (
            dict(backend="array-api", mask=np.eye(42, 30, dtype=bool)),
            "backend='array-api' does not serve beta_loss=1 with masked pixels or entries",
        ),
        (
            dict(backend="array-api", mask=np.arange(42)[:, None] == 3),
            "backend='array-api' does not serve beta_loss=1 with masked pixels or entries",
        ),
        (dict(backend="array-api", device="cuda"), "device='cuda': backend='array-api' runs numpy"),
        (dict(device="cuda"), "device='cuda' needs a device backend: backend='cuda'"),
        (dict(backend="reference", device="cuda:0"), "backend='reference' runs on the CPU"),
        (dict(device=""), "device='' is not valid"),
    ],
)
def test_bad_device_settings_are_one_clear_line(params, message):
    with pytest.raises(ValueError, match=message) as error:
        SmoothNMF(3, max_iter=2, **params).fit(COUNTS)
    assert "\n" not in str(error.value)


@pytest.mark.skipif(AVAILABLE.get("cuda", False), reason="a CUDA device is available here")
@pytest.mark.parametrize("name", ["cuda", "cupy", "torch"])
def test_cuda_without_a_device_fails_with_one_line(name):
    with pytest.raises(ValueError, match=f"backend='{name}' is not available here") as error:
        SmoothNMF(3, max_iter=2, backend=name).fit(COUNTS)
    assert "\n" not in str(error.value) and "espm-cli[gpu]" in str(error.value)


def test_auto_stays_on_the_cpu():
    assert get_backend("auto") in (get_backend("numba"), get_backend("reference"))
    assert get_backend("auto").to_device is None


def test_dtype_default_is_float64_on_the_cpu_and_float32_on_a_gpu():
    assert get_backend("array-api").default_dtype == "float64"
    assert all(get_backend(name).default_dtype == "float32" for name in ("cuda", "cupy", "torch"))
    fit = _fit(COUNTS, backend="array-api", max_iter=2)
    assert fit.W_.dtype == fit.H_.dtype == np.float64


@gpu
@needs_cuda
def test_cuda_default_is_float32_and_results_come_back_to_numpy():
    fit = _fit(sp.csr_matrix(COUNTS), backend="cuda", max_iter=5)
    assert isinstance(fit.H_, np.ndarray) and fit.H_.dtype == np.float32
    assert isinstance(fit.W_, np.ndarray) and fit.losses_.dtype == np.float64


def test_the_grid_pieces_equal_grid_py():
    from espm_cli.solver import grid

    rng = np.random.default_rng(5)
    for shape_2d in [(6, 7), (1, 9), (8, 1), (1, 1)]:
        H = rng.uniform(0, 1, (3, shape_2d[0] * shape_2d[1]))
        put = array_api_strict.asarray
        got = backend_module.neighbour_sum(array_api_strict, put(H), shape_2d)
        np.testing.assert_array_equal(backend_module.to_host(got), grid.neighbour_sum(H, shape_2d))
        np.testing.assert_allclose(
            backend_module.laplacian_energy(array_api_strict, put(H), shape_2d),
            grid.laplacian_energy(H, shape_2d),
            rtol=1e-14,
        )
        degrees = backend_module._degrees(array_api_strict, shape_2d, None)
        np.testing.assert_array_equal(backend_module.to_host(degrees)[0], grid.grid_degrees(shape_2d))
