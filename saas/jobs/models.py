"""Training jobs, their timeline, and the state machine's statuses."""

from django.conf import settings
from django.db import models

from saas.common.ids import IdFactory
from saas.tenancy.models import TenantModel


class TrainingJob(TenantModel):
    """One training run of a dataset into a model.

    Status moves ``queued → running → succeeded | failed | cancelled`` (or ``queued →
    cancelled``). ``attempt`` counts deliveries that started the job (a worker that died
    mid-job is replaced by a new attempt); ``heartbeat_at`` is refreshed while it trains so a
    redelivered message can tell a live run from a dead one.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    TERMINAL_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.CharField(primary_key=True, max_length=32, default=IdFactory("tj"), editable=False)
    # The reverse name lets datasets ask "is a job using me?" without importing jobs (which
    # depends on datasets): ``Dataset.objects.filter(training_jobs__status__in=...)``.
    dataset = models.ForeignKey(
        "datasets.Dataset", on_delete=models.PROTECT, related_name="training_jobs"
    )
    task = models.CharField(max_length=32)
    base_model = models.CharField(max_length=64)
    hyperparameters = models.JSONField()
    seed = models.IntegerField(default=0)
    device = models.CharField(max_length=8, default="cpu")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    epoch = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(null=True, blank=True)
    misclassified = models.JSONField(default=list, blank=True)
    usage = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The latest per-epoch training checkpoint of the current attempt, in artifact storage:
    # ``{"key", "epoch", "seconds", "attempt"}`` (``seconds``: billable wall seconds of every
    # attempt through that epoch). A new attempt resumes from it; deleted when the job ends.
    checkpoint = models.JSONField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    created_by_key = models.ForeignKey(
        "apikeys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The user behind the request: the signed-in user, or the user who issued the API key.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The failed or cancelled job an operator retried into this one (``training_job_retry``);
    # SET_NULL so that the retry keeps its own history if the original ever goes.
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Computed in SQL by ``saas.jobs.selectors.training_job_list`` (absent on a row read
    # elsewhere): queued jobs ahead on its device queue (None unless queued), the
    # organisation's running jobs, the id of its model, and its plan's running-job limit; its
    # metrics without the per-class parts, and its confusion matrix's number of classes.
    queue_ahead: int | None
    org_running: int
    trained_model_id: str | None
    max_running_jobs: int
    metrics_summary: dict | None
    metrics_classes: int | None

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["status", "device", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class JobEvent(TenantModel):
    """A line of a job's timeline: ``created``, ``started``, ``epoch``, ``succeeded``, …"""

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=32)
    message = models.CharField(max_length=500, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["job", "created_at"])]
