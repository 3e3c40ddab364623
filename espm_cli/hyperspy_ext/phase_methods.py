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
from hyperspy.signals import LazySignal

from .composition_table import CompositionTable
from .model_from_metadata import model_from_signal

logger = logging.getLogger(__name__)

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


class _FittedAbundances:
    """Wraps a SmoothNMF for hyperspy's lazy decomposition.

    On a lazy signal hyperspy collects every block, calls ``fit_transform`` once,
    then recomputes the loadings block by block through ``transform``. The fit has
    already found every pixel's abundances (with the Laplacian over the whole grid,
    which a block-wise ``transform`` could not apply), so ``transform`` hands back
    those rows in the order hyperspy reads the blocks: ``decompose_phases`` rechunks
    the data so that blocks are runs of whole image rows, the same order the fit saw.
    """

    def __init__(self, estimator):
        self.estimator = estimator
        self._abundances = None
        self._next_row = 0

    @property
    def components_(self):
        return self.estimator.components_

    def fit_transform(self, X):
        self._abundances = self.estimator.fit_transform(X)
        self._next_row = 0
        return self._abundances

    def transform(self, X):
        start, stop = self._next_row, self._next_row + X.shape[0]
        if self._abundances is None or stop > self._abundances.shape[0]:
            raise RuntimeError("hyperspy asked for more pixels than were fitted.")
        self._next_row = stop
        return self._abundances[start:stop]


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
    """The data as float, and for lazy data in blocks of whole image rows."""
    data = signal.data
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype("float64")
    if isinstance(signal, LazySignal):
        # array axes are (ny, nx, channels): keep only the row axis split
        data = data.rechunk({axis: -1 for axis in range(1, data.ndim)})
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
        algorithm = _FittedAbundances(estimator) if lazy else estimator

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
