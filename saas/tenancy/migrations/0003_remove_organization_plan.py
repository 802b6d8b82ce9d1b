"""``Organization.plan`` goes: billing's ``BillingAccount.plan`` is the one place that says
which plan an organisation is on.

This depends on a billing migration, although tenancy sits below billing, because the plans
must be copied into the accounts (billing 0005) before the column they are copied from is
dropped; migrations are not imports, so the layer rule (an import rule) still holds.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0002_invitation_auditevent"),
        ("billing", "0005_account_plan_is_the_plan"),
    ]

    operations = [migrations.RemoveField(model_name="organization", name="plan")]
