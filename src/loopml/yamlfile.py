"""Read a YAML document into a pydantic model, with errors that name the file and the key."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from loopml.errors import InvalidInput

Model = TypeVar("Model", bound=BaseModel)
MAX_PROBLEMS = 5


def parse_yaml(text: str, model: type[Model], *, origin: str, shape: str) -> Model:
    """Return ``text`` parsed as YAML and validated as ``model``.

    ``origin`` names the file in errors; ``shape`` says what a valid document looks like.
    Anchors and aliases (``&a``, ``*a``) are refused: a few hundred bytes of nested aliases
    expand to billions of nodes, and a project file has no need for them.

    >>> from pydantic import BaseModel
    >>> class Point(BaseModel):
    ...     x: int
    >>> parse_yaml("x: 3", Point, origin="p.yaml", shape="a mapping with x").x
    3
    """
    data = load_plain_yaml(text, origin=origin)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{origin}: expected {shape}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()[:MAX_PROBLEMS]
        )
        raise InvalidInput(f"{origin}: {problems}") from exc


def load_plain_yaml(text: str, *, origin: str) -> Any:
    """Return the data of one YAML document that uses no anchors or aliases.

    >>> load_plain_yaml("a: [1, on]", origin="x.yaml")
    {'a': [1, True]}
    >>> load_plain_yaml("a: &x 1\\nb: *x", origin="x.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    loopml.errors.InvalidInput: x.yaml line 1: YAML anchors and aliases ... are not allowed ...
    """
    import yaml

    class PlainLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise InvalidInput(
                    f"{origin} line {event.start_mark.line + 1}: YAML anchors and aliases "
                    "(&name, *name, <<: *name) are not allowed in a loopml file; write the "
                    "values out in full")
            return super().compose_node(parent, index)

    loader = PlainLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{origin}: not valid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:
        raise InvalidInput(f"{origin}: YAML nested too deeply; a loopml file needs a few "
                           "levels only") from exc
    finally:
        loader.dispose()
