"""bot.yaml read with the place of every value, and schema errors told as file:line:col.

The YAML is composed into nodes (which know their line and column), turned into plain
values, and checked against ``recheck.config.schema``. ``check`` turns every error
pydantic finds (not only the first) into one ``file:line:col: what; what to do`` line,
found by walking the nodes along the error's path; an unknown key gets the closest
known one. Settings built without a file (``Config(sections=...)``) get errors without
a line.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from recheck.config.errors import ConfigError
from recheck.config.schema import Document
from recheck.config.values import kind

__all__ = ["check", "read_document", "read_yaml"]

_Model = TypeVar("_Model", bound=BaseModel)
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


def read_yaml(text: str, path: Path, loader: type[yaml.SafeLoader]) -> tuple[yaml.Node | None, Any]:
    """The document's root node (None when the file holds nothing) and its plain value."""
    reader = _Reader(text, path, loader)
    try:
        root = reader.compose()
        return root, None if root is None else reader.build(root)
    finally:
        reader.loader.dispose()


def read_document(
    text: str, path: Path, loader: type[yaml.SafeLoader]
) -> tuple[Document, dict[str, Any]]:
    """The file checked against the schema, and its plain value ({} when it is empty)."""
    root, data = read_yaml(text, path, loader)
    if root is None:
        return Document(), {}
    if not isinstance(data, dict):
        line, column = root.start_mark.line + 1, root.start_mark.column + 1
        raise ConfigError(
            f"{path}:{line}:{column}: the file must be a mapping of 'key: value' lines, "
            f"found {kind(data)}"
        )
    return check(Document, data, root, str(path)), data


def check(model: type[_Model], data: Any, root: yaml.Node | None, where: str) -> _Model:
    """``data`` checked against ``model``; ConfigError listing every mistake otherwise."""
    try:
        return model.model_validate({} if data is None else data)
    except ValidationError as exc:
        lines = sorted({_message(error, model, root, where) for error in exc.errors()})
        raise ConfigError("\n".join(line for _, line in lines)) from None


def _message(
    error: ErrorDetails, model: type[BaseModel], root: yaml.Node | None, where: str
) -> tuple[tuple[int, int], str]:
    """One error as ((line, column), 'file:line:col: text')."""
    loc = tuple(error["loc"])
    context = error.get("ctx") or {}
    name = _dotted(loc)
    if error["type"] == "extra_forbidden":
        node, text = _locate(root, loc, at_key=True), _unknown_key(model, loc)
    elif error["type"] == "recheck":
        target = (*loc, context["key"]) if "key" in context else loc
        node = _locate(root, target, at_key=bool(context.get("at_key")))
        text = str(context["message"]).replace("{name}", name, 1)
    elif error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        node = _locate(root, loc, at_key=False)
        text = f"{name} must be a mapping of 'key: value' lines, found {kind(error['input'])}"
    else:
        node, text = _locate(root, loc, at_key=False), f"{name}: {error['msg']}"
    if node is None:
        return (0, 0), f"{where}: {text}"
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    return (line, column), f"{where}:{line}:{column}: {text}"


def _unknown_key(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    parent, key = loc[:-1], str(loc[-1])
    known = tuple(_model_at(model, parent).model_fields)
    if not parent:
        what = f"unknown key '{key}'"
    elif isinstance(parent[-1], int):
        what = f"unknown key '{key}' in a {_dotted(parent)}"
    else:
        what = f"unknown key '{_dotted(parent)}.{key}'"
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    advice = f"did you mean '{hint[0]}'?" if hint else f"known keys: {', '.join(known)}"
    return f"{what}; {advice}"


def _dotted(loc: tuple[int | str, ...]) -> str:
    """``('fetch', 'retries')``: fetch.retries; a list item: ``files entry``."""
    if not loc:
        return "the file"
    name = ".".join(part for part in loc if isinstance(part, str))
    return f"{name} entry" if isinstance(loc[-1], int) else name


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The model checking the mapping at ``loc`` (list indexes and channel names stay
    at the item's model)."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is not None:
            model = _inner_model(field.annotation) or model
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _inner_model(argument)
        if found is not None:
            return found
    return None


def _locate(
    root: yaml.Node | None, loc: tuple[int | str, ...], *, at_key: bool
) -> yaml.Node | None:
    """The node at ``loc`` (its key's node when ``at_key``), or the deepest one found."""
    node = root
    for index, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    last = index == len(loc) - 1
                    node = key_node if at_key and last else value_node
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


class _Reader:
    """Composes the YAML and builds plain values node by node, so errors name a line."""

    def __init__(self, text: str, path: Path, loader: type[yaml.SafeLoader]) -> None:
        self.path = path
        self.loader = loader(text)

    def compose(self) -> yaml.Node | None:
        try:
            return self.loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "1:1"
            context = f" ({exc.context})" if exc.context else ""
            raise ConfigError(
                f"{self.path}:{where}: invalid YAML: {exc.problem or 'syntax error'}{context}; "
                "check indentation and quoting"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.path}:1:1: invalid YAML: {exc}; fix the file") from None

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            mapping: dict[str, Any] = {}
            lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                if not isinstance(key, str):
                    self._fail(key_node, f"keys must be names, found {kind(key)}")
                if key in mapping:
                    self._fail(
                        key_node,
                        f"duplicate key '{key}' (first given on line {lines[key]}); keep only one",
                    )
                mapping[key] = self.build(value_node)
                lines[key] = key_node.start_mark.line + 1
            return mapping
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            return [self.build(item) for item in node.value]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else None
            self._fail(node, f"invalid YAML value: {problem or exc}")

    def _fail(self, node: yaml.Node, message: str) -> NoReturn:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        raise ConfigError(f"{self.path}:{line}:{column}: {message}")
