"""The plan limits move from the ``TRAINYARD_PLAN_LIMITS`` setting onto the ``Plan`` rows.

Each seeded plan gets the values the setting held by default; an installation that had set
``TRAINYARD_PLAN_LIMITS`` in its environment keeps its own values (read here once, since the
setting itself is gone). Plans the setting did not name keep the column defaults (free's), as
``plan_limits`` gave unknown plans free's limits.
"""

import json
import os

import django.core.validators
from django.db import migrations, models

# The setting's default when this migration was written (frozen here on purpose: later edits to
# the seed must not change what this migration did).
DEFAULT_LIMITS = {
    "free": {
        "requests_per_key": 120,
        "requests_per_organization": 300,
        "max_running_jobs": 1,
        "max_active_jobs": 10,
    },
    "pro": {
        "requests_per_key": 600,
        "requests_per_organization": 2000,
        "max_running_jobs": 2,
        "max_active_jobs": 50,
    },
    "enterprise": {
        "requests_per_key": 3000,
        "requests_per_organization": 10000,
        "max_running_jobs": 8,
        "max_active_jobs": 500,
    },
}
FIELDS = ("requests_per_key", "requests_per_organization", "max_running_jobs", "max_active_jobs")


def _configured() -> dict:
    raw = os.environ.get("TRAINYARD_PLAN_LIMITS")
    if not raw:
        return DEFAULT_LIMITS
    configured = json.loads(raw)
    # As the setting did: an unknown plan got free's limits, so free must be complete.
    return {code: {**DEFAULT_LIMITS["free"], **values} for code, values in configured.items()}


def forwards(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for code, values in _configured().items():
        Plan.objects.filter(code=code).update(**{f: int(values[f]) for f in FIELDS})


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_billing_accounts_for_existing_orgs")]

    operations = [
        migrations.AddField(
            model_name="plan",
            name="requests_per_key",
            field=models.PositiveIntegerField(
                default=120,
                help_text="per rate-limit window",
                validators=[django.core.validators.MinValueValidator(1)],
            ),
        ),
        migrations.AddField(
            model_name="plan",
            name="requests_per_organization",
            field=models.PositiveIntegerField(
                default=300,
                help_text="per rate-limit window",
                validators=[django.core.validators.MinValueValidator(1)],
            ),
        ),
        migrations.AddField(
            model_name="plan",
            name="max_running_jobs",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="plan",
            name="max_active_jobs",
            field=models.PositiveIntegerField(default=10, help_text="queued or running"),
        ),
        migrations.AddConstraint(
            model_name="plan",
            constraint=models.CheckConstraint(
                condition=models.Q(requests_per_key__gte=1, requests_per_organization__gte=1),
                name="plan_rate_limits_positive",
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
