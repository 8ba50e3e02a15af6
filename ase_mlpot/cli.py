"""The ``mlpot-zoo`` command line: one click group, thin adapters over the package core.

Exit codes (documented in ``docs/zoo.md``): 0 ok; 1 generic error; 2 usage error;
3 verification failed; 4 not available offline / network unreachable; 5 unknown model name.
Human output goes to stdout, logs and progress bars to stderr; ``--json`` prints one JSON document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ase_mlpot.cli_errors import EXIT_OFFLINE, EXIT_VERIFICATION, ZooCommandError, command_errors

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
@command_errors()
def convert(source: Path, destination: Path, name: str | None, force: bool) -> None:
    """Convert published weights into an ase_mlpot artifact folder.

    SOURCE is a NeuroChem ``.info`` file (or the folder holding one) or a TorchANI 2.x state dict
    (``*.pt``, read with ``weights_only=True``).
    """
    from ase_mlpot.io import CONFIG_FILE
    from ase_mlpot.models.ani.convert import convert_published_ani

    if (destination / CONFIG_FILE).exists() and not force:
        raise ZooCommandError(f"{destination} already holds an artifact; pass --force to "
                              "replace it")
    path = convert_published_ani(source, destination, name=name, overwrite=force)
    click.echo(str(path))


# --------------------------------------------------------------------------- zoo commands

_F = TypeVar("_F", bound=Callable[..., Any])
_zoo_errors = command_errors()


def _json_option(function: _F) -> _F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout.")(function)


def _emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, default=str))


def _table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in [headers, *rows]:
        cells = (str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


@main.command("list")
@click.option("--cached", is_flag=True, help="Only models usable offline.")
@_json_option
@_zoo_errors
def list_command(cached: bool, as_json: bool) -> None:
    """List the zoo's models (no network)."""
    from ase_mlpot import hub

    statuses = [hub.model_status(name) for name in hub.list_models(cached=cached)]
    if as_json:
        _emit_json([{"name": s.entry.name, "version": s.entry.version,
                     "elements": list(s.entry.elements), "license": s.entry.license,
                     "third_party": s.entry.third_party, "pinning": s.pinning,
                     "revision": s.revision, "cached": s.cached,
                     "description": s.entry.description} for s in statuses])
        return
    _table([[s.entry.name, s.entry.version, " ".join(s.entry.elements), s.entry.license,
             s.pinning, "yes" if s.cached else "no"] for s in statuses],
           ["NAME", "VERSION", "ELEMENTS", "LICENSE", "PINNING", "CACHED"])


@main.command()
@click.argument("name")
@_json_option
@_zoo_errors
def info(name: str, as_json: bool) -> None:
    """Show the model card of NAME: licence, elements, level of theory, revision, sha256, cache."""
    from ase_mlpot import hub

    status = hub.model_status(name)
    if as_json:
        _emit_json(status.to_dict())
        return
    entry = status.entry
    unresolved = "- (ships with the package)" if entry.bundled else "(resolved at first download)"
    lines = [
        f"name:            {entry.name} (version {entry.version})",
        f"description:     {entry.description}",
        f"aliases:         {', '.join(entry.aliases) or '-'}",
        f"architecture:    {entry.architecture} ({entry.format})",
        f"third party:     {'yes' if entry.third_party else 'no'}",
        f"elements:        {' '.join(entry.elements)}",
        "level of theory: " + "; ".join(f"{k} {v}" for k, v in entry.level_of_theory.items()),
        f"training data:   {entry.training_data}",
        f"licence:         {entry.license}",
        *(f"cite:            {c.text}" + (f" doi:{c.doi}" if c.doi else "")
          for c in entry.citations),
        f"repository:      {entry.hub.repo_id if entry.hub else '-'}",
        f"pinning:         {status.pinning}",
        f"revision:        {status.revision or unresolved}",
        f"cached:          {'yes' if status.cached else 'no'}",
        *(f"metric:          {key} = {value}" for key, value in entry.metrics.items()),
    ]
    if entry.deprecated:
        lines.append(f"DEPRECATED:      use {entry.successor}")
    for row in status.files:
        lines.append(f"file:            {row['path']} size={row['size']} sha256={row['sha256']}"
                     f" local={row['local_path'] or '-'}")
    click.echo("\n".join(lines))


