"""Options, errors, logging and ``--config`` handling shared by the espm commands."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

logger = logging.getLogger("espm_cli")


class RefusedInput(click.ClickException):
    """An input the tool refuses (bad file, unknown element, ...): one line, exit code 1."""

    exit_code = 1


# --- logging: -v / -q ------------------------------------------------------------------


class _ClickEchoHandler(logging.Handler):
    """Log records to stderr through click (so CliRunner and pipes see them)."""

    #: A progress bar on stderr, if one is showing: messages are written above it.
    active_bar = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = f"espm: {record.levelname.lower()}: {self.format(record)}"
            if _ClickEchoHandler.active_bar is not None:
                _ClickEchoHandler.active_bar.write(message)
            else:
                click.echo(message, err=True)
        except Exception:  # never let logging break a run
            self.handleError(record)


def set_verbosity(change: int) -> None:
    """Set the espm_cli log level from the -v/-q balance (0: warnings and errors)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        root = ctx.find_root()
        root.meta["espm.verbosity"] = root.meta.get("espm.verbosity", 0) + change
        change = root.meta["espm.verbosity"]
    level = {-2: logging.CRITICAL, -1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
        max(-2, min(2, change)), logging.DEBUG
    )
    logger.handlers = [h for h in logger.handlers if not isinstance(h, _ClickEchoHandler)]
    handler = _ClickEchoHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def show_logs_above(bar) -> None:
    """Write log messages above ``bar`` (a tqdm bar) until called with None."""
    _ClickEchoHandler.active_bar = bar


def verbosity() -> int:
    """Current -v/-q balance (positive: more output)."""
    ctx = click.get_current_context(silent=True)
    return 0 if ctx is None else ctx.find_root().meta.get("espm.verbosity", 0)


def _verbose_callback(ctx, param, value):
    if value:
        set_verbosity(value)
    return value


def _quiet_callback(ctx, param, value):
    if value:
        set_verbosity(-value)
    return value


verbose_option = click.option(
    "-v",
    "--verbose",
    count=True,
    expose_value=False,
    callback=_verbose_callback,
    help="More log output on stderr (repeat for debug).",
)
quiet_option = click.option(
    "-q",
    "--quiet",
    count=True,
    expose_value=False,
    callback=_quiet_callback,
    help="Less output: only errors on stderr, no progress bar.",
)


def verbosity_options(function):
    """Add -v/-q to a command."""
    return verbose_option(quiet_option(function))


# --- errors --------------------------------------------------------------------------

#: Library parameter names -> the command-line option that sets them.
OPTION_OF_PARAMETER = {
    "crop": "'--crop'",
    "bin_factor": "'--bin'",
    "energy_range": "'--energy-range'",
    "n_components": "'-k' / '--n-components'",
    "method": "'--method'",
    "scheduler": "'--scheduler' / '--workers'",
}


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def refused_inputs() -> Iterator[None]:
    """Turn library errors into one-line click errors, without a traceback.

    A ValueError carrying a ``parameter`` that an option sets (crop, bin, energy
    range, number of phases not fitting the data) becomes ``click.BadParameter``
    (exit 2); other ValueErrors and OSErrors become :class:`RefusedInput` (exit 1).
    With -vv the traceback goes to the log.
    """
    try:
        yield
    except (click.ClickException, BrokenPipeError):
        raise
    except (ValueError, OSError) as error:
        logger.debug("traceback", exc_info=True)
        parameter = getattr(error, "parameter", None)
        if parameter in OPTION_OF_PARAMETER:
            raise click.BadParameter(str(error), param_hint=OPTION_OF_PARAMETER[parameter]) from None
        message = _first_line(error)
        if isinstance(error, OSError) and error.filename and str(error.filename) not in message:
            message = f"{message}: {error.filename}"
        raise RefusedInput(message) from None


# --- --config run.yaml --------------------------------------------------------------


def canonical_key(key: str) -> str:
    """YAML key -> option parameter name (``lambda-L`` and ``lambda_L`` both work)."""
    return str(key).strip().lstrip("-").replace("-", "_")


def read_yaml(path: str | Path, param_hint: str = "--config") -> Any:
    """Parse a YAML file; syntax errors become one line with the line number (exit 2)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise click.BadParameter(f"cannot read {path}: {error.strerror}", param_hint=param_hint) from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise click.BadParameter(
            f"YAML syntax error in {path.name}{where}: {problem}", param_hint=param_hint
        ) from None


def option_names(command: click.Command, *, exclude=("config",)) -> dict[str, click.Parameter]:
    """The command's parameters by name (the keys a config file may use)."""
    return {p.name: p for p in command.params if p.name and p.name not in exclude and p.expose_value}


def normalise_config(
    values: Any,
    command: click.Command,
    source: str,
    extra_keys: tuple[str, ...] = (),
    param_hint: str = "--config",
) -> dict[str, Any]:
    """Check a config mapping's keys against the command's options; canonical names.

    Raises
    ------
    click.BadParameter
        Naming the unknown key and listing the valid ones.
    """
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise click.BadParameter(
            f"{source} must be a mapping of option names to values", param_hint=param_hint
        )
    valid = option_names(command)
    out = {}
    for key, value in values.items():
        name = canonical_key(key)
        if name not in valid and name.lower() in {v.lower() for v in valid}:
            name = next(v for v in valid if v.lower() == name.lower())
        if name not in valid and name not in extra_keys:
            allowed = ", ".join(sorted(set(valid) | set(extra_keys)))
            raise click.BadParameter(
                f"unknown key {key!r} in {source}; valid keys: {allowed}", param_hint=param_hint
            )
        out[name] = value
    return out


