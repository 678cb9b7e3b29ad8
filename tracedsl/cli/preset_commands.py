"""CLI command listing the bundled specs: presets."""

from __future__ import annotations

import json

import click

from tracedsl import pipeline


@click.command("presets", short_help="List the bundled specs, one line each.")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON: name, description, path.")
def presets_command(as_json: bool) -> None:
    """List the bundled specs (`tracedsl run NAME` runs one), each with its one-line description.

    docs/presets.md says where each comes from and how close a run of it is to its source.
    """
    found = pipeline.list_presets()
    if as_json:
        click.echo(json.dumps({"presets": [preset.to_json() for preset in found]}, indent=2))
        return
    width = max(len(preset.name) for preset in found)
    for preset in found:
        click.echo(f"{preset.name:<{width}}  {preset.description}".rstrip())


COMMANDS = (presets_command,)
