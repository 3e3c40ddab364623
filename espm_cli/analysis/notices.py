"""How the workflow tells the user something: warnings of one category."""


class EspmWarning(UserWarning):
    """Something about the data or the fit the user should know (and can act on).

    The command line turns these into ``espm: warning: ...`` lines on stderr; in
    Python they are ordinary warnings.
    """
