"""``medrobust info``: parameters and GFLOPs of a model, beside the paper's figures."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from robustbench_med.cli.common import ImageSize, Options, out


def info(model: Annotated[str, typer.Argument(help="Registered model name (medrobust list models).")],
         dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Take channels and classes from this dataset (or pair d12+d14).")] = None,
         classes: Annotated[str | None, typer.Option(help="Classes per modality, e.g. 5,7 (default: the paper's configuration).")] = None,
         channels: Annotated[int, typer.Option(help="Input channels (default 3, as the paper).")] = 3,
         image_size: ImageSize = 128, model_option: Options = None) -> None:
    """Parameters and GFLOPs of a model at an input size (default: the paper's configuration)."""
    from robustbench_med.model_request import parse_key_values
    from robustbench_med.models.describe import describe, input_setting
    from robustbench_med.registry import MODELS
    from robustbench_med.report.paper_claims import SIZES

    name = MODELS.resolve(model)
    setting = input_setting(name, dataset=dataset, classes=classes, channels=channels,
                            image_size=image_size)
    facts = describe(name, setting, **parse_key_values(model_option, "--model-option"))
    channels = setting.info.channels
    table = Table(title=f"{name} at {image_size}x{image_size}x{channels}; {setting.label}")
    table.add_column("measure")
    table.add_column("ours", justify="right")
    table.add_column("paper", justify="right")
    claim = SIZES.get(name)
    table.add_row("parameters (M)", f"{facts['params'] / 1e6:.3f}", f"{claim[0]:.1f}" if claim else "")
    table.add_row("  with BN statistics (M, as Keras counts)", f"{facts['params_with_bn_stats'] / 1e6:.3f}", "")
    table.add_row("GFLOPs (1 multiply-add = 2 FLOPs)", f"{facts['gflops']:.3f}", f"{claim[1]:.2f}" if claim else "")
    table.add_row("GMACs", f"{facts['gmacs']:.3f}", "")
    table.add_row("other buffers (normalisation, DCT, random filters)", str(facts["buffers_other"]), "")
    out.print(table)
    out.print(f"[dim]counted: {facts['flop_convention']}[/]")
    out.print(f"[dim]normalisation: {facts['normalisation']}[/]")
