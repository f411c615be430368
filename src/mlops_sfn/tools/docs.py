"""Documentation sections generated from their sources, so the reference cannot drift from the code.

Each section sits between `<!-- generated: NAME -->` and `<!-- end: NAME -->` in a page of docs/;
`mlops-sfn generate` rewrites it and `--check` (part of `make lint`) fails when it is stale:
- `item-reference`: every field of the item schema (src/mlops_sfn/core/pipeline_item.schema.json);
- `terraform-reference`: the inputs and outputs of the root module and of each module, read from
  their variables.tf and outputs.tf (formatted by `terraform fmt`, which this reader relies on).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..checkout import ROOT
from ..core.schema import item_schema, resolve
from ..core.stages import OPERATIONS

README = ROOT / "README.md"
DOCS = ROOT / "docs"
MARKER = re.compile(r"(<!-- generated: (?P<name>[a-z-]+) -->\n)(.*?)(<!-- end: (?P=name) -->)", re.DOTALL)


# --- The item schema ------------------------------------------------------------------------------


def _type(node: dict[str, Any]) -> str:
    if "oneOf" in node:
        return " or ".join(_type(alternative) for alternative in node["oneOf"])
    if node.get("type") == "array":
        return f"list of {node.get('items', {}).get('type', 'any')}"
    return str(node.get("type", "any"))


def _allowed(node: dict[str, Any]) -> str:
    if "enum" in node:
        return ", ".join(f"`{json.dumps(value)}`" for value in node["enum"])
    if "x-allowed" in node:
        return str(node["x-allowed"])
    bounds = []
    for key, text in (
        ("minimum", ">= {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "<= {}"),
        ("minLength", "length >= {}"),
        ("maxLength", "length <= {}"),
        ("minItems", "at least {} items"),
        ("maxItems", "at most {} items"),
    ):
        if key in node:
            bounds.append(text.format(node[key]))
    items = node.get("items", {})
    if "x-allowed" in items:
        bounds.append(f"each: {items['x-allowed']}")
    if node.get("minProperties") == node.get("maxProperties") == 1:
        bounds.append("exactly one of its fields")
    return ", ".join(bounds)


def _rows(schema: dict[str, Any], node: dict[str, Any], path: str, rows: list[list[str]]) -> None:
    required = set(node.get("required", []))
    for name, child in node.get("properties", {}).items():
        field = resolve(child)
        full = f"{path}.{name}" if path else name
        description = field.get("description") or child.get("description", "")
        if path == "stages" and not description:
            call = OPERATIONS.get(name)
            description = f"The {name} stage" + (f": SageMaker {call}." if call else ".")
        default = f"`{json.dumps(field['default'])}`" if "default" in field else ""
        rows.append(
            [f"`{full}`", _type(field), "yes" if name in required else "", default, _allowed(field), description]
        )
        settings = next((entry for entry in field.get("oneOf", []) if entry["type"] == "object"), field)
        if settings.get("type") == "object" and "properties" in settings and name != "request":
            _rows(schema, settings, full, rows)


def item_reference() -> str:
    schema = item_schema()
    rows: list[list[str]] = []
    _rows(schema, schema, "", rows)
    header = ["field", "type", "required", "default", "allowed", "meaning"]
    return _table(header, rows)


# --- Terraform modules ----------------------------------------------------------------------------


def _blocks(text: str, kind: str) -> list[tuple[str, str]]:
    """(name, body) of each top-level `kind "name" { ... }` block (closing brace at column 0)."""
    return re.findall(rf'^{kind} "([^"]+)" {{\n(.*?)^}}', text, re.MULTILINE | re.DOTALL)


def _attribute(body: str, name: str) -> str | None:
    """An attribute's expression at the block's first level (it may span lines until the next one)."""
    match = re.search(rf"^  {name}\s*=\s*(.*?)(?=^  [a-z_]+\s*=|^  [a-z_]+ {{|\Z)", body, re.MULTILINE | re.DOTALL)
    if not match:
        return None
    # comment lines between this attribute and the next belong to the code, not to the value
    lines = [line.strip() for line in match.group(1).strip().splitlines()]
    return " ".join(line for line in lines if line and not line.startswith(("#", "//")))


def _text(expression: str | None) -> str:
    if expression is None:
        return ""
    if expression.startswith('"') and expression.endswith('"'):
        return str(json.loads(expression))
    return expression


def module_reference(folder: Path, title: str) -> str:
    inputs, outputs = [], []
    for name, body in _blocks((folder / "variables.tf").read_text(), "variable"):
        default = _attribute(body, "default")
        required = "yes" if default is None else ""
        shown = f"`{default}`" if default is not None else ""
        type_ = f"`{_attribute(body, 'type')}`" if _attribute(body, "type") else ""
        inputs.append([f"`{name}`", type_, required, shown, _text(_attribute(body, "description"))])
    if (folder / "outputs.tf").exists():
        for name, body in _blocks((folder / "outputs.tf").read_text(), "output"):
            outputs.append([f"`{name}`", _text(_attribute(body, "description"))])
    table = _table(["input", "type", "required", "default", "meaning"], inputs) if inputs else "No inputs."
    parts = [f"### {title}", "", table]
    if outputs:
        parts += ["", _table(["output", "meaning"], outputs)]
    return "\n".join(parts)


def terraform_reference() -> str:
    sections = [module_reference(ROOT, "The root module")]
    for folder in sorted(path for path in (ROOT / "modules").iterdir() if (path / "variables.tf").exists()):
        sections.append(module_reference(folder, f"`modules/{folder.name}`"))
    return "\n\n".join(sections)


# --- The pages ------------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[], str]] = {
    "item-reference": item_reference,
    "terraform-reference": terraform_reference,
}


def _table(header: list[str], rows: list[list[str]]) -> str:
    def cell(value: str) -> str:
        return value.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def rewrite(text: str, page: str = "README.md") -> str:
    """The page with every generated section rewritten; a marker naming no section is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in SECTIONS:
            raise ValueError(f"{page}: no generated section named {name!r} (known: {', '.join(SECTIONS)})")
        return f"{match.group(1)}\n{SECTIONS[name]()}\n\n{match.group(4)}"

    return MARKER.sub(replace, text)


def pages() -> dict[Path, bytes]:
    """Each page of the site and the README as generation leaves it (only pages with a marker change)."""
    found = {}
    for path in [README, *sorted(DOCS.rglob("*.md"))]:
        text = path.read_text()
        found[path] = rewrite(text, str(path.relative_to(ROOT))).encode()
    return found
