"""The ``mlpot-zoo`` command line: one click group, thin adapters over the package core.

Exit codes (documented in ``docs/zoo.md``): 0 ok; 1 generic error; 2 usage error;
3 verification failed; 4 not available offline / network unreachable; 5 unknown model name.
Human output goes to stdout, logs and progress bars to stderr; ``--json`` prints one JSON document.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ase_mlpot")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Manage and use the ase_mlpot model zoo."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o", "--output", "destination", required=True, type=click.Path(path_type=Path),
    help="Artifact folder to write (config.json + model.safetensors).",
)
@click.option("--name", default=None, help="Model name recorded in the artifact.")
@click.option("--force", is_flag=True, help="Overwrite an existing artifact folder.")
def convert(source: Path, destination: Path, name: str | None, force: bool) -> None:
    """Convert published weights into an ase_mlpot artifact folder.

    SOURCE is a NeuroChem ``.info`` file (or the folder holding one) or a TorchANI 2.x state dict
    (``*.pt``, read with ``weights_only=True``).
    """
    from ase_mlpot.models.ani.convert import convert_published_ani

    path = convert_published_ani(source, destination, name=name, overwrite=force)
    click.echo(str(path))


def _register_subgroups() -> None:
    """Attach the command groups that live beside their code."""
    from ase_mlpot.datasets.cli import data

    main.add_command(data)


try:  # the data group is optional while it is being built
    _register_subgroups()
except ImportError:  # pragma: no cover - only without the datasets subpackage
    pass
