"""edge: a multi-cloud edge API gateway."""

__version__ = "0.1.0"
