"""espm 1.1.3 with the ESpM paper's parameters on a small simulated dataset: a test fixture.

The ESpM paper's weights (lambda_L = 1, mu = 0.004, epsilon_reg = 0.01, simplex on H)
are meant for data scaled the way espm scales them (``normalize=True``: X times
k / mean counts per pixel). ``tests/solver/test_espm_paper_parameters.py`` checks that
espm_cli with ``normalize=True`` and the same weights (lambda_L = 2 in espm_cli's
convention, whose Laplacian term is (lambda_L / 2) tr(H Δ Hᵀ)) reaches espm's result from
the same start. CI has no espm, so espm's result is computed here once and committed:

1. a 24 x 24 pixel specimen from ``espm_cli.simulate`` (3 phases, its physics G), Poisson
   counts at ``DOSE`` counts per pixel, seeded; channels where G is zero or that hold no
   count are left out (espm would replace them by 1e-10, espm_cli leaves them out);
2. a start near the truth (the same for both: W0 in counts, H0 on the simplex);
3. espm 1.1.3, inside ``benchmarks/.venv-espm`` (created by
   :func:`bench_espm.ensure_espm_venv`), from that start (W0 times espm's scale, as espm
   takes a given W in the scaled problem), ``MAX_ITER`` iterations without its stopping
   rule;
4. X, G, the start and espm's W (counts), H and losses go to
   ``tests/solver/data/espm_paper_parameters.npz`` (compressed, well under 1 MB).

Run (a minute; the first run installs espm into benchmarks/.venv-espm)::

    .venv/bin/python benchmarks/espm_paper_fixture.py
"""

import argparse
import contextlib
import io
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "tests" / "solver" / "data" / "espm_paper_parameters.npz"
SIZE = (24, 24)
DOSE = 80.0
SEED = 7
MAX_ITER = 3000
PAPER = dict(lambda_L=1.0, mu=0.004, epsilon_reg=0.01)  # espm's convention


def make_problem():
    """(X pixels x channels uint16, G, W0 counts, H0 simplex, shape_2d) from espm_cli."""
    from espm_cli.simulate.synthetic import SimulationSettings, simulate

    simulation = simulate(
        SimulationSettings(
            size=SIZE, dose=1.0, n_channels=400, energy_scale_keV=0.025, seed=0, shapes=("particles", "layer")
        )
    )
    truth = simulation.truth
    G, W, H = truth.G, truth.W, truth.maps.reshape(truth.W.shape[1], -1)
    rng = np.random.default_rng(SEED)
    X = rng.poisson(DOSE * (G @ W @ H)).T
    kept = G.any(axis=1) & (X.sum(axis=0) > 0)
    X, G = X[:, kept], G[kept]
    assert np.all(X.sum(axis=1) > 0), "a pixel without counts"
    k = W.shape[1]
    W0 = DOSE * W * rng.uniform(0.6, 1.4, W.shape)
    H0 = 0.6 * H + 0.4 * rng.dirichlet(np.ones(k), H.shape[1]).T
    H0 /= H0.sum(axis=0)
    return X.astype(np.uint16), G, W0, H0, SIZE


def espm_fit(inputs, output):
    """Runs inside benchmarks/.venv-espm: espm's SmoothNMF from the given start."""
    warnings.filterwarnings("ignore")
    import espm
    from espm.estimators import SmoothNMF

    stored = np.load(inputs)
    X = stored["X"].T.astype(np.float64)  # espm: channels x pixels
    k = stored["H0"].shape[0]
    scale = k / (np.mean(X) * X.shape[0])  # espm's normalization factor
    estimator = SmoothNMF(
        n_components=k,
        G=stored["G"],
        shape_2d=tuple(stored["shape_2d"]),
        simplex_H=True,
        simplex_W=False,
        normalize=True,
        max_iter=int(stored["max_iter"]),
        tol=0.0,
        no_stop_criterion=True,
        hspy_comp=False,
        verbose=0,
        **PAPER,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # espm prints its progress
        estimator.fit_transform(X, W=stored["W0"] * scale, H=stored["H0"].copy())
    np.savez(
        output,
        W=estimator.W_,
        H=estimator.H_,
        losses=np.asarray(estimator.losses_),
        scale=estimator.norm_factor_,
        n_iter=estimator.n_iter_,
        version=espm.__version__,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--espm-fit", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=FIXTURE)
    args = parser.parse_args(argv)
    if args.espm_fit:
        espm_fit(*args.espm_fit)
        return
    sys.path.insert(0, str(HERE))
    from bench_espm import ESPM_PYTHON, ensure_espm_venv

    ensure_espm_venv()
    X, G, W0, H0, shape_2d = make_problem()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    work = args.output.with_suffix(".inputs.npz")
    espm_out = args.output.with_suffix(".espm.npz")
    np.savez(work, X=X, G=G, W0=W0, H0=H0, shape_2d=shape_2d, max_iter=MAX_ITER)
    subprocess.run(
        [str(ESPM_PYTHON), str(Path(__file__).resolve()), "--espm-fit", str(work), str(espm_out)], check=True
    )
    espm_result = np.load(espm_out)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.output,
        X=X,
        G=G,
        W0=W0,
        H0=H0,
        shape_2d=np.array(shape_2d),
        W_espm=espm_result["W"],
        H_espm=espm_result["H"],
        losses_espm=espm_result["losses"],
        scale_espm=espm_result["scale"],
        n_iter_espm=espm_result["n_iter"],
        espm_version=str(espm_result["version"]),
        parameters=json.dumps(PAPER),
    )
    work.unlink()
    espm_out.unlink()
    print(
        f"{args.output}: {args.output.stat().st_size / 1024:.0f} KiB, espm "
        f"{espm_result['version']}, {int(espm_result['n_iter'])} iterations, last losses "
        f"{np.asarray(espm_result['losses'])[-3:]}"
    )


if __name__ == "__main__":
    main()
