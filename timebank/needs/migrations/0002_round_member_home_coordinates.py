"""Members' home coordinates kept to about 100 m (0.001°), as `members.actions` now stores them.

A data migration only (the column keeps its six decimals). It lives in `needs`, the register of who needs care at
home, rather than in `members`, so that it takes no number in the members' own migration sequence."""

from decimal import Decimal
from typing import Any

from django.db import migrations

STEP = 2000


def round_homes(apps: Any, schema_editor: Any) -> None:
    member_model = apps.get_model("members", "Member")
    precision = Decimal("0.001")
    rows = member_model.objects.filter(latitude__isnull=False) | member_model.objects.filter(longitude__isnull=False)
    last = 0
    while True:
        batch = list(rows.filter(pk__gt=last).order_by("pk").only("pk", "latitude", "longitude")[:STEP])
        if not batch:
            return
        for member in batch:
            if member.latitude is not None:
                member.latitude = Decimal(member.latitude).quantize(precision)
            if member.longitude is not None:
                member.longitude = Decimal(member.longitude).quantize(precision)
        member_model.objects.bulk_update(batch, ["latitude", "longitude"])
        last = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("needs", "0001_initial"),
        ("members", "0006_report_indexes"),
    ]

    # The exact points are not kept anywhere, so there is nothing to restore.
    operations = [migrations.RunPython(round_homes, migrations.RunPython.noop)]
