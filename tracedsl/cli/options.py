"""Option types and options that several commands share."""

from __future__ import annotations

import click

from tracedsl import pipeline


class IrFieldType(click.ParamType):
    """An integer option checked against the bounds of the IR field it stands for."""

    name = "integer"

    def __init__(self, option: str):
        self.option = option

    def convert(self, value, param, ctx):
        number = click.INT.convert(value, param, ctx)
        problem = pipeline.option_problem(self.option, number)  # the IR loads only when given
        if problem:
            self.fail(problem, param, ctx)
        return number


BLOCK_SIZE_HELP = ("Tokens per hash id. Default: the manifest's (a run directory's, or the "
                   "manifest.json beside the file), else inferred from the rows.")


def block_size_option(help: str = BLOCK_SIZE_HELP):
    """``--block-size``: the same option, with the same bounds, on validate, report and simulate."""
    return click.option("--block-size", type=IrFieldType("--block-size"), default=None, help=help)
