"""Two PostgreSQL-only indexes for matching (timebank.orders.matching), so that a candidates call reads a few
hundred index entries however many volunteers the bank has:

- the volunteers nearest a point, by KNN (`<->`) on a GiST index of active volunteers' coordinates. The
  expression must stay exactly the one in `NearnessKey`, or PostgreSQL falls back to scanning;
- the active volunteers without a location, by home org.

SQLite has neither and scans, which is fine at its sizes."""

from django.db import migrations

FORWARD = [
    """
    CREATE INDEX IF NOT EXISTS member_volunteer_geo_gist ON members_member
        USING gist (point((longitude)::float8, (latitude)::float8))
        WHERE is_volunteer AND status = 'active' AND latitude IS NOT NULL AND longitude IS NOT NULL
    """,
    """
    CREATE INDEX IF NOT EXISTS member_volunteer_unlocated ON members_member (home_org_id, id)
        WHERE is_volunteer AND status = 'active' AND (latitude IS NULL OR longitude IS NULL)
    """,
]
BACKWARD = [
    "DROP INDEX IF EXISTS member_volunteer_geo_gist",
    "DROP INDEX IF EXISTS member_volunteer_unlocated",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in FORWARD:
            schema_editor.execute(sql)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in BACKWARD:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("members", "0003_certificate_insurancepolicy")]

    operations = [migrations.RunPython(forward, backward)]
