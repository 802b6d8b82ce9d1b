"""Customer dashboard pages: thin views over the same services and selectors as ``/v1``.

Every page is readable without JavaScript; htmx (from django-htmx) adds live job updates,
in-place "try it" answers and the upload progress bar. Objects are always fetched through the
tenant-scoped selectors with ``request.tenant.organization``, so another tenant's id is a 404.
"""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from saas.apikeys import selectors as key_selectors
from saas.apikeys import services as key_services
from saas.billing import pricing
from saas.billing import selectors as billing_selectors
from saas.billing import services as billing
from saas.billing.models import Plan
from saas.common.actor import Actor, client_ip
from saas.common.errors import DomainError, PayloadTooLarge, ValidationFailed
from saas.datasets import selectors as dataset_selectors
from saas.datasets import services as dataset_services
from saas.datasets.models import Task
from saas.inference import services as inference
from saas.jobs import selectors as job_selectors
from saas.jobs import services as job_services
from saas.metering.selectors import usage_by_meter_and_day
from saas.registry import selectors as model_selectors
from saas.tenancy import selectors as tenancy_selectors
from saas.tenancy import services as tenancy
from saas.tenancy.models import Membership
from saas.tenancy.permissions import Action

from . import charts
from .base import error_page, org_page
from .forms import (
    ApiKeyForm,
    DatasetUploadForm,
    InviteForm,
    RoleForm,
    SignupForm,
    SpendCapForm,
    TrainingForm,
)
from .templatetags.dashboard import meter_label

SAMPLE_ROWS = 12
THUMBNAILS = 24
LIST_LIMIT = 100


def _bound(request) -> dict | None:
    """Form data to bind: the POST (even an empty one, so missing fields are errors) or None."""
    return request.POST if request.method == "POST" else None


def _page(request, template: str, context: dict, status: int = 200):
    return render(request, template, context, status=status)


def _problems(exc: DomainError) -> list[dict]:
    return [e for e in (exc.errors or []) if e.get("message")]


# --- sign-up and invitations ------------------------------------------------------------------


def signup(request):
    """Create a user and an organisation on the free plan (or join one with ``?invitation=``)."""
    if request.user.is_authenticated:
        return redirect("dashboard:home")
    token = request.GET.get("invitation") or request.POST.get("invitation") or ""
    invitation = tenancy.invitation_peek(token=token) if token else None
    form = SignupForm(_bound(request), initial={"email": getattr(invitation, "email", "")})
    if invitation is not None:
        form.fields["organization"].required = False
        form.fields["organization"].widget = form.fields["organization"].hidden_widget()
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if invitation is not None and data["email"].lower() != invitation.email.lower():
            form.add_error("email", f"This invitation is for {invitation.email}.")
        else:
            membership = tenancy.account_signup(
                email=data["email"],
                password=data["password"],
                organization_name=data["organization"] if invitation is None else None,
                invitation_token=token if invitation is not None else None,
                ip=client_ip(request, settings.TRAINYARD_TRUSTED_PROXIES),
            )
            user, org = membership.user, membership.organization
            login(request, user, backend="saas.accounts.backends.EmailBackend")
            request.session["organization_id"] = org.pk
            messages.success(
                request,
                f"Welcome to Trainyard. You joined {org.name}."
                if invitation is not None
                else f"Welcome to Trainyard. {org.name} is ready.",
            )
            return redirect("dashboard:home")
    return _page(
        request,
        "dashboard/auth/signup.html",
        {"form": form, "invitation": invitation, "token": token},
    )


