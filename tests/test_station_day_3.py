"""What a walk-through of a station's day found broken (issue 13), third part: the public About page shows the
rules of the bank the visitor looks at, and the workbench's counters open lists with exactly that many orders."""

from __future__ import annotations

from tests.conftest import World, web_client
from timebank.orgs.actions import do_update_rules
from timebank.orgs.models import Rules

# ---------------------------------------------------------------------------------------------
# The About page: the bank's own rules
# ---------------------------------------------------------------------------------------------


def _about(client: object, query: str = "") -> str:
    response = client.get(f"/about/{query}")  # type: ignore[attr-defined]
    assert response.status_code == 200
    return str(response.content.decode())


def test_the_about_page_shows_the_rules_of_the_bank_looked_at(world: World) -> None:
    root = world.users["superuser"]
    do_update_rules(root, Rules.objects.get(head_office=world.bank), {"goods_share_percent": 70})
    do_update_rules(
        root,
        Rules.objects.get(head_office=world.other_bank),
        {
            "goods_share_percent": 30,
            "settlement_period": "year",
            "multipliers": {"ordinary": 1, "technical": 4, "professional": 3},
        },
    )
    visitor = web_client(None)
    # Several banks: a visitor chooses one (a link to each bank's About page), and then sees its rules.
    chooser = _about(visitor)
    for bank in (world.bank, world.other_bank):
        assert f'href="/about/?bank={bank.pk}"' in chooser and bank.name in chooser
    mine = _about(visitor, f"?bank={world.bank.pk}")
    assert "70%" in mine and "30%" in mine and "每半年结算一次" in mine and world.bank.name in mine
    theirs = _about(visitor, f"?bank={world.other_bank.pk}")
    assert "存 4 小时" in theirs and "每年结算一次" in theirs and world.other_bank.name in theirs
    assert "30%" in theirs and "70%" in theirs  # 30% for goods, 70% kept in reserve
    assert theirs.index("30%") < theirs.index("70%") and mine.index("70%") < mine.index("30%")
    # Any org of a bank names its bank; a logged-in person sees their own bank's rules without choosing.
    assert "存 4 小时" in _about(visitor, f"?bank={world.other_community.pk}")
    assert "存 4 小时" in _about(web_client(world.users["other_bank_staff"]))
    assert "存 4 小时" in _about(web_client(world.users["stranger"]))
    own = _about(web_client(world.users["volunteer"]))
    assert "存 4 小时" not in own and own.index("70%") < own.index("30%")
    # A bank that does not exist, or a word: the chooser, not an error.
    for junk in ("?bank=999999", "?bank=abc", "?bank=-1", "?bank=99999999999999999999"):
        assert f'href="/about/?bank={world.bank.pk}"' in _about(visitor, junk)
