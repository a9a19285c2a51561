"""Hooks of the schema fuzzer (see tests/api/fuzz.rs)."""

import json
import uuid

import schemathesis


@schemathesis.hook
def map_headers(ctx, headers):
    if not headers:
        return headers
    # Every generated request is a new one. One key sent with two different
    # requests is a 422 by design, tested on its own.
    if "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = uuid.uuid4().hex
    # A token names a real write; a generated one cannot (400 by design,
    # tested on its own).
    headers.pop("Consistency-Token", None)
    return headers


@schemathesis.hook
def filter_body(ctx, body):
    # Each SKU once per order: a rule JSON Schema cannot state (a 422 with
    # the SKU, tested on its own).
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        skus = [
            json.dumps(item.get("sku"), sort_keys=True)
            for item in body["items"]
            if isinstance(item, dict)
        ]
        return len(skus) == len(set(skus))
    return True