def invitation_accept(request):
    """The emailed invitation link: sign in (or sign up) as the invited email, then accept."""
    token = request.GET.get("token") or request.POST.get("token") or ""
    invitation = tenancy.invitation_peek(token=token)
    if invitation is None:
        return error_page(
            request,
            404,
            "Invitation not found",
            "This invitation is unknown, already used, revoked or expired. Ask for a new one.",
        )
    if request.method == "POST" and request.user.is_authenticated:
        try:
            membership = tenancy.invitation_accept(
                token=token, user=request.user, actor=Actor.for_user(request, request.user)
            )
        except DomainError as exc:
            return error_page(request, exc.status, exc.title, exc.detail)
        request.session["organization_id"] = membership.organization_id
        messages.success(request, f"You joined {membership.organization.name}.")
        return redirect("dashboard:home")
    return _page(
        request,
        "dashboard/auth/invitation.html",
        {
            "invitation": invitation,
            "token": token,
            "email_matches": request.user.is_authenticated
            and request.user.email.lower() == invitation.email.lower(),
        },
    )


@org_page()
@require_POST
def switch_organization(request):
    """Make another of the user's organisations the current one (the API follows it too)."""
    wanted = request.POST.get("organization", "")
    if not any(m.organization_id == wanted for m in request.tenant.memberships):
        return error_page(request, 404, "Not found", "You are not a member of that organisation.")
    request.session["organization_id"] = wanted
    return redirect("dashboard:home")


# --- overview ---------------------------------------------------------------------------------


@org_page()
@require_GET
def home(request):
    """The overview: the getting-started checklist, recent jobs and models, included units."""
    org = request.tenant.organization
    can = request.tenant.can
    datasets = dataset_selectors.dataset_list(organization=org) if can.datasets_read else None
    jobs = job_selectors.training_job_list(organization_id=org.pk) if can.training_read else None
    models = model_selectors.model_list(organization_id=org.pk) if can.training_read else None
    keys = (
        key_selectors.api_key_list(organization_id=org.pk).filter(revoked_at__isnull=True)
        if can.keys_read
        else None
    )
    # (what, done, where, whether this role may do it)
    steps = [
        (
            "Upload a labelled dataset",
            datasets is not None and datasets.exists(),
            "dashboard:dataset_new",
            can.datasets_write,
        ),
        (
            "Train a model",
            jobs is not None and jobs.exists(),
            "dashboard:job_new",
            can.training_write,
        ),
        (
            "Try it in the browser",
            models is not None and models.exists(),
            "dashboard:models",
            can.models_predict,
        ),
        (
            "Create an API key",
            keys is not None and keys.exists(),
            "dashboard:keys",
            can.keys_manage_own,
        ),
    ]
    return _page(
        request,
        "dashboard/home.html",
        {
            "steps": steps,
            "jobs": list(jobs[:5]) if jobs is not None else [],
            "models": list(models[:5]) if models is not None else [],
            "levels": billing.usage_levels(organization=org) if can.usage_read else [],
        },
    )


# --- datasets ---------------------------------------------------------------------------------


@org_page(read=Action.DATASETS_READ)
@require_GET
def datasets(request):
    """The organisation's datasets, newest first (at most ``LIST_LIMIT``)."""
    rows = dataset_selectors.dataset_list(organization=request.tenant.organization)[:LIST_LIMIT]
    return _page(request, "dashboard/datasets/list.html", {"datasets": rows})


def _offending_lines(data: bytes, problems: list[dict]) -> list[dict]:
    """Attach the raw text of each CSV problem's ``line`` (1-based) for display (≤ 200 chars)."""
    wanted = {p["line"] for p in problems if isinstance(p.get("line"), int)}
    if not wanted:
        return problems
    texts: dict[int, str] = {}
    for number, raw in enumerate(io.BytesIO(data), start=1):
        if number in wanted:
            texts[number] = raw.decode("utf-8", "replace").rstrip("\r\n")[:200]
        if number >= max(wanted):
            break
    return [
        {
            **p,
            "message": p["message"].removeprefix(f"line {p.get('line')}: "),
            "text": texts.get(p.get("line")),
        }
        for p in problems
    ]


