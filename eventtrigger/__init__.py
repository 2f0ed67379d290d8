"""eventtrigger: call an HTTP endpoint at a time, on a schedule, or when a webhook arrives."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eventtrigger")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
