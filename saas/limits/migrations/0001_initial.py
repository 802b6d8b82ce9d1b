# The IdempotencyRecord model moved here from saas.api: state only, the table stays as it is.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("tenancy", "0001_initial"),
        ("api", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="IdempotencyRecord",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("key", models.CharField(max_length=255)),
                        ("route", models.CharField(max_length=255)),
                        ("request_sha256", models.CharField(max_length=64)),
                        ("response_status", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("response_body", models.JSONField(blank=True, null=True)),
                        ("response_headers", models.JSONField(blank=True, default=dict)),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("organization", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenancy.organization")),
                    ],
                    options={
                        "db_table": "api_idempotencyrecord",
                        "constraints": [models.UniqueConstraint(fields=("organization", "route", "key"), name="uniq_idempotency_key")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
