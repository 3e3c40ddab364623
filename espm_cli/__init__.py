"""espm_cli: decompose EDX spectrum images into phases (X ~ G W H).

The package is split in layers that import one way only:
cli -> (io, report, hyperspy_ext, simulate) -> (physics, solver).
Nothing heavy is imported here, so that ``espm --help`` stays instant.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
