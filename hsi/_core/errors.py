"""Every error the package raises on purpose for bad input or missing data.

The CLI turns any :class:`HSIError` into one line on stderr and exit code 2, so
messages must read well on their own: what was expected, what was found, how to
fix it.
"""

from __future__ import annotations


class HSIError(Exception):
    """Base class of the package's user-facing errors."""


class ConfigError(HSIError, ValueError):
    """A setting is out of range or inconsistent with the data."""


class DataFormatError(HSIError, ValueError):
    """A data file is unreadable, of the wrong shape, or holds invalid values."""


class DatasetNotFoundError(HSIError, FileNotFoundError):
    """A dataset's files are not on disk and could not be downloaded."""


class DownloadError(HSIError, OSError):
    """A download failed or its content did not match the published checksum."""


class DependencyNotFoundError(HSIError, ImportError):
    """An optional dependency is missing; the message holds the pip command."""


class UnknownNameError(HSIError, KeyError):
    """A registry lookup failed; the message lists close matches."""

    def __str__(self) -> str:
        # KeyError.__str__ would wrap the message in quotes.
        return str(self.args[0]) if self.args else ""


class NotFittedError(HSIError, ValueError, AttributeError):
    """A transformer was used before ``fit``."""


class CheckpointError(HSIError, ValueError):
    """A checkpoint is foreign, tampered with, or does not fit the data."""


class DeviceError(HSIError, RuntimeError):
    """The requested compute device is not available."""


class InputTooLargeError(HSIError, MemoryError):
    """An input declares more data than the memory available to read it."""
