"""Write the JSON Schemas of the receipt and bundle formats from their pydantic models.

    python scripts/generate_schemas.py          # rewrite verifier/schemas/*.json
    python scripts/generate_schemas.py --check  # exit 1 if the committed files are stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from verifier.receipt import Bundle, Receipt

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "verifier" / "schemas"


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema document."""
    out = {}
    for name, model in (("receipt-v2.schema.json", Receipt), ("bundle-v2.schema.json", Bundle)):
        schema = model.model_json_schema(by_alias=True, mode="validation")
        out[name] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:microcred-anchor:schema:{name.removesuffix('.schema.json')}",
            **schema,
        }
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, schema in schemas().items():
        path = SCHEMA_DIR / name
        text = render(schema)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"stale schemas: {', '.join(stale)}; run scripts/generate_schemas.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
