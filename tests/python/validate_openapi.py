"""Validates tessera's OpenAPI document with openapi-spec-validator (OpenAPI 3.0/3.1 schema
and reference checks).

Environment: OPENAPI_FILE, the path of the document as `GET /openapi.json` served it.
Exits non-zero if the document is invalid.
"""

import json
import os

from openapi_spec_validator import validate

with open(os.environ["OPENAPI_FILE"], encoding="utf-8") as file:
    document = json.load(file)

validate(document)
print(f"openapi {document['openapi']}: {len(document['paths'])} paths valid; checks passed")
