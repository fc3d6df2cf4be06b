# Federation between deployments (issue 16): peers, transfers, their outbox and the nonces seen.

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('ledger', '0016_federation_clearing_accounts'),
        ('members', '0008_relative_contact'),
        ('orgs', '0005_login_guard'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Peer',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('node_id', models.CharField(max_length=64, unique=True)),
                ('name', models.CharField(max_length=200)),
                ('url', models.CharField(max_length=300)),
                ('public_key', models.CharField(max_length=100)),
                ('limit_minutes', models.BigIntegerField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('bank', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='orgs.org')),
                ('clearing_account', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.account')),
            ],
        ),
        migrations.CreateModel(
            name='FederatedTransfer',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('transfer_id', models.UUIDField(default=uuid.uuid4, unique=True)),
                ('direction', models.CharField(choices=[('out', '转出'), ('in', '转入')], max_length=3)),
                ('remote_account', models.CharField(max_length=64)),
                ('remote_name', models.CharField(blank=True, max_length=100)),
                ('minutes', models.BigIntegerField()),
                ('memo', models.CharField(blank=True, max_length=500)),
                ('state', models.CharField(choices=[('pending', '待对方入账'), ('completed', '已完成'), ('refused', '被退回')], default='pending', max_length=10)),
                ('reason', models.CharField(blank=True, max_length=40)),
                ('idem_scope', models.CharField(blank=True, max_length=40)),
                ('idempotency_key', models.CharField(blank=True, max_length=64, null=True)),
                ('fingerprint', models.CharField(blank=True, max_length=64)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('agreed_at', models.DateTimeField()),
                ('completed_at', models.DateTimeField(blank=True, null=True)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('member', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='federated_transfers', to='members.member')),
                ('refund', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.transaction')),
                ('transaction', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.transaction')),
                ('peer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='transfers', to='federation.peer')),
            ],
        ),
        migrations.CreateModel(
            name='SeenNonce',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('nonce', models.CharField(max_length=100)),
                ('seen_at', models.DateTimeField(auto_now_add=True)),
                ('peer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='federation.peer')),
            ],
        ),
        migrations.CreateModel(
            name='Outbox',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField()),
                ('last_error', models.CharField(blank=True, max_length=300)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('transfer', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='outbox', to='federation.federatedtransfer')),
            ],
            options={
                'indexes': [models.Index(condition=models.Q(('delivered_at__isnull', True)), fields=['next_attempt_at'], name='outbox_due')],
            },
        ),
        migrations.AddIndex(
            model_name='federatedtransfer',
            index=models.Index(fields=['peer', 'state', 'agreed_at'], name='federated_transfer_peer_day'),
        ),
        migrations.AddConstraint(
            model_name='federatedtransfer',
            constraint=models.UniqueConstraint(condition=models.Q(('idempotency_key__isnull', False)), fields=('idem_scope', 'idempotency_key'), name='federated_transfer_idempotency_key'),
        ),
        migrations.AddConstraint(
            model_name='seennonce',
            constraint=models.UniqueConstraint(fields=('peer', 'nonce'), name='federation_nonce_once'),
        ),
    ]
