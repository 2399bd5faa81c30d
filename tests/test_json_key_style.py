"""One spelling for the keys of every JSON document the project defines: camelCase. The HTTP
API (as its OpenAPI document describes requests and answers), the published receipt and
bundle schemas, and deployment records. Log lines have a test of their own
(tests/anchor_service/test_json_log_keys.py), and trust files are read by a model that forbids
other keys (verifier/trust.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from anchor_service.api import create_app
from anchor_service.chain import Deployment
from anchor_service.settings import ServiceSettings

ROOT = Path(__file__).parents[1]
_SNAKE = re.compile(r"[a-z0-9]_[a-z0-9]")


def _property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
            names |= _property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            names |= _property_names(value)
    return names


def test_the_http_api_spells_every_field_in_camel_case(tmp_path: Path) -> None:
    # The OpenAPI document is built from the routes alone: nothing is opened or connected.
    app = create_app(ServiceSettings(rpc_url="http://127.0.0.1:9",
                                     deployment=tmp_path / "deployment.json",
                                     database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}"),
                     run_pipeline=False)
    names = _property_names(app.openapi())
    assert {"blockNumber", "issuerId"} <= names  # the document is there, and camelCase
    assert sorted(name for name in names if _SNAKE.search(name)) == []


def test_the_published_schemas_spell_every_field_in_camel_case() -> None:
    schemas = sorted((ROOT / "verifier" / "schemas").glob("*.json"))
    assert schemas
    for path in schemas:
        names = _property_names(json.loads(path.read_text(encoding="utf-8")))
        assert names, path
        assert sorted(name for name in names if _SNAKE.search(name)) == [], path


def test_a_deployment_record_spells_every_key_in_camel_case() -> None:
    record = Deployment(chain_id=1, registry="0x" + "22" * 20, anchor="0x" + "33" * 20,
                        block_number=0, deployer="0x" + "44" * 20, artifact_hash="0x" + "55" * 32)
    keys = set(json.loads(record.to_json()))
    assert len(keys) == 6
    assert sorted(key for key in keys if _SNAKE.search(key)) == []
