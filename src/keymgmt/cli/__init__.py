"""The ``keymgmt`` command line: a thin layer over :class:`keymgmt.KeyManager`."""

from keymgmt.cli._main import cli, main

__all__ = ["cli", "main"]
