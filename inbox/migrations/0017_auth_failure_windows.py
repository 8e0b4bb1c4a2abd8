"""Failed-authentication windows per client address, unlogged on PostgreSQL like the rate-limit
windows (0008): a count need not survive a crash, and skipping the write-ahead log keeps it cheap."""

from django.db import migrations, models

from core.db.migration_steps import unlogged


class Migration(migrations.Migration):

    dependencies = [
        ('inbox', '0016_message_claimed_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuthFailureWindow',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('address', models.CharField(help_text='an IPv4 address, or an IPv6 /64 network', max_length=64)),
                ('minute', models.BigIntegerField(help_text='Unix time // 60')),
                ('count', models.PositiveIntegerField(default=0)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('address', 'minute'), name='auth_failure_window_unique')],
            },
        ),
        unlogged("inbox", "AuthFailureWindow"),
    ]
