"""Read a YAML document into a pydantic model, with errors that name the file and the key."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from loopml.errors import InvalidInput

Model = TypeVar("Model", bound=BaseModel)
MAX_PROBLEMS = 5


def parse_yaml(text: str, model: type[Model], *, origin: str, shape: str) -> Model:
    """Return ``text`` parsed as YAML and validated as ``model``.

    ``origin`` names the file in errors; ``shape`` says what a valid document looks like.

    >>> from pydantic import BaseModel
    >>> class Point(BaseModel):
    ...     x: int
    >>> parse_yaml("x: 3", Point, origin="p.yaml", shape="a mapping with x").x
    3
    """
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{origin}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{origin}: expected {shape}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors()[:MAX_PROBLEMS]
        )
        raise InvalidInput(f"{origin}: {problems}") from exc