@org_page(read=Action.DATASETS_WRITE, write=Action.DATASETS_WRITE)
def dataset_new(request):
    """Upload a dataset. Validation problems are listed with the offending rows or files."""
    form = DatasetUploadForm(_bound(request), request.FILES if request.method == "POST" else None)
    problems: list[dict] = []
    summary = ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            upload = data["file"]
            try:
                ds = dataset_services.dataset_create(
                    organization=request.tenant.organization,
                    file=upload,
                    size=upload.size,
                    task=data["task"],
                    name=data["name"] or upload.name or "dataset",
                    text_column=data["text_column"] or "text",
                    label_column=data["label_column"] or "label",
                )
            except (ValidationFailed, PayloadTooLarge) as exc:
                status = exc.status
                summary = exc.detail
                problems = _problems(exc)
                if data["task"] == Task.TEXT_CLASSIFICATION:
                    upload.seek(0)
                    problems = _offending_lines(upload.read(), problems)
            else:
                messages.success(
                    request, f"Dataset “{ds.name}” is ready: {ds.num_examples:,} examples."
                )
                target = reverse("dashboard:dataset", args=[ds.pk])
                if request.htmx:
                    return HttpResponseClientRedirect(target)
                return redirect(target)
        else:
            status = 400
    return _page(
        request,
        "dashboard/datasets/new.html",
        {
            "form": form,
            "problems": problems,
            "summary": summary,
            "max_bytes": settings.TRAINYARD_MAX_UPLOAD_BYTES,
        },
        status=status,
    )


@org_page(read=Action.DATASETS_READ)
@require_GET
def dataset_detail(request, dataset_id: str):
    """One dataset: class balance chart, report, warnings, sample rows or thumbnails, its jobs."""
    ds = dataset_selectors.dataset_get(
        organization=request.tenant.organization, dataset_id=dataset_id
    )
    is_text = ds.task == Task.TEXT_CLASSIFICATION
    samples = (
        dataset_selectors.dataset_sample_rows(dataset=ds, limit=SAMPLE_ROWS) if is_text else []
    )
    thumbs = [
        {"n": i, "label": label, "name": name}
        for i, (name, label) in enumerate(
            dataset_selectors.dataset_sample_images(dataset=ds, limit=THUMBNAILS)
        )
    ]
    jobs = job_selectors.training_job_list(organization_id=ds.organization_id).filter(dataset=ds)
    return _page(
        request,
        "dashboard/datasets/detail.html",
        {
            "ds": ds,
            "is_text": is_text,
            "chart": charts.class_balance(ds.classes),
            "classes": sorted(ds.classes.items(), key=lambda kv: (-kv[1], kv[0])),
            "samples": samples,
            "thumbs": thumbs,
            "jobs": list(jobs[:10]),
        },
    )


@org_page(read=Action.DATASETS_READ)
@require_GET
def dataset_thumbnail(request, dataset_id: str, n: int):
    """A ≤96 px PNG of the ``n``-th sample image of an image dataset."""
    ds = dataset_selectors.dataset_get(
        organization=request.tenant.organization, dataset_id=dataset_id
    )
    png = dataset_selectors.dataset_thumbnail_png(dataset=ds, n=n)
    if png is None:
        return error_page(request, 404, "Not found", "No such sample image.")
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@org_page(write=Action.DATASETS_WRITE)
@require_POST
def dataset_delete(request, dataset_id: str):
    """Delete a dataset (refused with a message while a queued or running job uses it)."""
    ds = dataset_selectors.dataset_get(
        organization=request.tenant.organization, dataset_id=dataset_id
    )
    try:
        dataset_services.dataset_delete(dataset=ds, actor=request.tenant.actor)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("dashboard:dataset", dataset_id=ds.pk)
    messages.success(request, f"Dataset “{ds.name}” deleted.")
    return redirect("dashboard:datasets")


# --- training ---------------------------------------------------------------------------------


@org_page(read=Action.TRAINING_READ)
@require_GET
def jobs(request):
    """Training jobs, newest first, optionally ``?status=``."""
    rows = job_selectors.training_job_list(organization_id=request.tenant.organization.pk)
    status = request.GET.get("status")
    if status in ("queued", "running", "succeeded", "failed", "cancelled"):
        rows = rows.filter(status=status)
    return _page(request, "dashboard/jobs/list.html", {"jobs": rows[:LIST_LIMIT], "status": status})


