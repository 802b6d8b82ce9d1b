"""Datasets in the operator admin (every tenant): read-only, deleted by an audited action.

A dataset's fields are what upload validation found (classes, counts, the report, the stored
file's key and hash), so an edit could only make them lie; a delete must go through
``dataset_delete`` (refused while a job uses the dataset, removes the file, audited).
"""

from django.contrib import admin, messages

from saas.common.errors import Conflict
from saas.tenancy.admin import ReadOnlyAdminMixin, TenantModelAdmin, operator

from .models import Dataset
from .services import dataset_delete


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
    list_display = ("id", "organization", "name", "task", "status", "num_examples", "created_at")
    list_filter = ("status", "task")
    actions = ["delete_datasets"]

    @admin.action(description="Delete (refused while a job uses it; audited)")
    def delete_datasets(self, request, queryset) -> None:
        deleted = 0
        for dataset in queryset.exclude(status=Dataset.Status.DELETED):
            try:
                dataset_delete(dataset=dataset, actor=operator(request))
            except Conflict as exc:
                self.message_user(request, f"{dataset.pk}: {exc.detail}", messages.ERROR)
            else:
                deleted += 1
        self.message_user(request, f"{deleted} dataset(s) deleted.", messages.SUCCESS)
