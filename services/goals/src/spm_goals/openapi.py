"""Print the goals API's OpenAPI document as JSON: ``python -m spm_goals.openapi > docs/openapi/goals.json``."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from spm_goals.api import create_app
from spm_goals.settings import GoalsSettings


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document of an API built on throwaway SQLite files (the schema does not depend on storage)."""
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(GoalsSettings(data_dir=Path(data_dir), database_url=None))
        try:
            return app.openapi()
        finally:
            app.state.goals.close()


def openapi_json() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(openapi_json())