#: Config keys holding paths (resolved relative to the config file).
PATH_KEYS = ("file", "output_dir", "truth")


def config_callback(ctx: click.Context, param: click.Parameter, value):
    """Fill the command's defaults from a YAML file (command line values win).

    Every value goes through the option table's checks (:mod:`..analysis.run_config`) here,
    before any input file is read: a bad one is a one-line usage error (exit 2).
    """
    if not value:
        return value
    values = normalise_config(read_yaml(value), ctx.command, Path(value).name, extra_keys=("file",))
    base = Path(value).resolve().parent
    for key in PATH_KEYS:
        # relative paths in a config file are relative to the file
        if isinstance(values.get(key), str) and "\0" not in values[key]:
            values[key] = str((base / Path(values[key]).expanduser()).resolve())
    if "file" in values:
        file = values.pop("file")
        if not isinstance(file, str) or not file.strip():
            raise click.BadParameter(
                f"'file' in {Path(value).name} must be a path, got {file!r}", param_hint="--config"
            )
        ctx.meta["espm.config_file_input"] = file
    values = check_config_values(values, Path(value).name)
    ctx.default_map = {**(ctx.default_map or {}), **values}
    return value


def check_config_values(values: dict, source: str) -> dict:
    """Run the option table's checks over YAML values (canonical names); exit 2 on a bad one."""
    from ..analysis.run_config import ConfigError, check_value, option_by_name

    checked = {}
    for key, raw in values.items():
        try:
            checked[key] = check_value(option_by_name(key), raw)
        except ConfigError as error:
            raise click.BadParameter(error.reason, param_hint=f"'{key}' in {source}") from None
        except KeyError:
            checked[key] = raw  # a key of the command itself (not a decompose option)
    return {key: value for key, value in checked.items() if value is not None}


def config_option(function):
    """``--config run.yaml``: processed first, so the file fills the defaults."""
    return click.option(
        "--config",
        type=click.Path(exists=True, dir_okay=False),
        is_eager=True,
        expose_value=False,
        callback=config_callback,
        help="YAML file whose keys are option names (lambda_L or lambda-L); "
        "options given on the command line override it.",
    )(function)


class TableType(click.ParamType):
    """A click type checking one value with the option table (:mod:`..analysis.run_config`)."""

    def __init__(self, option):
        self.option = option
        self.name = {
            "int": "INTEGER",
            "float": "FLOAT",
            "symbols": "SYMBOLS",
            "path": "FILE",
            "folder": "DIRECTORY",
            "choice": "CHOICE",
        }.get(option.kind, "VALUE")

    def convert(self, value, param, ctx):
        from ..analysis.run_config import ConfigError, _single

        try:
            return _single(self.option, value)
        except ConfigError as error:
            self.fail(error.reason, param, ctx)

    def get_metavar(self, param, ctx=None):
        if self.option.kind == "choice":
            return "[" + "|".join(self.option.choices) + "]"
        return None


def _whole_value_callback(option):
    def callback(ctx, param, value):
        from ..analysis.run_config import ConfigError, check_value

        if option.multiple:
            value = tuple(value) or None
        if value is None or (option.nargs == 1 and not option.multiple):
            return value
        try:
            return check_value(option, value)
        except ConfigError as error:
            raise click.BadParameter(error.reason, ctx=ctx, param=param) from None

    return callback


def table_options(function, *, exclude=()):
    """Add one click option per row of the decompose option table (but those in ``exclude``)."""
    from ..analysis.run_config import OPTIONS, _range_text

    for option in reversed(OPTIONS):
        if option.name in exclude:
            continue
        show_default = option.default is not None and option.kind != "flag"
        text = option.help
        if option.minimum is not None or option.maximum is not None:
            text += f" (must be {_range_text(option)})"
        kwargs = dict(default=option.default, help=text, show_default=show_default)
        if option.kind == "flag":
            kwargs.update(is_flag=True)
        else:
            kwargs.update(
                type=TableType(option),
                nargs=option.nargs,
                callback=_whole_value_callback(option),
                multiple=option.multiple,
            )
            if option.multiple:
                kwargs.update(show_default=False)
            if option.metavar:
                kwargs["metavar"] = option.metavar
        flags = option.cli_flags
        if option.negatable:
            flags = tuple(f"{flag}/--no-{flag[2:]}" for flag in flags)
        function = click.option(*flags, option.name, **kwargs)(function)
    return function


class _FiniteFloatRange(click.FloatRange):
    """click.FloatRange that refuses nan and inf (which compare false with any bound)."""

    def convert(self, value, param, ctx):
        import math

        if isinstance(value, bool):
            self.fail(f"{value!r} is not a number", param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number", param, ctx)
        return number


def positive_float(open_low: bool = False):
    """A finite float type >= 0 (> 0 with ``open_low``)."""
    return _FiniteFloatRange(min=0.0, min_open=open_low)
