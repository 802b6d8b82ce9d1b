"""Seed the plans and the first rate card (operators edit them in the admin afterwards)."""

from django.db import migrations

from saas.billing.seed import seed


def forwards(apps, schema_editor):
    seed(apps.get_model("billing", "Plan"), apps.get_model("billing", "PlanPrice"), apps.get_model("billing", "RateCard"))


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
