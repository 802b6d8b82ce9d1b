"""The training job state machine: create, start (worker), progress, complete, fail, cancel.

Every transition is a row lock (``select_for_update``) plus a check of the current status, so
a redelivered Celery message, a second worker or a late cancel can never move a job backwards
or record a result twice. By concern:

- :mod:`.create`: what a user does: ``training_job_create`` (and its dry-run estimate),
  ``training_job_cancel``; both take and audit an ``actor``.
- :mod:`.retry`: an operator's retry of a failed or cancelled job (``training_job_retry``): a
  fresh job through ``training_job_create``, audited with the operator's reason.
- :mod:`.start`: a worker takes the job (``training_job_start``, ``JobStart``, ``Deferred``).
- :mod:`.monitor`: while it trains (``JobMonitor``: stop checks, heartbeats, epochs).
- :mod:`.completion`: how it ends (succeeded, stopped, failed) and its usage.
- :mod:`.checkpoints`: per-epoch checkpoints, so a job whose worker died resumes.
- :mod:`.reaper`: jobs whose worker died.

``from saas.jobs import services as jobs; jobs.training_job_create(...)`` keeps working: the
public names are re-exported here.
"""

from .checkpoints import training_job_checkpoint_restore, training_job_checkpoint_save
from .completion import (
    training_job_complete,
    training_job_fail,
    training_job_stopped,
    training_job_time_limited,
)
from .create import TooManyJobs, training_job_cancel, training_job_create, training_job_estimate
from .monitor import JobMonitor
from .reaper import training_jobs_reap_stuck
from .retry import training_job_retry
from .start import (
    Deferred,
    JobStart,
    attempt_workdir,
    defer_countdown,
    remove_workdir,
    training_job_start,
)

__all__ = [
    "Deferred",
    "JobMonitor",
    "JobStart",
    "TooManyJobs",
    "attempt_workdir",
    "defer_countdown",
    "remove_workdir",
    "training_job_cancel",
    "training_job_checkpoint_restore",
    "training_job_checkpoint_save",
    "training_job_complete",
    "training_job_create",
    "training_job_estimate",
    "training_job_fail",
    "training_job_retry",
    "training_job_start",
    "training_job_stopped",
    "training_job_time_limited",
    "training_jobs_reap_stuck",
]