def _training_form(request, data=None):

    usable = list(
        dataset_selectors.dataset_list(organization=request.tenant.organization)[:LIST_LIMIT]
    )
    initial = {"dataset": request.GET.get("dataset"), "seed": 0}
    form = TrainingForm(data, datasets=usable, initial=initial)
    for name in ("epochs", "batch_size", "learning_rate", "validation_split"):
        form.fields[name].widget.attrs["placeholder"] = "default"
    return form


def _estimate(request, form: TrainingForm) -> tuple[dict | None, list[dict]]:
    """The dry-run estimate for a valid form, or ``(None, problems)``."""
    data = form.cleaned_data
    dataset = form.datasets.get(data["dataset"])
    try:
        return (
            job_services.training_job_estimate(
                organization=request.tenant.organization,
                dataset=dataset,
                base_model=data.get("base_model") or None,
                hyperparameters=form.hyperparameters(),
            ),
            [],
        )
    except DomainError as exc:
        return None, _problems(exc) or [{"field": None, "message": exc.detail}]


@org_page(read=Action.TRAINING_WRITE, write=Action.TRAINING_WRITE)
def job_new(request):
    """Start a training job; the estimated cost is shown before starting (and live with htmx)."""
    form = _training_form(request, _bound(request))
    estimate, problems = None, []
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = job_services.training_job_create(
                    organization=request.tenant.organization,
                    dataset=form.datasets[data["dataset"]],
                    base_model=data.get("base_model") or None,
                    hyperparameters=form.hyperparameters(),
                    seed=data.get("seed") or 0,
                )
            except DomainError as exc:
                status = exc.status
                problems = []
                for p in _problems(exc) or [{"field": None, "message": exc.detail}]:
                    name = (p.get("field") or "").removeprefix("hyperparameters.")
                    if name in form.fields:
                        form.add_error(name, p["message"])
                    else:
                        problems.append(p)
                if not problems:
                    problems = [{"field": None, "message": exc.detail}]
            else:
                messages.success(request, f"Training job {job.pk} queued.")
                return redirect("dashboard:job", job_id=job.pk)
        else:
            status = 400
    elif form.fields["dataset"].choices:
        # Show the default configuration's estimate straight away.
        preset = {"dataset": form.initial.get("dataset") or form.fields["dataset"].choices[0][0]}
        probe = _training_form(request, preset)
        if probe.is_valid():
            estimate, _ = _estimate(request, probe)
    return _page(
        request,
        "dashboard/jobs/new.html",
        {"form": form, "estimate": estimate, "problems": problems, "defaults": _defaults()},
        status=status,
    )


def _defaults() -> dict:
    from saas.contract import hyperparameters as hp

    return {name: values for name, values in hp.DEFAULTS.items()}


@org_page(read=Action.TRAINING_WRITE)
@require_GET
def job_estimate(request):
    """htmx fragment: the estimate for the form's current values."""
    form = _training_form(request, request.GET)
    estimate, problems = (None, [])
    if form.is_valid():
        estimate, problems = _estimate(request, form)
    else:
        problems = [
            {"field": field, "message": " ".join(errs)} for field, errs in form.errors.items()
        ]
    return _page(
        request, "dashboard/jobs/_estimate.html", {"estimate": estimate, "problems": problems}
    )


