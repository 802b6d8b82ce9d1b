"""Every organisation gets its billing account: from now on it is created with the organisation
(``saas.billing.receivers``) instead of on first read, so older organisations need theirs."""

from django.db import migrations

from saas.billing.seed import seed


def forwards(apps, schema_editor):
    Organization = apps.get_model("tenancy", "Organization")
    Plan = apps.get_model("billing", "Plan")
    BillingAccount = apps.get_model("billing", "BillingAccount")
    if not Plan.objects.exists():
        seed(Plan, apps.get_model("billing", "PlanPrice"), apps.get_model("billing", "RateCard"))
    plans = {p.code: p for p in Plan.objects.all()}
    # Historical managers are plain managers (the fail-closed one is not serialised), so this
    # reads across tenants as a migration must.
    have = set(BillingAccount.objects.values_list("organization_id", flat=True))
    BillingAccount.objects.bulk_create(
        [
            BillingAccount(organization_id=org.pk, plan=plans.get(org.plan, plans["free"]))
            for org in Organization.objects.exclude(pk__in=have)
        ]
    )


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_seed_plans"), ("tenancy", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
