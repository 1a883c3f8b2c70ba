"""The error every backbone module raises for bad settings, sources and texts."""


class BackboneError(ValueError):
    """A backbone source, setting or item text is unusable; the message names it and says why."""