def _job_context(job) -> dict:
    events = list(job_selectors.training_job_events(job=job))
    epochs = [e.data for e in events if e.type == "epoch"]
    # A job restarted by a new attempt reports epochs again: keep the latest of each epoch.
    by_epoch: dict[int, dict] = {}
    for data in epochs:
        by_epoch[int(data.get("epoch", 0))] = data
    epochs = [by_epoch[k] for k in sorted(by_epoch)]
    total = int(job.hyperparameters.get("epochs") or 1)
    done = job.status == "succeeded"
    percent = 100 if done else min(100, int(job.epoch * 100 / total))
    position, reason = (
        job_selectors.training_job_queue_info(job=job) if job.status == "queued" else (None, None)
    )
    model = (
        model_selectors.model_for_job(organization_id=job.organization_id, job_id=job.pk)
        if done
        else None
    )
    metrics = job.metrics or {}
    cm = metrics.get("confusion_matrix") or {}
    heat = []
    for label, row in zip(cm.get("labels", []), cm.get("matrix", []), strict=False):
        total_row = sum(row) or 1
        heat.append(
            {
                "label": label,
                "cells": [
                    {
                        "value": v,
                        "share": v / total_row,
                        "alpha": round(0.08 + 0.92 * v / total_row, 3),
                    }
                    for v in row
                ],
            }
        )
    return {
        "job": job,
        "events": events[-30:],
        "epochs": epochs,
        "curves": charts.training_curves(epochs),
        "percent": percent,
        "total_epochs": total,
        "queue_position": position,
        "wait_reason": reason,
        "model": model,
        "metrics": metrics,
        "per_class": sorted((metrics.get("per_class") or {}).items()),
        "heat_labels": cm.get("labels", []),
        "heat": heat,
        "live": job.status in ("queued", "running"),
        "validation_examples": sum(
            int(m.get("support", 0)) for m in (metrics.get("per_class") or {}).values()
        ),
        "currency": billing.billing_account_get(
            organization=job.organization
        ).plan.currency.upper(),
    }


@org_page(read=Action.TRAINING_READ)
@require_GET
def job_detail(request, job_id: str):
    """The job page; with htmx it polls itself (``_live.html``) every 2 s until the job ends."""
    job = job_selectors.training_job_get(
        organization_id=request.tenant.organization.pk, job_id=job_id
    )
    context = _job_context(job)
    if request.htmx and request.GET.get("fragment") == "live":
        return _page(request, "dashboard/jobs/_live.html", context)
    return _page(request, "dashboard/jobs/detail.html", context)


@org_page(write=Action.TRAINING_WRITE)
@require_POST
def job_cancel(request, job_id: str):
    """Cancel a queued job now, or ask a running one to stop before its next batch."""
    job = job_selectors.training_job_get(
        organization_id=request.tenant.organization.pk, job_id=job_id
    )
    try:
        job_services.training_job_cancel(job=job, actor=request.tenant.actor)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "Cancellation requested: the job stops before its next batch.")
    return redirect("dashboard:job", job_id=job.pk)


# --- models -----------------------------------------------------------------------------------


@org_page(read=Action.TRAINING_READ)
@require_GET
def models(request):
    """Trained models, newest first."""
    rows = model_selectors.model_list(organization_id=request.tenant.organization.pk)
    return _page(request, "dashboard/models/list.html", {"models": rows[:LIST_LIMIT]})


def _snippets(request, model) -> dict:
    base = request.build_absolute_uri("/").rstrip("/")
    url = f"{base}/v1/models/{model.pk}/predict"
    if model.task == Task.TEXT_CLASSIFICATION:
        curl = (
            f"curl -X POST {url} \\\n"
            '  -H "Authorization: Bearer $TRAINYARD_API_KEY" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            '  -d \'{"inputs": ["I love it, works great", "Broke after a week"]}\''
        )
        python = (
            "import os\nimport requests\n\n"
            "response = requests.post(\n"
            f'    "{url}",\n'
            '    headers={"Authorization": f"Bearer {os.environ[\'TRAINYARD_API_KEY\']}"},\n'
            '    json={"inputs": ["I love it, works great", "Broke after a week"]},\n'
            "    timeout=30,\n)\nresponse.raise_for_status()\n"
            'for p in response.json()["predictions"]:\n'
            '    print(p["label"], round(p["score"], 3))'
        )
    else:
        curl = (
            f"curl -X POST {url} \\\n"
            '  -H "Authorization: Bearer $TRAINYARD_API_KEY" \\\n'
            "  -F files=@photo.png"
        )
        python = (
            "import os\nimport requests\n\n"
            'with open("photo.png", "rb") as fh:\n'
            "    response = requests.post(\n"
            f'        "{url}",\n'
            '        headers={"Authorization": f"Bearer {os.environ[\'TRAINYARD_API_KEY\']}"},\n'
            '        files=[("files", fh)],\n'
            "        timeout=30,\n    )\nresponse.raise_for_status()\n"
            'print(response.json()["predictions"][0])'
        )
    return {"curl": curl, "python": python, "url": url}


