"""``BillingAccount.plan`` becomes the one place that says which plan an organisation is on;
tenancy's migration 0003 then drops ``Organization.plan``.

Before the column goes, every organisation must have its account, on the plan its
``Organization.plan`` named when it has none (as migration 0003 did). Where both exist and
disagree, the account's plan is kept: it is the one invoices were priced on and Stripe's
webhooks kept up to date, and every code path that changed a plan changed both.
"""

from django.db import migrations

from saas.billing.seed import seed


def forwards(apps, schema_editor):
    Organization = apps.get_model("tenancy", "Organization")
    Plan = apps.get_model("billing", "Plan")
    BillingAccount = apps.get_model("billing", "BillingAccount")
    if not Plan.objects.exists():
        seed(Plan, apps.get_model("billing", "PlanPrice"), apps.get_model("billing", "RateCard"))
    plans = {p.code: p for p in Plan.objects.all()}
    # Historical managers are plain managers, so this reads across tenants as it must.
    have = set(BillingAccount.objects.values_list("organization_id", flat=True))
    BillingAccount.objects.bulk_create(
        [
            BillingAccount(organization_id=org.pk, plan=plans.get(org.plan, plans["free"]))
            for org in Organization.objects.exclude(pk__in=have)
        ]
    )


def backwards(apps, schema_editor):
    """Refill ``Organization.plan`` (re-added by reversing tenancy 0003) from the accounts."""
    Organization = apps.get_model("tenancy", "Organization")
    BillingAccount = apps.get_model("billing", "BillingAccount")
    for org_id, code in BillingAccount.objects.values_list("organization_id", "plan__code"):
        Organization.objects.filter(pk=org_id).update(plan=code)


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_plan_limits"), ("tenancy", "0002_invitation_auditevent")]
    operations = [migrations.RunPython(forwards, backwards)]
