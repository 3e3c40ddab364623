"""The exact fit on a dask.distributed LocalCluster: the in-memory fit, block by block."""

import os
import signal
import threading
import time

import numpy as np
import pytest

from espm_cli.solver import SmoothNMF

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from solver_helpers import gaussian_peak_matrix  # noqa: E402

from espm_cli.solver.distributed import DistributedFitError, fit_distributed  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SHAPE_2D = (12, 10)


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    G, continuum = gaussian_peak_matrix(40, centres=[6.0, 17.0, 30.0], width=2.0)
    W = rng.uniform(0.2, 1.0, (G.shape[1], 3))
    H = rng.dirichlet(np.ones(3), SHAPE_2D[0] * SHAPE_2D[1]).T
    X = rng.poisson(4.0 * (G @ W @ H)).T.astype(np.uint16)
    W0 = rng.uniform(0.3, 1.0, W.shape)
    H0 = rng.dirichlet(np.ones(3), X.shape[0]).T
    options = dict(
        G=G,
        G_continuum=continuum,
        lambda_L=1.5,
        mu=0.05,
        shape_2d=SHAPE_2D,
        simplex="H",
        tol=1e-8,
        init="custom",
        extrapolate=False,
    )
    return X, W0, H0, options


@pytest.mark.parametrize("lazy", [False, True])
def test_distributed_fit_equals_the_in_memory_fit(client, lazy):
    X, W0, H0, options = _problem()
    reference = SmoothNMF(3, max_iter=12, **options).fit(X, W=W0, H=H0)
    data = da.from_array(X, chunks=(40, 40)) if lazy else X
    fitted = fit_distributed(
        SmoothNMF(3, max_iter=12, **options), data, client, W=W0, H=H0, rows_per_block=4
    )  # 3 blocks: two halos each way
    assert fitted.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(fitted.W_, reference.W_, rtol=1e-10)
    np.testing.assert_allclose(fitted.H_, reference.H_, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(fitted.losses_, reference.losses_, rtol=1e-10)
    np.testing.assert_allclose(fitted.initial_losses_, reference.initial_losses_, rtol=1e-12)
    traffic = fitted.bytes_per_iteration_
    assert traffic["to_workers"] == fitted.W_.nbytes  # W out; H stays on the workers
    assert traffic["to_client"] < 3 * (fitted.W_.nbytes + 8 * 8)


def test_distributed_fit_stops_where_the_in_memory_fit_stops(client):
    X, W0, H0, options = _problem(1)
    options = dict(options, tol=1e-3)
    reference = SmoothNMF(3, max_iter=200, **options).fit(X, W=W0, H=H0)
    assert reference.converged_ and reference.n_iter_ < 200
    fitted = fit_distributed(SmoothNMF(3, max_iter=200, **options), X, client, W=W0, H=H0, rows_per_block=5)
    assert fitted.converged_ and fitted.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(fitted.W_, reference.W_, rtol=1e-10)


def test_killing_a_worker_gives_the_right_result_or_one_clear_error(client):
    X, W0, H0, options = _problem(2)
    options = dict(options, tol=0.0)
    reference = SmoothNMF(3, max_iter=25, **options).fit(X, W=W0, H=H0)
    outcome = {}

    def run():
        try:
            outcome["fit"] = fit_distributed(
                SmoothNMF(3, max_iter=25, **options), X, client, W=W0, H=H0, rows_per_block=3
            )
        except DistributedFitError as error:
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(1.5)  # some iterations in
    pids = client.run(os.getpid)
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    thread.join(
        timeout=300
    )  # dask may wait for the lost worker before it recomputes (slow on a loaded machine)
    assert not thread.is_alive()
    if "fit" in outcome:  # dask recomputed the lost blocks: then it must be the right fit
        np.testing.assert_allclose(outcome["fit"].W_, reference.W_, rtol=1e-10)
        np.testing.assert_allclose(outcome["fit"].H_, reference.H_, rtol=1e-10, atol=1e-13)
    else:
        message = str(outcome["error"])
        assert "lost" in message and "\n" not in message
    client.wait_for_workers(2, timeout=60)


def test_what_the_distributed_fit_does_not_serve_is_refused(client):
    X, _, _, options = _problem()
    with pytest.raises(ValueError, match="KL loss only"):
        fit_distributed(SmoothNMF(3, **{**options, "beta_loss": "frobenius"}), X, client)
    with pytest.raises(ValueError, match="needs shape_2d"):
        fit_distributed(SmoothNMF(3, **{**options, "shape_2d": None, "lambda_L": 0.0}), X, client)
