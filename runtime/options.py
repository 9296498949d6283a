"""Command-line number types shared by every asl-edge command."""
from __future__ import annotations

import math

import click


class FiniteFloat(click.FloatRange):
    """A float option that must be a finite number (click's FloatRange lets nan and inf through:
    nan compares false with every bound), optionally within a range."""

    name = "float"

    def __init__(self, min=None, max=None, min_open=False, max_open=False, clamp=False):
        super().__init__(min, max, min_open, max_open, clamp)

    def convert(self, value, param, ctx):
        v = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(v, param, ctx)
