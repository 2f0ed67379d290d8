"""Re-measure two library choices (docs/design.md, "Libraries we did not take").

croniter vs cronsim on the night clocks go back in New York, and fastjsonschema vs
jsonschema-rs on correctness (`unevaluatedProperties`) and speed. The losers are not our
dependencies, so run it in a scratch venv:

    python3 -m venv /tmp/libcheck
    /tmp/libcheck/bin/pip install croniter cronsim fastjsonschema jsonschema-rs
    /tmp/libcheck/bin/python bench/libraries.py
"""

import time
from datetime import datetime
from importlib.metadata import version
from zoneinfo import ZoneInfo

import croniter
import cronsim
import fastjsonschema
import jsonschema_rs

ny = ZoneInfo("America/New_York")
start = datetime(2026, 10, 31, 12, 0, tzinfo=ny)  # fall back: 2026-11-01 02:00 EDT -> 01:00 EST
it = croniter.croniter("30 1 * * *", start)
c = [it.get_next(datetime) for _ in range(3)]
print("croniter", version("croniter"), [d.isoformat() for d in c])
it2 = cronsim.CronSim("30 1 * * *", start)
c2 = [next(it2) for _ in range(3)]
print("cronsim", version("cronsim"), [d.isoformat() for d in c2])
schema = {
    "type": "object",
    "properties": {"a": {"type": "integer"}},
    "unevaluatedProperties": False,
    "$schema": "https://json-schema.org/draft/2020-12/schema",
}
doc = {"a": 1, "extra": 2}
try:
    fastjsonschema.compile(schema)(doc)
    fj = "valid (wrong)"
except fastjsonschema.JsonSchemaException as e:
    fj = f"invalid: {e}"
print("fastjsonschema", version("fastjsonschema"), fj)
print(
    "jsonschema-rs",
    version("jsonschema-rs"),
    "valid" if jsonschema_rs.validator_for(schema).is_valid(doc) else "invalid (right)",
)
s2 = {
    "type": "object",
    "required": ["order_id"],
    "properties": {
        "order_id": {"type": "integer"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
            },
        },
    },
}
d2 = {"order_id": 42, "items": [{"sku": "x", "qty": 2}] * 10}
f = fastjsonschema.compile(s2)
v = jsonschema_rs.validator_for(s2)
for name, fn in (("fastjsonschema", lambda: f(d2)), ("jsonschema-rs", lambda: v.is_valid(d2))):
    n = 20000
    t = time.perf_counter()
    for _ in range(n):
        fn()
    print(name, f"{(time.perf_counter() - t) / n * 1e6:.2f} us/validation")
