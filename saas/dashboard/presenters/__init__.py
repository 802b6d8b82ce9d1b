"""Pure presentation for the dashboard pages: plain values in, plain dicts and lists out.

Nothing here queries the database, reads a request or renders HTML, so every function can be
tested without a database and a view is left with "read, write, present, render". The SVG
charts are drawn by :mod:`saas.dashboard.charts` from the series these functions return.

One module per area: :mod:`.common` (problems, form errors, counts), :mod:`.home`,
:mod:`.datasets`, :mod:`.jobs`, :mod:`.models` (snippets and try-it) and :mod:`.usage`. The
views import from the area modules; every public name is re-exported here as well, so
``saas.dashboard.presenters.<name>`` keeps working.
"""

from __future__ import annotations

from .common import count, form_problems, problem_list, split_field_problems
from .datasets import OFFENDING_LINE_CHARS, class_rows, offending_lines, thumbnails
from .home import getting_started_steps
from .jobs import (
    HEAT_MAX_CLASSES,
    LIVE_STATUSES,
    PER_CLASS_MAX_ROWS,
    TIMELINE_EVENTS,
    confusion_heat,
    confusion_top,
    job_context,
    job_progress,
    latest_epochs,
)
from .models import prediction_result, snippets
from .usage import cap_percent, days_between, quantity_total, usage_series

__all__ = [
    "HEAT_MAX_CLASSES",
    "LIVE_STATUSES",
    "OFFENDING_LINE_CHARS",
    "PER_CLASS_MAX_ROWS",
    "TIMELINE_EVENTS",
    "cap_percent",
    "class_rows",
    "confusion_heat",
    "confusion_top",
    "count",
    "days_between",
    "form_problems",
    "getting_started_steps",
    "job_context",
    "job_progress",
    "latest_epochs",
    "offending_lines",
    "prediction_result",
    "problem_list",
    "quantity_total",
    "snippets",
    "split_field_problems",
    "thumbnails",
    "usage_series",
]
