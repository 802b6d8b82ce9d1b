"""JSON expressions shared by the list reads of jobs and models: PostgreSQL's jsonb operators,
and SQLite's JSON1 functions for a development database."""

from __future__ import annotations

from django.db.models import Func, IntegerField, JSONField

#: The keys of a job's (or model's) ``metrics`` that grow with its classes: a list never reads
#: them (a confusion matrix of 2,000 classes is 4 M cells, ~8 MB).
PER_CLASS_KEYS = ("per_class", "confusion_matrix")


class MetricsSummary(Func):
    """``metrics`` without :data:`PER_CLASS_KEYS` (jsonb's ``-`` operator), computed in the
    database so that the per-class parts never leave it; NULL stays NULL."""

    template = "(%(expressions)s - '{per_class,confusion_matrix}'::text[])"
    output_field = JSONField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler,
            connection,
            template="json_remove(%(expressions)s, '$.per_class', '$.confusion_matrix')",
            **extra_context,
        )


class MatrixClasses(Func):
    """How many labels ``metrics``' confusion matrix has (NULL without one)."""

    template = "jsonb_array_length(%(expressions)s -> 'confusion_matrix' -> 'labels')"
    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler,
            connection,
            template="json_array_length(%(expressions)s, '$.confusion_matrix.labels')",
            **extra_context,
        )
