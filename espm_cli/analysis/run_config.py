"""The decompose options as one declarative table, and the frozen run configuration.

Each row of :data:`OPTIONS` names an option, its type, default, allowed range or
choices, help text, and whether it changes the result (and so the configuration
hash). From the table come the click options of ``espm decompose``, the checks of
every value from the command line or YAML (``--config``, a batch study), the
defaults, and :func:`config_hash`. Adding an option is adding one row.

The estimator's defaults are not written here: they are :data:`.defaults.ESTIMATOR_DEFAULTS`,
the ones ``decompose_phases`` uses too. :data:`DEFAULT_CONFIG` and
:data:`PRESENTATION_KEYS` are read off the table.

No click here: batch workers and the run workflow import it. The checks are strict,
without silent coercion: a bool is not a number, 2.7 is not a number of phases, a
list is not a float, nan and inf are refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .defaults import (
    BACKEND_CHOICES,
    DEFAULT_METHOD,
    ESTIMATOR_DEFAULTS,
    METHOD_DEFAULTS,
    METHOD_INITS,
    method_refusal,
    shown_value,
)

__all__ = [
    "DEFAULT_CONFIG",
    "OPTIONS",
    "Option",
    "ConfigError",
    "PRESENTATION_KEYS",
    "RunConfig",
    "as_dict",
    "check_value",
    "config_hash",
    "make_config",
    "option_by_name",
]


class ConfigError(ValueError):
    """A configuration value that is not allowed.

    Attributes
    ----------
    option : str
        The option's name.
    reason : str
        What is wrong, without the option's name (``must be a whole number, got 2.7``).
    """

    def __init__(self, option: str, reason: str, label: str | None = None):
        super().__init__(f"{label}: {reason}" if label else reason)
        self.option = option
        self.reason = reason


def _fail(option: Option, reason: str) -> ConfigError:
    return ConfigError(option.name, reason, option.label)


@dataclasses.dataclass(frozen=True)
class Option:
    """One decompose option.

    Attributes
    ----------
    name : str
        Parameter name (``lambda_L``); the YAML key (``lambda_L`` or ``lambda-L``).
    kind : str
        ``int``, ``float``, ``flag``, ``choice``, ``loss`` (one of ``choices`` or a finite
        number), ``symbols``, ``path`` (an existing file), ``folder`` (an output folder) or ``address``
        (a dask.distributed scheduler, ``tcp://HOST:PORT``).
    default : object
        Value when not given (None: from the file's metadata, or not used).
    help : str
    changes_result : bool
        Whether the value changes the result (part of the configuration hash).
    minimum, maximum : float, optional
        Allowed range (closed unless ``min_open`` / ``max_open``).
    choices : tuple of str, optional
        For ``choice``; matched case-insensitively, stored as written here.
    nargs : int
        Several numbers (``--crop X Y W H``); each is checked as ``kind``.
    multiple : bool
        The option may be given several times (``--mask-energy 0 0.2 --mask-energy 1.7 1.8``;
        in YAML a list of groups); the value is a tuple of groups, None when not given.
    negatable : bool
        A flag that also has a ``--no-`` form (``--normalize/--no-normalize``).
    flags : tuple of str
        Command-line spellings (default ``--name-with-dashes``).
    metavar : str, optional
    """

    name: str
    kind: str
    default: Any
    help: str
    changes_result: bool = True
    minimum: float | None = None
    maximum: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple[str, ...] | None = None
    nargs: int = 1
    multiple: bool = False
    negatable: bool = False
    flags: tuple[str, ...] = ()
    metavar: str | None = None

    @property
    def cli_flags(self) -> tuple[str, ...]:
        return self.flags or ("--" + self.name.replace("_", "-"),)

    @property
    def label(self) -> str:
        """How messages name the option: its long flag."""
        return self.cli_flags[-1]


_POSITIVE = dict(minimum=0.0, min_open=True)
_NON_NEGATIVE = dict(minimum=0.0)
_DEFAULT = ESTIMATOR_DEFAULTS

#: The decompose options. One row per option.
OPTIONS: tuple[Option, ...] = (
    Option(
        "n_components",
        "int",
        _DEFAULT["n_components"],
        "Number of phases.",
        minimum=1,
        maximum=1000,
        flags=("-k", "--n-components"),
    ),
    Option(
        "elements", "symbols", None, "Elements to model, e.g. Fe,Pt,O (default: from the file's metadata)."
    ),
    Option(
        "ignore_elements",
        "symbols",
        None,
        "Elements modelled but left out of the compositions, e.g. Cu (grid).",
    ),
    Option("beam_energy", "float", None, "Beam energy, keV.", minimum=0.1, min_open=True, maximum=1000.0),
    Option("elevation", "float", None, "Detector elevation, degrees.", minimum=-90.0, maximum=90.0),
    Option("azimuth", "float", None, "Detector azimuth, degrees.", minimum=-360.0, maximum=360.0),
    Option(
        "tilt",
        "float",
        None,
        "Stage tilt (alpha), degrees.",
        minimum=-90.0,
        maximum=90.0,
        min_open=True,
        max_open=True,
    ),
    Option("mnka_fwhm", "float", None, "Detector resolution at Mn Kα, eV.", **_POSITIVE),
    Option(
        "thickness", "float", None, "Sample thickness, nm (with --density: self-absorption).", **_POSITIVE
    ),
    Option("density", "float", None, "Sample density, g/cm³.", **_POSITIVE),
    Option(
        "lambda_L",
        "float",
        _DEFAULT["lambda_L"],
        "Weight of the Laplacian smoothness of the maps.",
        flags=("--lambda-L",),
        **_NON_NEGATIVE,
    ),
    Option("mu", "float", _DEFAULT["mu"], "Weight of the log sparsity of the maps.", **_NON_NEGATIVE),
    Option(
        "epsilon_reg", "float", _DEFAULT["epsilon_reg"], "ε in the sparsity term log(H + ε).", **_POSITIVE
    ),
    # None (no constraint) is spelt "none" here, as on the command line
    Option(
        "simplex",
        "choice",
        _DEFAULT["simplex"] or "none",
        "H: abundances of a pixel sum to 1; W: element weights of a phase sum to 1; none "
        "(--method semi-nmf: none).",
        choices=("H", "W", "none"),
    ),
    Option("max_iter", "int", _DEFAULT["max_iter"], "Most iterations.", minimum=1, maximum=10**7),
    Option(
        "tol",
        "float",
        _DEFAULT["tol"],
        "Stop when the objective's relative decrease falls below this.",
        **_NON_NEGATIVE,
    ),
    Option("seed", "int", _DEFAULT["seed"], "Seed of the initialisation.", minimum=0, maximum=2**32 - 1),
    Option(
        "init",
        "choice",
        _DEFAULT["init"],
        "Start: spa (extreme points of the pixels' element content, the default with "
        "physics), kmeans (k-means++ of it), nndsvda (SVD of the counts, the default with "
        "--no-physics), random; --method semi-nmf: svd (its default: the leading singular "
        "vectors) or random.",
        choices=tuple(dict.fromkeys(init for inits in METHOD_INITS.values() for init in inits)),
    ),
    # None: the solver's "auto"
    Option(
        "n_init",
        "int",
        _DEFAULT["n_init"],
        "Number of starts (the second is NNDSVD-a after "
        "spa), each run to convergence, the lowest objective kept (default: 1).",
        minimum=1,
        maximum=1000,
    ),
    Option(
        "beta_loss",
        "loss",
        _DEFAULT["beta_loss"],
        "Data term: kullback-leibler (Poisson "
        "counts), frobenius (Gaussian noise), itakura-saito, or any β of the β-divergence "
        "(--method semi-nmf: frobenius).",
        choices=("kullback-leibler", "frobenius", "itakura-saito"),
    ),
    Option(
        "method",
        "choice",
        DEFAULT_METHOD,
        "smooth-nmf: X ≈ G W H with every option "
        "here; semi-nmf: nonnegative spectra, signed maps (for data that are not counts: "
        "background-subtracted, denoised, difference images), with its own defaults: no "
        "simplex, the Frobenius loss; it takes -k, --solver mu|pgd, --l1, --max-iter, --tol "
        "and --seed, and refuses a setting it cannot honour (--simplex H, --beta-loss "
        "kullback-leibler, --lambda-L 1, ...).",
        choices=("smooth-nmf", "semi-nmf"),
    ),
    Option(
        "solver",
        "choice",
        _DEFAULT["solver"],
        "How the objective is minimised: mu "
        "(multiplicative updates, monotone), pgd (projected gradient with line search, "
        "monotone), adagrad (adaptive steps; semi-nmf: mu or pgd).",
        choices=("mu", "pgd", "adagrad"),
    ),
    Option("l1", "float", _DEFAULT["l1"], "Weight of the L1 sparsity of the maps.", **_NON_NEGATIVE),
    Option(
        "learning_rate",
        "float",
        _DEFAULT["learning_rate"],
        "Adagrad's rate, a fraction of each factor's mean entry (--solver adagrad only).",
        **_POSITIVE,
    ),
    Option(
        "normalize",
        "flag",
        _DEFAULT["normalize"],
        "Fit the counts scaled to k per pixel, "
        "so that --lambda-L, --mu and --epsilon-reg mean the same at any dose (the ESpM "
        "paper's weights: 1, 0.004, 0.01); results stay in counts.",
        negatable=True,
    ),
    # how, not what: the same fit up to rounding (float32 on a GPU), so not in the hash
    Option(
        "backend",
        "choice",
        _DEFAULT["backend"],
        "Where the fit runs: auto (the fastest "
        "CPU backend), cuda (an NVIDIA GPU, float32: pip install 'espm-cli[gpu]'), cupy, "
        "torch, numba, reference, array-api. `espm info --backends` lists what works here.",
        choices=BACKEND_CHOICES,
        changes_result=False,
    ),
    Option(
        "mask_energy",
        "float",
        None,
        "Leave the channels of this energy window (keV) out of the fit; repeatable.",
        nargs=2,
        multiple=True,
        metavar="LOW HIGH",
    ),
    Option("bin", "int", 1, "Sum N x N pixels before fitting.", minimum=1, maximum=10**6),
    Option("crop", "int", None, "Pixel window to keep.", minimum=0, nargs=4, metavar="X Y WIDTH HEIGHT"),
    Option("energy_range", "float", None, "Energy window to fit, keV.", nargs=2, metavar="LOW HIGH"),
    Option(
        "lazy",
        "flag",
        False,
        "Read the file lazily (hyperspy lazy=True) while fitting, "
        "one block of rows at a time, keeping only the nonzero counts: the same fit, "
        "for files larger than memory.",
        changes_result=False,
    ),
    Option(
        "scheduler",
        "address",
        None,
        "Fit on this dask.distributed cluster (exact "
        "full-batch fit, a map-reduce per iteration; needs the distributed extra).",
        metavar="tcp://HOST:PORT",
    ),
    Option(
        "workers",
        "int",
        None,
        "Fit on a local dask.distributed cluster of N worker "
        "processes, started for the run and closed after.",
        minimum=1,
        maximum=1024,
        metavar="N",
    ),
    Option(
        "uncertainty",
        "flag",
        False,
        "Error bars (1σ) on the compositions and maps: a "
        "parametric bootstrap (Poisson draws from the fit, each refitted from it; "
        "docs/uncertainty.md); in the result file, composition.csv and the summary.",
    ),
    Option("no_physics", "flag", False, "Plain KL-NMF (G = identity): no elements needed, no compositions."),
    Option(
        "output_dir",
        "folder",
        None,
        "Folder for the results [default: <stem>_espm/ beside FILE].",
        changes_result=False,
        flags=("-o", "--output-dir"),
    ),
    Option("overwrite", "flag", False, "Replace an existing result.", changes_result=False),
    Option("log_spectra", "flag", False, "Logarithmic intensity axis in spectra.png.", changes_result=False),
    Option(
        "truth",
        "path",
        None,
        "Truth file of a simulated image (<stem>_truth.h5): print how close the phases came.",
        changes_result=False,
    ),
)

_BY_NAME = {option.name: option for option in OPTIONS}

#: Every key a run configuration holds, with its default (the decompose options).
DEFAULT_CONFIG: dict[str, Any] = {"file": None, **{option.name: option.default for option in OPTIONS}}
#: Keys that change where or how results are shown, not the result itself.
PRESENTATION_KEYS: tuple[str, ...] = tuple(option.name for option in OPTIONS if not option.changes_result)


def option_by_name(name: str) -> Option:
    return _BY_NAME[name]


# --- checking one value ----------------------------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (list, tuple)):
        return f"a list ({_short(value)})"
    if isinstance(value, dict):
        return f"a mapping ({_short(value)})"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else _short(value)


def _short(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def _range_text(option: Option) -> str:
    low, high = option.minimum, option.maximum
    parts = []
    if low is not None:
        parts.append(f"{'>' if option.min_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if option.max_open else '<='} {high:g}")
    return " and ".join(parts)


def _number(option: Option, value: Any, integer: bool) -> float | int:
    what = "a whole number" if integer else "a number"
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise _fail(option, f"must be {what}, got {value!r}") from None
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(option, f"must be {what}, got {_describe(value)}")
    if not math.isfinite(float(value)):
        raise _fail(option, f"must be a finite number, got {value}")
    if integer:
        if isinstance(value, numbers.Integral):
            value = int(value)
        elif float(value).is_integer():
            value = int(value)
        else:
            raise _fail(option, f"must be {what}, got {value}")
    else:
        value = float(value)
    low, high = option.minimum, option.maximum
    if (low is not None and (value < low or (option.min_open and value == low))) or (
        high is not None and (value > high or (option.max_open and value == high))
    ):
        raise _fail(option, f"must be {_range_text(option)}, got {value:g}")
    return value


def _symbols(option: Option, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise _fail(option, f"must be element symbols such as Fe,Pt,O, got {_describe(value)}")
    symbols = []
    for item in items:
        if not isinstance(item, str):
            raise _fail(option, f"{_describe(item)} is not an element symbol; write e.g. Fe,Pt,O")
        symbol = item.strip()
        if not symbol:
            continue
        if not (symbol.isascii() and symbol.isalpha() and len(symbol) <= 3):
            raise _fail(option, f"{symbol!r} is not an element symbol; write e.g. Fe,Pt,O")
        symbols.append(symbol)
    if not symbols:
        raise _fail(option, "names no element; write e.g. Fe,Pt,O")
    return tuple(symbols)


_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss)://[^\s/:]+(:\d{1,5})?$")


def _single(option: Option, value: Any) -> Any:
    kind = option.kind
    if kind in ("int", "float"):
        return _number(option, value, kind == "int")
    if kind == "flag":
        if not isinstance(value, bool):
            raise _fail(option, f"must be true or false, got {_describe(value)}")
        return value
    if kind == "choice":
        if isinstance(value, str):
            for choice in option.choices:
                if value.strip().lower() == choice.lower():
                    return choice
        raise _fail(option, f"must be one of {', '.join(option.choices)}, got {_describe(value)}")
    if kind == "loss":
        if isinstance(value, str):
            for choice in option.choices:
                if value.strip().lower() == choice.lower():
                    return choice
        try:
            return _number(option, value, False)
        except ConfigError:
            raise _fail(
                option,
                f"must be one of {', '.join(option.choices)} or a finite number (β), got {_describe(value)}",
            ) from None
    if kind == "symbols":
        return _symbols(option, value)
    if kind == "address":
        if not isinstance(value, str) or not _ADDRESS.match(value.strip()):
            raise _fail(
                option, f"must be a scheduler address such as tcp://HOST:PORT, got {_describe(value)}"
            )
        return value.strip()
    if kind in ("path", "folder"):
        if not isinstance(value, (str, Path)) or not str(value).strip():
            raise _fail(option, f"must be a path, got {_describe(value)}")
        if "\0" in str(value):
            raise _fail(option, f"must be a path, got {_describe(value)}")
        path = Path(str(value)).expanduser()
        if kind == "path" and not path.is_file():
            raise _fail(option, f"file {str(value)!r} does not exist")
        if kind == "folder" and path.exists() and not path.is_dir():
            raise _fail(option, f"{str(value)!r} is a file, not a folder")
        return str(path)
    raise AssertionError(f"unknown option kind {kind!r}")  # a bad table row, not bad input


def check_value(option: Option | str, value: Any) -> Any:
    """Check one value of ``option`` and return it in canonical form.

    Strings are parsed as on the command line ("5", "1e-3", "Fe,Pt"); YAML values
    must already have the right type. ``None`` is allowed where the default is None.

    Raises
    ------
    ConfigError
        One sentence naming the option, the value and what is allowed.
    """
    option = _BY_NAME[option] if isinstance(option, str) else option
    if value is None:
        if option.default is None:
            return None
        raise _fail(
            option, f"must not be empty (null); leave it out for the default {_short(option.default)}"
        )
    if option.multiple:
        if not isinstance(value, (list, tuple)) or not value:
            raise _fail(
                option, f"takes groups of {option.nargs} values ({option.metavar}), got {_describe(value)}"
            )
        if not isinstance(value[0], (list, tuple)):
            value = [value]  # one group written flat
        return tuple(_group(option, group) for group in value)
    if option.nargs == 1:
        return _single(option, value)
    return _group(option, value)


def _group(option: Option, value: Any) -> tuple:
    """``nargs`` values of one group, each checked as the option's kind."""
    if not isinstance(value, (list, tuple)) or len(value) != option.nargs:
        raise _fail(option, f"takes {option.nargs} values ({option.metavar}), got {_describe(value)}")
    values = tuple(_single(option, item) for item in value)
    if option.name in ("energy_range", "mask_energy") and not values[0] < values[1]:
        raise _fail(option, f"must be LOW < HIGH in keV, got {values[0]:g} {values[1]:g}")
    if option.name == "crop" and min(values[2:]) < 1:
        raise _fail(option, f"WIDTH and HEIGHT must be at least 1, got {values[2]} {values[3]}")
    return values


# --- the frozen run configuration ------------------------------------------------------


class _MappingView(Mapping):
    """Read-only mapping access (``config["max_iter"]``, ``{**config}``) to the fields."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))

    @property
    def given(self) -> frozenset[str]:
        """Names of the options given to :func:`make_config` (the others hold defaults:
        those of the run's method). Not part of the mapping, the equality or the hash."""
        return getattr(self, "_given", frozenset(self._keys()))


if TYPE_CHECKING:  # make_dataclass is opaque to type checkers: a mapping with attributes

    class RunConfig(_MappingView):
        def __init__(self, **values: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...
else:
    RunConfig = dataclasses.make_dataclass(
        "RunConfig",
        [("file", Any, dataclasses.field(default=None))]
        + [(option.name, Any, dataclasses.field(default=option.default)) for option in OPTIONS],
        bases=(_MappingView,),
        frozen=True,
        eq=True,
        namespace={
            "__doc__": "A checked, frozen run configuration: ``file`` and every decompose "
            "option (see OPTIONS). Build it with make_config; read it as attributes or "
            "as a mapping."
        },
    )
    RunConfig.__module__ = __name__


def _as_plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def as_dict(config: Mapping) -> dict:
    """The configuration as a plain dict (tuples as lists): for YAML, JSON and hashing."""
    return {key: _as_plain(value) for key, value in config.items()}


def make_config(values: Mapping[str, Any] | None = None, **changes: Any) -> RunConfig:
    """A checked RunConfig from option values (``None`` values mean: the default).

    Parameters
    ----------
    values : mapping, optional
        Option names (``lambda_L`` or ``lambda-L``) to values, plus ``file``. Of a
        RunConfig, the values given to it (``RunConfig.given``): the others take the
        defaults of the new configuration's method.
    **changes
        More values, overriding ``values``.

    Raises
    ------
    ConfigError
        An unknown key (naming the valid ones) or a bad value.
    """
    if isinstance(values, _MappingView):  # a run configuration: what was given to it
        values = {name: values[name] for name in values.given}
    merged = {**(dict(values) if values else {}), **changes}
    checked: dict[str, Any] = {}
    for key, value in merged.items():
        name = str(key).replace("-", "_")
        if name == "file":
            checked["file"] = None if value is None else str(Path(str(value)).expanduser().resolve())
            continue
        if name not in _BY_NAME:
            raise ConfigError(
                name, f"unknown configuration key {str(key)!r}; valid keys: file, {', '.join(_BY_NAME)}"
            )
        option = _BY_NAME[name]
        if value is not None:
            checked[name] = check_value(option, value)
    config = RunConfig(**_with_method_defaults(checked))
    object.__setattr__(config, "_given", frozenset(checked))  # frozen: set once, here
    return config


def _with_method_defaults(given: dict[str, Any]) -> dict[str, Any]:
    """The values given, checked against the method's rule, plus its own defaults.

    A setting left out takes the method's default (semi-nmf: no simplex, the Frobenius
    loss); one given that the method cannot honour is refused
    (:func:`.defaults.method_refusal`): never silently changed.
    """
    method = given.get("method", DEFAULT_METHOD)
    for name, value in given.items():
        if name in _BY_NAME:
            option = _BY_NAME[name]
            reason = method_refusal(method, name, value, f"{option.label} {shown_value(value)}".strip())
            if reason is not None:
                raise ConfigError(name, reason, option.label)
    own = {name: _run_config_value(name, value) for name, value in METHOD_DEFAULTS[method].items()}
    return {**own, **given}


def _run_config_value(name: str, value: Any) -> Any:
    """An estimator default as the run configuration spells it (simplex None: "none")."""
    return "none" if name == "simplex" and value is None else value


def config_hash(config: Mapping, input_sha256: str) -> str:
    """Hash of what determines a result: the input's bytes and the options that change it."""
    config = config if isinstance(config, RunConfig) else make_config(config)
    relevant = {
        option.name: _as_plain(config[option.name])
        for option in sorted(OPTIONS, key=lambda o: o.name)
        if option.changes_result
    }
    text = json.dumps({"input_sha256": input_sha256, "config": relevant}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
