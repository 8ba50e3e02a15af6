"""Exit codes and error handling shared by every ``mlpot-zoo`` command group.

Exit codes (documented in ``docs/zoo.md``): 0 ok; 1 generic error; 2 usage error;
3 verification failed; 4 not available offline / network unreachable; 5 unknown model name.
Kept apart from :mod:`ase_mlpot.cli` so that command groups living beside their code (training,
datasets) use the same codes without importing the main group.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

__all__ = [
    "EXIT_ERROR",
    "EXIT_OFFLINE",
    "EXIT_OK",
    "EXIT_UNKNOWN_MODEL",
    "EXIT_USAGE",
    "EXIT_VERIFICATION",
    "ZooCommandError",
    "command_errors",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_VERIFICATION = 3
EXIT_OFFLINE = 4
EXIT_UNKNOWN_MODEL = 5

_F = TypeVar("_F", bound=Callable[..., Any])


class ZooCommandError(click.ClickException):
    """A failed command: ``Error: <message>`` on stderr and a documented exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click's documented hook


def _exit_code(error: Exception) -> int:
    from ase_mlpot.errors import BundleError, ChecksumError, ModelNotFoundError, OfflineError

    if isinstance(error, ModelNotFoundError):
        return EXIT_UNKNOWN_MODEL
    if isinstance(error, (ChecksumError, BundleError)):
        return EXIT_VERIFICATION
    if isinstance(error, OfflineError):
        return EXIT_OFFLINE
    return EXIT_ERROR


def command_errors(*also: type[Exception]) -> Callable[[_F], _F]:
    """Decorator: ase_mlpot errors (and the exception types in ``also``, e.g. a recipe's
    ``ValueError``) become one ``Error:`` line on stderr and their documented exit code."""

    def decorate(function: _F) -> _F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from ase_mlpot.errors import MLPotError

            try:
                return function(*args, **kwargs)
            except (MLPotError, *also) as error:
                raise ZooCommandError(str(error), _exit_code(error)) from error

        return cast(_F, wrapper)

    return decorate
