# The federation clearing accounts (issue 16): one per peer node and head office, so the kind leaves the one-per-bank rule.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0015_account_member_no_own_index'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='account',
            name='account_system_kind',
        ),
        migrations.AlterField(
            model_name='account',
            name='kind',
            field=models.CharField(choices=[('earned', '待结算'), ('goods', '可兑换物品'), ('reserve', '储存'), ('issuance', '发行'), ('donation_pool', '捐赠池'), ('goods_redeemed', '已兑换物品'), ('clearing', '跨行清算'), ('federation', '跨节点清算')], max_length=20),
        ),
        migrations.AddConstraint(
            model_name='account',
            constraint=models.UniqueConstraint(condition=models.Q(('member__isnull', True), models.Q(('kind', 'federation'), _negated=True)), fields=('bank', 'kind'), name='account_system_kind'),
        ),
    ]
