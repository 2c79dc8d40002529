"""edge: a multi-cloud edge API gateway."""

from edge import native

__version__ = "0.1.0"

native.install()
