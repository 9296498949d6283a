"""Write a confidence temperature into an existing asl-edge ONNX file's contract.

    python -m asl_edge.export.temperature runtime/models/default.onnx 1.7

The graph is untouched; only the contract in metadata_props changes, so the runtime's
probabilities become softmax(logits / T). Fit T with benchmarks/studies/calibrate.py.
"""
from __future__ import annotations

import os
from pathlib import Path

import click

from asl_edge.runtime.contract import CONTRACT_KEY, ModelContract
from asl_edge.common.errors import UserError, cli_errors, command, first_line
from asl_edge.runtime.options import FiniteFloat


def set_temperature(path, temperature: float) -> ModelContract:
    """Rewrite PATH's contract with this temperature (atomically); returns the new contract."""
    import onnx

    from .onnx_export import add_metadata

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    try:
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception as e:
        raise UserError(f"cannot read ONNX file {path}: {first_line(e, 200)}") from None
    if CONTRACT_KEY not in meta:
        raise UserError(f"{path} is not an asl-edge model (no {CONTRACT_KEY} in its metadata)")
    contract = ModelContract.from_json(meta[CONTRACT_KEY]).with_temperature(temperature)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(path.read_bytes())
    try:
        add_metadata(tmp, {CONTRACT_KEY: contract.to_json()})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return contract


@command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("temperature", type=FiniteFloat())
@cli_errors
def main(model, temperature):
    """Set MODEL's confidence TEMPERATURE (1 = plain softmax) in its contract."""
    contract = set_temperature(model, temperature)
    click.echo(f"{model}: temperature {contract.temperature:g}")


if __name__ == "__main__":
    main()
