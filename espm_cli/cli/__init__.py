"""The ``espm`` command: thin click commands over the library.

Each command module imports only click at import time; the library (hyperspy,
numpy, the solver) is imported inside the command, so ``espm --help`` is instant.
"""
