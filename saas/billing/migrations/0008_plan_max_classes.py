import django.core.validators
from django.db import migrations, models

# Classes per uploaded dataset (frozen here: later seed edits must not change this).
VALUES = {"free": 100, "pro": 1000, "enterprise": 5000}


def forwards(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for code, limit in VALUES.items():
        Plan.objects.filter(code=code).update(max_classes=limit)


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0007_billing_gpu_reservations_push_retry"),
    ]

    operations = [
        migrations.AddField(
            model_name="plan",
            name="max_classes",
            field=models.PositiveIntegerField(
                default=100,
                help_text="classes per uploaded dataset (a classifier needs at least 2)",
                validators=[django.core.validators.MinValueValidator(2)],
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
