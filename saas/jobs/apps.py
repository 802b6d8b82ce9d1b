from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "saas.jobs"
    label = "jobs"

    def ready(self) -> None:
        # Receivers import models, which may only be imported once the registry is ready.
        from saas.datasets.signals import dataset_deleted

        from .receivers import dataset_deleted as forget_dataset_examples

        dataset_deleted.connect(forget_dataset_examples, dispatch_uid="jobs.dataset_deleted")
