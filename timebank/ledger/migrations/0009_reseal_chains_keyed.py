"""Re-seal the ledger and audit hash chains under CHAIN_KEY (HMAC), with account owners in the legs.

Each chain is first checked the old (unkeyed) way; one that fails is left as it is and reported, so it
keeps failing `verify` until someone looks and runs `manage.py reseal_chains --force` (see reseal.py).
"""

from typing import Any

from django.db import migrations


def forwards(apps: Any, schema_editor: Any) -> None:
    from timebank.ledger.reseal import reseal_chains

    models = {
        "Transaction": apps.get_model("ledger", "Transaction"),
        "AuditEntry": apps.get_model("audit", "AuditEntry"),
        "ChainHead": apps.get_model("audit", "ChainHead"),
    }
    report = reseal_chains(models=models, using=schema_editor.connection.alias)
    for refused in report.refused:
        print(f"\n  not re-sealed, fails the old check: {refused}")


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0008_report_indexes"),
        ("audit", "0003_chainhead_seal"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