@main.command("download")
@click.argument("name")
@click.option("--revision", default=None, help="Hub commit, tag or branch (default: pinned).")
@click.option("--dry-run", is_flag=True, help="Show what would be downloaded, write nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@_json_option
@_zoo_errors
def download_command(name: str, revision: str | None, dry_run: bool, quiet: bool,
                     as_json: bool) -> None:
    """Fetch and verify NAME into the cache; print its artifact folder."""
    from ase_mlpot import hub

    if dry_run:
        rows = hub.plan_download(name, revision)
        if as_json:
            _emit_json({"name": name, "dry_run": True, "files": rows})
            return
        _table([[r["path"], str(r["size"]), str(r["commit"]), "yes" if r["cached"] else "no",
                 "yes" if r["will_download"] else "no"] for r in rows],
               ["FILE", "SIZE", "COMMIT", "CACHED", "WILL DOWNLOAD"])
        return
    resolved = hub.resolve_model(name, revision=revision, progress=False if quiet else None)
    if as_json:
        _emit_json({"name": resolved.name, "path": str(resolved.path),
                    "revision": resolved.revision, "pinning": resolved.pinning,
                    "weights_sha256": resolved.weights_sha256})
        return
    click.echo(str(resolved.path))


@main.command("verify")
@click.argument("name", required=False)
@_json_option
@_zoo_errors
def verify_command(name: str | None, as_json: bool) -> None:
    """Re-hash cached files against the registry or lock file (exit 3 on a mismatch)."""
    from ase_mlpot import hub

    checks = hub.verify(name)
    bad = [c for c in checks if c.status in ("mismatch", "unverifiable")]
    present = [c for c in checks if c.status != "missing"]
    failure: ZooCommandError | None = None
    if bad:
        failure = ZooCommandError(
            f"{len(bad)} file(s) failed verification: "
            + ", ".join(f"{c.name}/{c.path} ({c.status})" for c in bad)
            + "; `mlpot-zoo remove NAME` and download again", EXIT_VERIFICATION)
    elif name is not None and not present:
        failure = ZooCommandError(f"{name!r} is not cached: run `mlpot-zoo download {name}`",
                                  EXIT_OFFLINE)
    if as_json:
        _emit_json({"ok": failure is None, "checks": [c.to_dict() for c in checks]}
                   | ({"error": failure.message} if failure else {}))
    elif present:
        _table([[c.name, (c.revision or "bundled")[:12], c.path, c.status] for c in checks],
               ["NAME", "REVISION", "FILE", "STATUS"])
    elif failure is None:
        click.echo("nothing cached or bundled to verify", err=True)
    if failure is not None:
        raise failure


@main.command("remove")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
@click.option("--forget", is_flag=True,
              help="Also drop the lock-file record (the next download is trusted anew).")
@_json_option
@_zoo_errors
def remove_command(name: str, yes: bool, dry_run: bool, forget: bool, as_json: bool) -> None:
    """Delete the cached revisions of NAME (and its converted artifacts)."""
    from ase_mlpot import hub

    planned = hub.remove(name, dry_run=True)
    if not dry_run and planned and not yes:
        click.confirm(f"Delete {len(planned)} cached path(s) of {name}?", abort=True,
                      err=True)
    removed = planned if dry_run else hub.remove(name, forget=forget)
    if as_json:
        _emit_json({"name": name, "dry_run": dry_run, "removed": [str(p) for p in removed]})
        return
    for path in removed:
        click.echo(str(path))
    if not removed:
        click.echo(f"nothing cached for {name}", err=True)


@main.group()
def cache() -> None:
    """Inspect the cache."""


@cache.command("dir")
@_json_option
@_zoo_errors
def cache_dir(as_json: bool) -> None:
    """Print the hub cache folder (--json: every cache path)."""
    from ase_mlpot import hub

    paths = hub.cache_paths()
    if as_json:
        _emit_json({key: str(value) for key, value in paths.items()})
        return
    click.echo(str(paths["hub_cache"]))


@main.command("export")
@click.argument("names", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Bundle to write (.tar).")
@click.option("--revision", default=None, help="Revision for every model (default: pinned).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@_json_option
@_zoo_errors
def export_command(names: tuple[str, ...], output: Path, revision: str | None, quiet: bool,
                   as_json: bool) -> None:
    """Write NAMES with their registry entries and checksums into a bundle for offline machines."""
    from ase_mlpot import hub

    path = hub.export_bundle(list(names), output, revision=revision,
                             progress=False if quiet else None)
    if as_json:
        _emit_json({"bundle": str(path), "models": list(names)})
        return
    click.echo(str(path))


@main.command("import")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_json_option
@_zoo_errors
def import_command(bundle: Path, as_json: bool) -> None:
    """Verify BUNDLE and add its models to the cache (exit 3 if it fails verification)."""
    from ase_mlpot import hub

    names = hub.import_bundle(bundle)
    if as_json:
        _emit_json({"bundle": str(bundle), "imported": names})
        return
    for name in names:
        click.echo(name)


@main.command("push")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("repo")
@click.option("--tag", default=None, help="Tag to create on the new commit (e.g. v1).")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("-m", "--message", default=None, help="Commit message.")
@_json_option
@_zoo_errors
def push_command(directory: Path, repo: str, tag: str | None, private: bool,
                 message: str | None, as_json: bool) -> None:
    """Publish the artifact DIRECTORY with its model card to the hub repository REPO.

    Prints the commit SHA to pin in the registry (--json: also the files' sha256 and size).
    """
    from ase_mlpot import hub

    result = hub.push(directory, repo, tag=tag, private=private, commit_message=message)
    if as_json:
        _emit_json(result.to_dict())
        return
    click.echo(result.revision)


@main.command("env")
@_json_option
@_zoo_errors
def env_command(as_json: bool) -> None:
    """Versions, cache paths, endpoint, offline flag and devices."""
    from ase_mlpot import hub

    report = hub.env_report()
    if as_json:
        _emit_json(report)
        return
    for key, value in report.items():
        if isinstance(value, dict):
            for sub, item in value.items():
                click.echo(f"{key}.{sub}: {item}")
        else:
            click.echo(f"{key}: {value}")


def _register_subgroups() -> None:
    """Attach the command groups that live beside their code."""
    from ase_mlpot.datasets.cli import data
    from ase_mlpot.training.cli import evaluate_command, finetune_command, train_command

    for command in (data, train_command, finetune_command, evaluate_command):
        main.add_command(command)


_register_subgroups()
