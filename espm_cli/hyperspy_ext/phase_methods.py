"""The methods the espm_cli signal types add to exspy's EDS spectra.

``decompose_phases`` runs hyperspy's own ``decomposition`` with a
:class:`espm_cli.solver.SmoothNMF` as ``algorithm`` and the settings a Poisson fit
needs, so the results land in ``learning_results`` as usual (factors = phase
spectra, loadings = abundance maps), and keeps what hyperspy has no slot for (W, the
compositions, the model, the fitted estimator) in ``phase_results``.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import scipy.sparse
from hyperspy.signals import LazySignal

from .composition_table import CompositionTable
from .model_from_metadata import model_from_signal

logger = logging.getLogger(__name__)

#: Dense float64 bytes of one block of a lazy signal read at once.
_LAZY_BLOCK_BYTES = 64 * 2**20
#: SmoothNMF arguments that decompose_phases sets itself.
_SET_BY_DECOMPOSE_PHASES = ("G", "G_continuum", "shape_2d", "n_components")


@dataclasses.dataclass
class PhaseResults:
    """What ``decompose_phases`` found, kept next to hyperspy's ``learning_results``.

    Attributes
    ----------
    model : espm_cli.physics.EDXModel
        The physics model whose ``G`` was used.
    estimator : espm_cli.solver.SmoothNMF
        The fitted estimator (``losses_``, ``n_iter_``, ``converged_``, ...).
    W : numpy.ndarray of shape (m, k)
        Element and continuum content of each phase; rows follow ``G_labels``.
    G_labels : tuple of str
        Names of the columns of G (elements, then the continuum columns).
    maps : numpy.ndarray of shape (k, ny, nx)
        Abundance map of each phase.
    spectra : numpy.ndarray of shape (k, n_channels)
        Spectrum of each phase, (G W)ᵀ.
    composition : CompositionTable
        Atomic percent of each element in each phase.
    """

    model: object
    estimator: object
    W: np.ndarray
    G_labels: tuple
    maps: np.ndarray
    spectra: np.ndarray
    composition: CompositionTable


class _LazyWholeImageFit:
    """Lets hyperspy's lazy decomposition run one SmoothNMF fit over the whole image.

    hyperspy streams the blocks of a lazy signal through ``partial_fit``; each block
    is kept as a sparse matrix of its nonzero counts (EDX counts are mostly zeros),
    so memory grows with the counts, not with pixels x channels. SmoothNMF needs
    every pixel in each update, so the fit runs once, when hyperspy first asks for
    the result after the last block. hyperspy then re-reads the blocks through
    ``transform``, which hands back the fitted abundances (with the Laplacian over
    the whole grid) in the order the blocks come, pass after pass:
    ``decompose_phases`` rechunks the data into runs of whole image rows, so that
    order is the raster order the fit saw (and ``decompose_phases`` sets the
    loadings from the fit afterwards in any case).
    """

    def __init__(self, estimator):
        self.estimator = estimator
        self._blocks = []
        self._abundances = None
        self._next_row = 0

    def partial_fit(self, X):
        self._blocks.append(scipy.sparse.csr_array(X))
        return self

    def fit_transform(self, X):
        self.partial_fit(X)
        return self._fitted_abundances()

    @property
    def components_(self):
        self._fitted_abundances()
        return self.estimator.components_

    def transform(self, X):
        abundances = self._fitted_abundances()
        if self._next_row == abundances.shape[0]:  # hyperspy may read the blocks again
            self._next_row = 0
        start, stop = self._next_row, self._next_row + X.shape[0]
        if stop > abundances.shape[0]:
            raise RuntimeError("hyperspy asked for more pixels than were fitted.")
        self._next_row = stop
        return abundances[start:stop]

    def _fitted_abundances(self):
        if self._abundances is None:
            counts = scipy.sparse.vstack(self._blocks, format="csr")
            self._blocks = []
            self._abundances = self.estimator.fit_transform(counts)
        return self._abundances


def navigation_shape_2d(signal):
    """``(ny, nx)`` of the pixel grid from the navigation axes (``(1, n)`` for a line)."""
    shape = signal.axes_manager.navigation_shape  # hyperspy order: (nx, ny)
    if len(shape) == 2:
        return (int(shape[1]), int(shape[0]))
    if len(shape) == 1:
        return (1, int(shape[0]))
    raise ValueError(
        f"the signal has {len(shape)} navigation axes; decompose_phases needs a "
        "spectrum image with 1 or 2 navigation axes (a line scan or a map)."
    )


def _float_data_in_row_blocks(signal):
    """The data as float; lazy data in blocks of whole image rows of bounded size."""
    data = signal.data
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype("float64")
    if isinstance(signal, LazySignal):
        # array axes are (ny, nx, channels) or (n, channels): split only the first
        row_bytes = 8 * int(np.prod(data.shape[1:]))
        rows = max(1, min(data.shape[0], _LAZY_BLOCK_BYTES // row_bytes))
        data = data.rechunk({0: rows, **{axis: -1 for axis in range(1, data.ndim)}})
    return data


class PhaseDecompositionMixin:
    """Adds ``build_G``, ``decompose_phases``, ``composition_table`` and
    ``plot_phases`` to an exspy EDS spectrum class."""

    #: Set by :meth:`decompose_phases`; None before.
    phase_results = None

    def build_G(self, elements=None, **overrides):
        """Build the physics model (G) of this spectrum image from its metadata.

        Parameters
        ----------
        elements : str or sequence of str, optional
            Elements to model (``"Fe,Pt,O"`` or ``["Fe", "Pt", "O"]``); the
            metadata's ``Sample.elements`` by default.
        **overrides
            Replace or supply acquisition values: ``beam_energy_keV``,
            ``mnka_fwhm_eV``, ``elevation_deg``, ``azimuth_deg``, ``tilt_deg``,
            ``thickness_nm``, ``density_g_cm3``; and model options
            ``ignored_elements``, ``kfactors``, ``efficiency_file``,
            ``window_layers``, ``dead_layer_um``, ``crystal_thickness_um``,
            ``composition``.

        Returns
        -------
        espm_cli.physics.EDXModel
            ``.G`` is (n_channels, m); pass the model as ``SmoothNMF(G=model)``.
        """
        return model_from_signal(self, elements, **overrides)

    def decompose_phases(self, n_components, elements=None, *, model=None,
                         model_options=None, print_info=False, **estimator_options):
        """Decompose into phases with SmoothNMF, with the settings a Poisson fit needs.

        Runs ``self.decomposition(algorithm=SmoothNMF(...))`` without Poisson
        normalisation and without a vacuum mask (exspy's EDS_TEM defaults, which
        break a KL fit), on float data (hyperspy refuses integer counts; the
        signal's own data are left as they are), with ``shape_2d`` from the
        navigation axes and G from :meth:`build_G`. Channels where G is zero
        (which the model cannot explain, e.g. the zero-energy peak) are left out of
        the fit through hyperspy's ``signal_mask``. Results: hyperspy's
        ``learning_results`` (``get_decomposition_factors()`` are the phase
        spectra, ``get_decomposition_loadings()`` the maps) and
        ``self.phase_results`` (W, compositions, model, fitted estimator).

        Parameters
        ----------
        n_components : int
            Number of phases.
        elements : str or sequence of str, optional
            Passed to :meth:`build_G`.
        model : espm_cli.physics.EDXModel, optional
            Use this model instead of building one.
        model_options : dict, optional
            Keyword overrides passed to :meth:`build_G`.
        print_info : bool, default False
            Let hyperspy print its decomposition summary.
        **estimator_options
            Other :class:`espm_cli.solver.SmoothNMF` arguments (``lambda_L``,
            ``mu``, ``simplex``, ``max_iter``, ``tol``, ``random_state``, ...).

        Returns
        -------
        PhaseResults
            Also stored as ``self.phase_results``.
        """
        from espm_cli.solver import SmoothNMF

        clash = [name for name in _SET_BY_DECOMPOSE_PHASES if name in estimator_options]
        if clash:
            raise ValueError(
                f"{clash[0]} cannot be passed to decompose_phases: it is set from the "
                "signal (use model= to give your own G)."
            )
        if model is not None and (elements is not None or model_options):
            raise ValueError(
                "model= was given together with elements/model_options; pass either a "
                "ready model or the options to build one."
            )
        if model is None:
            model = self.build_G(elements, **(model_options or {}))
        shape_2d = navigation_shape_2d(self)
        # Channels the model cannot produce (all-zero rows of G, e.g. the
        # zero-energy peak below the first line) are left out of the fit.
        produced = np.asarray(model.G).any(axis=1)
        if produced.all():
            signal_mask, fit_G = None, {"G": model}
        else:
            signal_mask = ~produced
            fit_G = {"G": np.asarray(model.G)[produced],
                     "G_continuum": np.asarray(model.continuum_mask)}
            logger.info("decompose_phases leaves out %d channels where G is zero",
                        int(signal_mask.sum()))
        estimator = SmoothNMF(n_components, shape_2d=shape_2d, **fit_G,
                              **estimator_options)
        lazy = isinstance(self, LazySignal)
        algorithm = _LazyWholeImageFit(estimator) if lazy else estimator

        original_data = self.data
        self.data = _float_data_in_row_blocks(self)
        try:
            self.decomposition(algorithm=algorithm, normalize_poissonian_noise=False,
                               navigation_mask=None, signal_mask=signal_mask,
                               output_dimension=n_components, print_info=print_info)
        finally:
            self.data = original_data
        abundances = estimator.H_  # (k, n_pixels), raster order
        self.learning_results.loadings = np.ascontiguousarray(abundances.T)
        spectra = np.asarray(estimator.components_)
        if signal_mask is not None:
            # over the whole axis: G W is zero on the left-out channels
            spectra = np.ascontiguousarray((np.asarray(model.G) @ estimator.W_).T)
            self.learning_results.factors = spectra.T.copy()

        composition = model.composition(estimator.W_)
        self.phase_results = PhaseResults(
            model=model,
            estimator=estimator,
            W=np.asarray(estimator.W_),
            G_labels=tuple(model.labels),
            maps=np.asarray(abundances).reshape((n_components, *shape_2d)),
            spectra=spectra,
            composition=CompositionTable.from_array(composition.elements,
                                                    composition.atomic_percent),
        )
        return self.phase_results

    def composition_table(self):
        """Atomic percent of each element in each phase (after decompose_phases).

        Returns
        -------
        CompositionTable
            Prints as a table (phases x elements); ``.to_dict()``,
            ``.atomic_percent`` (array), ``.phase(i)``.
        """
        return self._require_phase_results("composition_table").composition

    def plot_phases(self, *, figsize=None, cmap="viridis"):
        """Plot each phase's map beside its spectrum (after decompose_phases).

        Parameters
        ----------
        figsize : tuple of float, optional
            Figure size in inches; about 10 x (2.6 per phase) by default.
        cmap : str, default "viridis"
            Colour map of the abundance maps.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plotting import phase_figure

        results = self._require_phase_results("plot_phases")
        return phase_figure(results, self.axes_manager, figsize=figsize, cmap=cmap)

    def _require_phase_results(self, caller):
        if self.phase_results is None:
            raise RuntimeError(
                f"{caller}() needs a decomposition: run s.decompose_phases(n_components) "
                "first."
            )
        return self.phase_results
