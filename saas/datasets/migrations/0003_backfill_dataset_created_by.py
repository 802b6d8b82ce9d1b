"""Datasets created before ``Dataset.created_by`` existed (0002) name only their API key: their
creating user is the user who issued that key, as for new datasets (``dataset_create``).
Reversing is a no-op: 0002's reverse drops the column, and with it what this filled in."""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def forwards(apps, schema_editor):
    Dataset = apps.get_model("datasets", "Dataset")
    ApiKey = apps.get_model("apikeys", "ApiKey")
    # Historical managers are plain managers (the fail-closed one is not serialised), so this
    # updates every tenant's rows as a migration must. Rows that already name a user keep it.
    Dataset.objects.filter(created_by__isnull=True, created_by_key__isnull=False).update(
        created_by=Subquery(
            ApiKey.objects.filter(pk=OuterRef("created_by_key_id")).values("created_by_id")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [("datasets", "0002_dataset_created_by"), ("apikeys", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
