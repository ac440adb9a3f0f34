"""Help texts show every character they are written with: Rich markup must not swallow a bracket."""

from __future__ import annotations

import pytest
import typer
from rich.text import Text

from robustbench_med.cli import main
from robustbench_med.cli.app import app


def _help_texts(command, path: tuple[str, ...] = ("medrobust",)):
    yield path, "command", command.help or ""
    for param in command.params:
        yield path, param.name, getattr(param, "help", None) or ""
    for name, sub in getattr(command, "commands", {}).items():
        yield from _help_texts(sub, (*path, name))


def test_no_help_text_loses_a_bracket_to_rich_markup():
    """A `[word]` in a help string reads as a Rich tag and vanishes unless written `\\[word]`."""
    lost = []
    for path, name, text in _help_texts(typer.main.get_command(app)):
        shown = Text.from_markup(text).plain
        if shown != text.replace("\\[", "["):
            lost.append(f"{' '.join(path)} {name}: {text!r} shows as {shown!r}")
    assert not lost, "\n".join(lost)


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_square_queries_help_shows_the_bracketed_cell_name(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: no wrap inside the name
    monkeypatch.setenv("TERMINAL_WIDTH", "400")
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "--square-queries" in line)
    assert "e.g. square-500, autoattack[square-500])." in line
    assert "\\[" not in out
