"""Teach schemathesis the hub's two custom string formats so that "valid" generated data is
really valid (dates not in the future, municipality codes with their check digit). No check is
switched off."""
from datetime import date, timedelta

import schemathesis
from hypothesis import strategies as st


def _with_check_digit(base: str) -> str:
    total = sum(int(d) * w for d, w in zip(base, (6, 5, 4, 3, 2)))
    return base + str((11 - total % 11) % 10)


schemathesis.openapi.format(
    "past-date",
    st.dates(min_value=date(2000, 1, 1), max_value=date.today() - timedelta(days=1)).map(
        date.isoformat
    ),
)
schemathesis.openapi.format(
    "municipality-code",
    st.integers(min_value=1000, max_value=47999).map(lambda n: _with_check_digit(f"{n:05d}")),
)

# NDJSON bodies are text (the schema's type is string): sent as they are, like text/plain.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