def _model_context(request, model) -> dict:
    return {
        "model": model,
        "is_text": model.task == Task.TEXT_CLASSIFICATION,
        "metrics": model.metrics or {},
        "snippets": _snippets(request, model),
    }


@org_page(read=Action.TRAINING_READ)
@require_GET
def model_detail(request, model_id: str):
    """One model: try-it box, metrics, code snippets for this host, SavedModel download."""
    model = model_selectors.model_get(
        organization_id=request.tenant.organization.pk, model_id=model_id
    )
    return _page(request, "dashboard/models/detail.html", _model_context(request, model))


@org_page(read=Action.MODELS_PREDICT, write=Action.MODELS_PREDICT)
@require_POST
def model_try(request, model_id: str):
    """Run one text or image through the model (billed as one prediction)."""
    model = model_selectors.model_get(
        organization_id=request.tenant.organization.pk, model_id=model_id
    )
    text = request.POST.get("text", "")
    upload = request.FILES.get("image")
    result, problem, status = None, None, 200
    try:
        if model.task == Task.TEXT_CLASSIFICATION:
            if not text.strip():
                raise ValidationFailed("Type a text to classify.")
            wire = inference.prediction_inputs_validate(model=model, inputs=[text])
        else:
            if upload is None:
                raise ValidationFailed("Choose or drop an image to classify.")
            if upload.size > 10 * 1024 * 1024:
                raise ValidationFailed("The image is over 10 MB.")
            wire = inference.prediction_inputs_validate(
                model=model, inputs=None, files=[upload.read()]
            )
        answer = inference.prediction_create(model=model, inputs=wire)
        pred = answer["predictions"][0]
        result = {
            "label": pred["label"],
            "score": pred["score"],
            "scores": sorted(pred["scores"].items(), key=lambda kv: -kv[1]),
            "inference_ms": answer["usage"].get("inference_ms"),
        }
    except DomainError as exc:
        problem = "; ".join([exc.detail] + [e["message"] for e in _problems(exc)])
        status = exc.status
    context = {**_model_context(request, model), "result": result, "problem": problem, "text": text}
    if request.htmx:
        # A 4xx fragment is still swapped in (htmx-config in base.html).
        return _page(request, "dashboard/models/_prediction.html", context, status=status)
    return _page(request, "dashboard/models/detail.html", context, status=status)


# --- API keys ---------------------------------------------------------------------------------


