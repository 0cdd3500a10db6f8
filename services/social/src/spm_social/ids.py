"""Shapes of the ids that routes accept in paths and bodies."""

# Goal ids come from the goals service, whose contract bounds only their length (1 to 100
# characters). Control characters are rejected too: no goal id contains one, and PostgreSQL
# rejects text containing NUL, so such an id would fail the query instead of returning 404.
TEXT_ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,100}$"
