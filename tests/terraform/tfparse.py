"""Reads terraform/ with python-hcl2 and gives the tests plain Python values.

python-hcl2 wraps every attribute value in a one-element list and keeps blocks as lists
of dicts; `attr` unwraps the former, `blocks_of` walks the latter. Expressions stay as
"${...}" strings, literals as plain values.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
MODULE = TERRAFORM / "modules" / "ecs-blue-green-service"


def tf_files() -> list[Path]:
    return sorted(TERRAFORM.rglob("*.tf"))


def parse_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return hcl2.load(f)


def parse_text(text: str) -> dict[str, Any]:
    return hcl2.load(io.StringIO(text))


def attr(body: dict[str, Any], key: str, default: Any = None) -> Any:
    """An attribute's value, unwrapped from python-hcl2's one-element list."""
    if key not in body:
        return default
    value = body[key]
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def blocks_of(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Nested blocks such as `statement` or `condition` (absent means none)."""
    value = body.get(key, [])
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Block:
    path: Path
    kind: str  # resource, data, variable, output, locals, module
    type: str  # resource/data type, "" otherwise
    name: str
    body: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}: {self.kind} {self.type} {self.name}".replace("  ", " ")


def iter_blocks(paths: list[Path] | None = None) -> Iterator[Block]:
    for path in paths if paths is not None else tf_files():
        yield from blocks_in(path, parse_file(path))


def blocks_in(path: Path, doc: dict[str, Any]) -> Iterator[Block]:
    for kind in ("resource", "data"):
        for entry in doc.get(kind, []):
            for type_, named in entry.items():
                for name, body in named.items():
                    yield Block(path, kind, type_, name, body)
    for kind in ("variable", "output", "module"):
        for entry in doc.get(kind, []):
            for name, body in entry.items():
                yield Block(path, kind, "", name, body)
    for entry in doc.get("locals", []):
        yield Block(path, "locals", "", "", entry)


def module_locals(directory: Path = MODULE) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in iter_blocks(sorted(directory.glob("*.tf"))):
        if block.kind == "locals":
            merged.update({k: attr(block.body, k) for k in block.body if not k.startswith("__")})
    return merged


def find(kind: str, type_: str, name: str, directory: Path = MODULE) -> Block:
    for block in iter_blocks(sorted(directory.glob("*.tf"))):
        if (block.kind, block.type, block.name) == (kind, type_, name):
            return block
    raise LookupError(f"no {kind} {type_} {name} in {directory}")
