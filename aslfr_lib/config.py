"""Stage configs: frozen dataclasses whose field names are the notebook parameters and CLI flags.

A field's help lives in its metadata (``param(128, "frames after resizing")``); ``add_arguments``
turns the fields into ``--flags`` and ``from_args`` builds the dataclass back, so a stage has one
definition of its settings for the command line, the notebooks and the YAML configs.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def param(default: Any, help: str, **kwargs: Any) -> Any:  # noqa: A002 - mirrors argparse
    """A dataclass field with a help text (shown by ``--help`` and in notebook parameter cells)."""
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> ``int``; other annotations unchanged."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(
    parser: argparse.ArgumentParser, cls: type, required: tuple[str, ...] = ()
) -> None:
    """Add one ``--flag`` per field of dataclass ``cls`` (booleans get ``--x/--no-x``)."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = _base_type(hints[field.name])
        help_text = field.metadata.get("help", "")
        default = field.default
        if kind is bool:
            parser.add_argument(
                _flag(field.name),
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
            continue
        origin = typing.get_origin(kind)
        if origin in (list, tuple):
            (item,) = {a for a in typing.get_args(kind) if a is not Ellipsis}
            parser.add_argument(
                _flag(field.name), type=item, nargs="+", default=None, help=help_text
            )
            continue
        parser.add_argument(
            _flag(field.name),
            type=str if kind is Path else kind,
            default=None,
            required=field.name in required,
            help=f"{help_text} (default: {default})",
        )


def from_args(cls: type[T], namespace: argparse.Namespace, **base: Any) -> T:
    """Build ``cls`` from parsed flags; flags left out keep ``base`` values, then the defaults."""
    values = dict(base)
    for field in dataclasses.fields(cls):
        value = getattr(namespace, field.name, None)
        if value is not None:
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return make(cls, values)


def make(cls: type[T], values: dict[str, Any]) -> T:
    """Build ``cls`` from a mapping; unknown keys are an error (a typo must not pass silently)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}; known: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    coerced = {}
    for key, value in values.items():
        kind = _base_type(hints[key])
        if isinstance(value, list) and typing.get_origin(kind) is tuple:
            value = tuple(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        coerced[key] = value
    return cls(**coerced)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON/YAML-friendly dict of a config (paths as strings, tuples as lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def load_yaml(path: str | Path) -> dict[str, Any]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    with open(path, encoding="utf-8") as file:
        data = yaml.safe_load(file) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def stage_parser(cls: type, prog: str, description: str) -> argparse.ArgumentParser:
    """A command's parser: ``--config YAML`` (the stage's fields) plus one flag per field."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--config",
        help=f"YAML file of {cls.__name__} fields, or a pipeline config (flags override)",
    )
    add_arguments(parser, cls)
    return parser


PIPELINE_SECTIONS = ("run", "data", "synth", "preprocess", "train", "export")


def stage_config(cls: type[T], args: argparse.Namespace, section: str) -> T:
    """``cls`` from the YAML of ``--config`` (if given), overridden by the flags given.

    The YAML is either the stage's own fields or a pipeline config (``configs/demo.yaml``), whose
    ``section`` is then used: ``aslfr train --config configs/demo.yaml`` trains the demo's recipe.
    """
    base = load_yaml(args.config) if getattr(args, "config", None) else {}
    if set(base) <= set(PIPELINE_SECTIONS) and set(base) - {"data"}:
        fields = {field.name for field in dataclasses.fields(cls)}
        shared = {key: value for key, value in base.items() if key in fields}  # preprocess: data
        base = {**shared, **(base.get(section) or {})}
    return from_args(cls, args, **base)


def parameter_cell(cls: type) -> str:
    """The papermill parameters cell of a stage: one annotated line per field, with its help.

    ``# fmt: off`` keeps ruff from wrapping lines, which papermill's parser would then miss.
    A test holds every notebook's cell equal to this (regenerate with ``write_parameter_cell``).
    """
    hints = typing.get_type_hints(cls)
    lines = ["# Parameters (papermill: -p NAME VALUE or -f params.yaml).", "# fmt: off"]
    for field in dataclasses.fields(cls):
        base = _base_type(hints[field.name])
        annotation = getattr(base, "__name__", str(base))  # papermill cannot parse "int | None"
        help_text = field.metadata.get("help", "").replace(" = ", ": ").replace("=", ":")
        default = f'"{field.default}"' if isinstance(field.default, str) else repr(field.default)
        lines.append(f"{field.name}: {annotation} = {default}  # {help_text}")
    lines.append("# fmt: on")
    return "\n".join(lines)


def write_parameter_cell(notebook: str | Path, cls: type) -> None:
    """Replace the cell tagged ``parameters`` of ``notebook`` by ``parameter_cell(cls)``."""
    import nbformat

    book = nbformat.read(str(notebook), as_version=4)
    cells = [c for c in book.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{notebook}: expected one cell tagged 'parameters', found {len(cells)}")
    cells[0].source = parameter_cell(cls)
    nbformat.write(book, str(notebook))


def collect(cls: type[T], namespace: dict[str, Any]) -> T:
    """Build ``cls`` from the variables of a notebook's parameters cell (``globals()``)."""
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [name for name in names if name not in namespace]
    if missing:
        raise NameError(f"{cls.__name__}: the parameters cell does not define {missing}")
    return make(cls, {name: namespace[name] for name in names})
