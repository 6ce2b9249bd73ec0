"""`loopml.yaml`, the project file: validated once at the edge (CLI), then passed down frozen.

Sections so far: ``project`` and ``data``. Later parts add theirs (train, gates, serve,
monitor). Unknown keys are errors that name the key, so a typo never passes silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from loopml.errors import InvalidInput

DEFAULT_FILE = "loopml.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectSection(_Section):
    name: str = "default"
    description: str | None = None


class DataSection(_Section):
    dataset: str | None = None
    source: str | None = None
    target: str | None = None
    pii: dict[str, Literal["drop", "hash", "keep"]] = Field(default_factory=dict)
    null_values: list[str] = Field(default_factory=lambda: [""])


class ProjectConfig(_Section):
    project: ProjectSection = Field(default_factory=ProjectSection)
    data: DataSection = Field(default_factory=DataSection)


def load_config(path: str | Path | None = None) -> ProjectConfig | None:
    """Return the project file at ``path`` (default ./loopml.yaml), or None if there is none."""
    from loopml.yamlfile import parse_yaml

    explicit = path is not None
    file = Path(path or DEFAULT_FILE)
    if not file.is_file():
        if explicit:
            raise InvalidInput(f"{file}: no such project file")
        return None
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{file}: not UTF-8 text") from exc
    return parse_yaml(text, ProjectConfig, origin=str(file),
                      shape="a mapping with sections such as project: and data:")