@org_page(read=Action.KEYS_READ, write=Action.KEYS_MANAGE_OWN)
def keys(request):
    """List keys (developers: their own; admins and owners: all) and create one. The secret is
    in this one response only (never stored, never in a redirect)."""
    org = request.tenant.organization
    mine_only = None if request.tenant.can.keys_manage_all else request.user.pk
    form = ApiKeyForm(_bound(request))
    issued = None
    status = 200
    used = request.session.get("used_key_form_tokens", [])
    if request.method == "POST":
        token = request.POST.get("form_token", "")
        if token and token in used:
            # A reload of the page that showed a new key: never create a second one.
            messages.info(request, "That key was already created; its secret was shown once.")
            return redirect("dashboard:keys")
        if form.is_valid():
            request.session["used_key_form_tokens"] = [*used[-19:], token]
            issued = key_services.api_key_create(
                organization=org,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                created_by=request.user,
                expires_at=form.cleaned_data.get("expires_at"),
                actor=request.tenant.actor,
            )
            form = ApiKeyForm()
        else:
            status = 400
    rows = key_selectors.api_key_list(organization_id=org.pk, created_by_id=mine_only)
    response = _page(
        request,
        "dashboard/keys/list.html",
        {
            "form": form,
            "issued": issued,
            "keys": rows.select_related("created_by")[:LIST_LIMIT],
            "now": timezone.now(),
            "base_url": request.build_absolute_uri("/").rstrip("/"),
            "form_token": get_random_string(24),
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


@org_page(write=Action.KEYS_MANAGE_OWN)
@require_POST
def key_revoke(request, key_id: str):
    """Revoke a key (developers: only their own); its next request gets 401."""
    org = request.tenant.organization
    mine_only = None if request.tenant.can.keys_manage_all else request.user.pk
    key = key_selectors.api_key_get(organization_id=org.pk, key_id=key_id, created_by_id=mine_only)
    key_services.api_key_revoke(api_key=key, actor=request.tenant.actor)
    messages.success(request, f"Key {key.prefix}… revoked; its next request gets 401.")
    return redirect("dashboard:keys")


# --- members ----------------------------------------------------------------------------------


@org_page(read=Action.MEMBERS_READ, write=Action.MEMBERS_MANAGE)
def members(request):
    """Members and their roles; owners and admins also invite and change roles."""
    org = request.tenant.organization
    form = InviteForm(_bound(request))
    roles = Membership.Role.choices
    if request.tenant.role != Membership.Role.OWNER:  # only owners grant ownership
        roles = [(v, label) for v, label in roles if v != Membership.Role.OWNER]
        form.fields["role"].choices = roles
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                issued = tenancy.invitation_create(
                    organization=org,
                    actor_role=request.tenant.role,
                    actor=request.tenant.actor,
                    **form.cleaned_data,
                )
            except DomainError as exc:
                form.add_error("email", exc.detail)
                status = exc.status
            else:
                messages.success(request, f"Invitation emailed to {issued.invitation.email}.")
                return redirect("dashboard:members")
        else:
            status = 400
    can_manage = request.tenant.can.members_manage
    return _page(
        request,
        "dashboard/members/list.html",
        {
            "members": [
                (f"mem_{m.pk}", m)
                for m in tenancy_selectors.membership_list(organization=org).select_related("user")[
                    :500
                ]
            ],
            "invitations": tenancy_selectors.invitation_list(organization=org).filter(
                accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
            )[:LIST_LIMIT]
            if can_manage
            else [],
            "form": form,
            "roles": roles,
        },
        status=status,
    )


@org_page(write=Action.MEMBERS_MANAGE)
@require_POST
def invitation_revoke(request, invitation_id: str):
    """Revoke a pending invitation; its emailed link stops working."""
    inv = tenancy.invitation_revoke(
        organization=request.tenant.organization,
        invitation_id=invitation_id,
        actor=request.tenant.actor,
    )
    messages.success(request, f"Invitation for {inv.email} revoked.")
    return redirect("dashboard:members")


@org_page(write=Action.MEMBERS_MANAGE)
@require_POST
def member_role(request, member_id: str):
    """Change a member's role (owner rules are enforced by the tenancy service)."""
    org = request.tenant.organization
    m = tenancy_selectors.membership_get(organization=org, member_id=member_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role.")
        return redirect("dashboard:members")
    try:
        tenancy.membership_change_role(
            membership=m,
            role=form.cleaned_data["role"],
            actor_role=request.tenant.role,
            actor=request.tenant.actor,
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"{m.user.email} is now {form.cleaned_data['role']}.")
    return redirect("dashboard:members")


@org_page(write=Action.MEMBERS_READ)
@require_POST
def member_remove(request, member_id: str):
    """Remove a member (members.manage), or leave the organisation yourself."""
    org = request.tenant.organization
    m = tenancy_selectors.membership_get(organization=org, member_id=member_id)
    leaving = m.user_id == request.user.pk
    if not leaving and not request.tenant.can.members_manage:
        return error_page(
            request,
            403,
            "Not allowed",
            f"Your role ({request.tenant.role}) does not allow '{Action.MEMBERS_MANAGE}'.",
        )
    try:
        tenancy.membership_remove(
            membership=m, actor_role=request.tenant.role, actor=request.tenant.actor
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("dashboard:members")
    if leaving:
        request.session.pop("organization_id", None)
        messages.success(request, f"You left {org.name}.")
        return redirect("dashboard:home")
    messages.success(request, f"{m.user.email} removed.")
    return redirect("dashboard:members")


# --- usage and billing ------------------------------------------------------------------------


def _usage_charts(org, start: datetime.date, today: datetime.date) -> list[dict]:
    rows = usage_by_meter_and_day(
        organization_id=org.pk,
        since=datetime.datetime.combine(start, datetime.time.min, tzinfo=datetime.UTC),
    )
    days = [
        (start + datetime.timedelta(days=i)).isoformat() for i in range((today - start).days + 1)
    ]
    by_meter: dict[str, dict] = {}
    for r in rows:
        m = by_meter.setdefault(r["meter"], {"unit": r["unit"], "values": dict.fromkeys(days, 0.0)})
        if r["date"] in m["values"]:
            m["values"][r["date"]] += float(r["quantity"])
    out = []
    for meter, m in sorted(by_meter.items()):
        values = [m["values"][d] for d in days]
        out.append(
            {
                "meter": meter,
                "unit": m["unit"],
                "total": Decimal(str(sum(values))).normalize(),
                "svg": charts.usage_per_day(
                    days, {meter: values}, title=f"{meter_label(meter)} per day"
                ),
                "rows": [(d, v) for d, v in zip(days, values, strict=True) if v],
            }
        )
    return out


@org_page(read=Action.USAGE_READ, write=Action.BILLING_MANAGE)
def billing_page(request):
    """Usage by meter and day, this period's charges against included units and the spend cap,
    invoices (HTML/PDF), and plan changes (Stripe Checkout / portal when configured)."""
    org = request.tenant.organization
    account = billing.billing_account_get(organization=org)
    form = SpendCapForm(_bound(request), initial={"monthly_spend_cap": account.monthly_spend_cap})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            billing.billing_account_update(
                organization=org,
                actor=request.tenant.actor,
                monthly_spend_cap=form.cleaned_data["monthly_spend_cap"],
            )
            messages.success(request, "Spend cap saved.")
            return redirect("dashboard:billing")
        status = 400
    today = timezone.now().date()
    start, end = pricing.month_bounds(today)
    computed = billing.period_charges(organization=org, start=start, end=end)
    cap = account.monthly_spend_cap
    contract = pricing.contract_active(organization_id=org.pk, on=start)
    return _page(
        request,
        "dashboard/billing/page.html",
        {
            "account": account,
            "form": form,
            "start": start,
            "end": end - datetime.timedelta(days=1),
            "usage": _usage_charts(org, start, today),
            "levels": billing.usage_levels(organization=org),
            "computed": computed,
            "currency": (contract.currency if contract else account.plan.currency).upper(),
            "contract": contract,
            "cap_percent": min(100, int(computed.total * 100 / cap)) if cap else None,
            "invoices": billing_selectors.invoice_list(organization=org).order_by("-period_start")[
                :24
            ]
            if request.tenant.can.invoices_read
            else [],
            "plans": Plan.objects.filter(contract_based=False).order_by("monthly_fee"),
            "stripe": bool(settings.STRIPE_API_KEY),
        },
        status=status,
    )


@org_page(write=Action.BILLING_MANAGE)
@require_POST
def billing_checkout(request):
    """Redirect to Stripe Checkout for a paid plan (or the customer portal)."""
    from saas.billing import stripe_sync

    org = request.tenant.organization
    try:
        if request.POST.get("portal"):
            url = stripe_sync.portal_session_create(
                account=billing.billing_account_get(organization=org)
            )
        else:
            url = billing.checkout_url(organization=org, plan_code=request.POST.get("plan", ""))
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("dashboard:billing")
    return redirect(url)
