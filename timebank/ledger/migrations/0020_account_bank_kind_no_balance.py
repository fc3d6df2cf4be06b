"""HOT balance updates of `ledger_account` (issue 17, the settlement's speed).

With `balance_minutes` INCLUDEd in the member accounts' (bank, kind) index (migration 0008, for the risk's sums read
from the index alone) every balance update changed an indexed column, so none could be HOT: each wrote a new entry
into every index of the table, and a settlement updates three accounts per member. The index keeps its key without
the balance; the risk's sums read the table.

An update is HOT only if the new row version fits on its page: a settlement updates every member account once, in
runs of whole pages, so half of each page is left free (PostgreSQL only). A table whose rows are all updated by each
settlement holds that much dead space between vacuums anyway. Rows already written are not moved here (that would
rewrite the table under an exclusive lock): each moves to a page with room at its next non-HOT update.
"""

from django.db import migrations, models

FILLFACTOR = 50


def _fillfactor(sql: str):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("ledger", "0019_transfer_function")]

    operations = [
        migrations.RemoveIndex(model_name="account", name="account_bank_kind_owed"),
        migrations.AddIndex(
            model_name="account",
            index=models.Index(
                condition=models.Q(("member__isnull", False)), fields=["bank", "kind"], name="account_bank_kind"
            ),
        ),
        migrations.RunPython(
            _fillfactor(f"ALTER TABLE ledger_account SET (fillfactor = {FILLFACTOR})"),
            _fillfactor("ALTER TABLE ledger_account RESET (fillfactor)"),
        ),
    ]
