"""The documentation: sections generated from the schema and the Terraform files (docs.py), the site's
pages and the README's length."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlops_sfn.core.schema import item_schema
from mlops_sfn.tools import docs


def schema_paths(node: dict, schema: dict, path: str = "") -> set[str]:
    found = set()
    for name, child in node.get("properties", {}).items():
        while "$ref" in child:
            child = schema["$defs"][child["$ref"].rsplit("/", 1)[1]]
        full = f"{path}.{name}" if path else name
        found.add(full)
        # a field that is true or an object with settings: the object's fields too
        child = next((entry for entry in child.get("oneOf", []) if entry["type"] == "object"), child)
        if name != "request":
            found |= schema_paths(child, schema, full)
    return found


def test_the_item_reference_has_a_row_for_every_field_of_the_schema() -> None:
    schema = item_schema()
    rows = {line.split("|")[1].strip().strip("`") for line in docs.item_reference().splitlines()[2:]}
    assert rows == schema_paths(schema, schema)
    assert "| `stages.deploy.smoke_test.body` | string | yes |" in docs.item_reference()
    strategies = '`"all_at_once"`, `"blue_green"`, `"canary"`, `"linear"`, `"rolling"`'
    assert f'| `stages.deploy.strategy` | string |  | `"all_at_once"` | {strategies} |' in (docs.item_reference())


def test_module_inputs_are_read_with_multiline_types_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text(
        'variable "plain" {\n  description = "A plain one."\n  type        = string\n}\n\n'
        'variable "shaped" {\n  description = "Has | a pipe."\n  type = object({\n    a = string\n  })\n'
        '  default = {\n    a = "x"\n  }\n'
        '  validation {\n    condition     = true\n    error_message = "never."\n  }\n}\n'
    )
    (tmp_path / "variables.tf").write_text(
        (tmp_path / "variables.tf").read_text()
        + '\nvariable "commented" {\n  type    = string\n  default = "a"\n\n  # why the default\n'
        '  validation {\n    condition     = true\n    error_message = "never."\n  }\n}\n'
    )
    (tmp_path / "outputs.tf").write_text('output "name" {\n  description = "The name."\n  value       = "x"\n}\n')
    text = docs.module_reference(tmp_path, "sample")
    assert "| `plain` | `string` | yes |  | A plain one. |" in text
    assert '| `shaped` | `object({ a = string })` |  | `{ a = "x" }` | Has \\| a pipe. |' in text
    assert "| `name` | The name. |" in text
    assert '| `commented` | `string` |  | `"a"` |  |' in text  # the comment after the default is not shown


def test_a_stale_section_is_rewritten_and_text_around_it_is_kept() -> None:
    text = "before\n<!-- generated: item-reference -->\nold table\n<!-- end: item-reference -->\nafter\n"
    rewritten = docs.rewrite(text)
    assert rewritten.startswith("before\n<!-- generated: item-reference -->\n\n| field |")
    assert rewritten.endswith("\n\n<!-- end: item-reference -->\nafter\n")
    assert "old table" not in rewritten
    assert docs.rewrite(rewritten) == rewritten


def test_a_marker_naming_no_section_is_an_error() -> None:
    with pytest.raises(ValueError, match="no generated section named 'nothing'"):
        docs.rewrite("<!-- generated: nothing -->\n<!-- end: nothing -->\n")


def test_the_terraform_page_holds_every_module() -> None:
    page = (docs.DOCS / "terraform.md").read_text()
    for folder in (docs.ROOT / "modules").iterdir():
        assert f"### `modules/{folder.name}`" in page


def test_the_readme_keeps_what_a_first_read_needs_and_links_pages_that_exist() -> None:
    readme = docs.README.read_text()
    assert len(readme.splitlines()) <= 300
    assert "make demo" in readme and "make test" in readme
    linked = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert linked and all((docs.ROOT / path).is_file() for path in linked)
    # every page is reachable from the site's nav (mkdocs build --strict in make lint checks the links)
    nav = (docs.ROOT / "mkdocs.yml").read_text()
    assert {path.name for path in docs.DOCS.glob("*.md")} == set(re.findall(r": (\S+\.md)$", nav, re.MULTILINE))
