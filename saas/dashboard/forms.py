"""Dashboard forms (Django forms: they keep the user's input and show errors by field)."""

from __future__ import annotations

from typing import cast

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.utils import timezone
from django.utils.text import slugify

from saas.apikeys.models import SCOPES
from saas.contract import HYPERPARAMETERS, Hyperparameter
from saas.datasets.models import Task
from saas.jobs import hyperparameters as hp
from saas.tenancy.models import Membership


class SignupForm(forms.Form):
    """A new person and their organisation (they become its owner, on the free plan)."""

    email = forms.EmailField(
        label="Work email", widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters; not only digits, not a common password.",
    )
    organization = forms.CharField(
        label="Organisation name",
        max_length=200,
        help_text="Your company or team. You can invite colleagues later.",
    )

    def clean_email(self):
        # Whether the address has an account is not said here: the sign-up answers the same
        # for both and emails the address (saas.tenancy.services.account_signup_request).
        return self.cleaned_data["email"].strip()

    def clean_organization(self):
        name = self.cleaned_data["organization"].strip()
        if not name and not self.fields["organization"].required:
            return name  # joining an organisation by invitation
        if not slugify(name):
            raise forms.ValidationError("Use at least one letter or digit.")
        return name

    def clean(self):
        super().clean()
        data = self.cleaned_data  # what Form.clean returns (the stubs say it may be None)
        if data.get("password") and data.get("email"):
            user = get_user_model()(username=data["email"], email=data["email"])
            try:
                password_validation.validate_password(data["password"], user)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


class DatasetUploadForm(forms.Form):
    file = forms.FileField(
        label="File",
        help_text="Text: a CSV with a header row, one example per row. "
        "Images: a ZIP with one folder per class.",
    )
    task = forms.ChoiceField(
        label="Task",
        choices=[
            (Task.TEXT_CLASSIFICATION, "Text classification (CSV)"),
            (Task.IMAGE_CLASSIFICATION, "Image classification (ZIP of class folders)"),
        ],
    )
    name = forms.CharField(
        label="Name", max_length=200, required=False, help_text="Defaults to the file name."
    )
    text_column = forms.CharField(
        label="Text column", max_length=200, initial="text", required=False
    )
    label_column = forms.CharField(
        label="Label column", max_length=200, initial="label", required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].widget.attrs["data-max-bytes"] = settings.TRAINYARD_MAX_UPLOAD_BYTES

    def clean_file(self):
        f = self.cleaned_data["file"]
        limit = settings.TRAINYARD_MAX_UPLOAD_BYTES
        if f.size > limit:
            raise forms.ValidationError(
                f"The file is {f.size:,} bytes; the limit is {limit:,} bytes."
            )
        return f

    def clean(self):
        super().clean()
        data = self.cleaned_data  # what Form.clean returns (the stubs say it may be None)
        f, task = data.get("file"), data.get("task")
        if f is not None and task == Task.TEXT_CLASSIFICATION:
            f.seek(0)
            if f.read(4) == b"PK\x03\x04":
                self.add_error(
                    "task", "This file is a ZIP archive: choose Image classification for images."
                )
            f.seek(0)
        return data


def _number_field(h: Hyperparameter, label: str) -> forms.Field:
    """A form field with the contract's type, bounds and help (so the form cannot drift)."""
    if h.type is int:
        # The contract's bounds are ``float | None``; an integer hyperparameter's are integers.
        return forms.IntegerField(
            label=label,
            required=False,
            min_value=None if h.minimum is None else int(h.minimum),
            max_value=None if h.maximum is None else int(h.maximum),
            help_text=h.help_text() + ".",
        )
    return forms.FloatField(
        label=label,
        required=False,
        min_value=h.minimum,
        max_value=h.maximum,
        help_text=h.help_text() + ".",
    )


#: The hyperparameters the training form offers as number fields: the contract's core numeric
#: ones (``core=True``: epochs, batch size, learning rate, validation split). ``fine_tune``, the
#: core bool, is the form's checkbox; the others (dropout, schedule, sizes) are set through the API.
CORE_NUMBER_HYPERPARAMETERS: tuple[str, ...] = tuple(
    name for name, h in HYPERPARAMETERS.items() if h.core and h.type in (int, float)
)


class TrainingForm(forms.Form):
    """A training job: dataset, base model and hyperparameters (blank = the base model's default).

    The hyperparameter fields are the contract's core ones (:mod:`saas.contract.hyperparameters`):
    one number field per name in :data:`CORE_NUMBER_HYPERPARAMETERS` (added below the class,
    since their names come from the contract), plus the ``fine_tune`` checkbox.
    """

    HYPERPARAMETER_FIELDS = CORE_NUMBER_HYPERPARAMETERS
    field_order = ["dataset", "base_model", *CORE_NUMBER_HYPERPARAMETERS, "fine_tune", "seed"]

    dataset = forms.ChoiceField(label="Dataset")
    base_model = forms.ChoiceField(
        label="Base model",
        required=False,
        help_text="Text: a bag-of-embeddings classifier trained from scratch. Images: a small "
        "CNN trained from scratch, or a TF Hub backbone with a new classification head.",
    )
    fine_tune = forms.BooleanField(
        label="Fine-tune the backbone",
        required=False,
        help_text=HYPERPARAMETERS["fine_tune"].help + ".",
    )
    seed = forms.IntegerField(
        label="Seed", required=False, min_value=0, max_value=2**31 - 1, initial=0
    )

    def __init__(self, *args, datasets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.datasets = {d.pk: d for d in datasets}
        # Declared as ChoiceFields above; ``fields`` is typed as plain Fields.
        cast(forms.ChoiceField, self.fields["dataset"]).choices = [
            (d.pk, f"{d.name} · {d.task.split('-')[0]} · {d.num_examples:,} examples")
            for d in datasets
        ]
        cast(forms.ChoiceField, self.fields["base_model"]).choices = [
            ("", "Default for the dataset's task"),
            ("Text datasets", [(m, m) for m in hp.base_models_for(Task.TEXT_CLASSIFICATION)]),
            (
                "Image datasets",
                [(m, m) for m in hp.base_models_for(Task.IMAGE_CLASSIFICATION)],
            ),
        ]

    @property
    def hyperparameter_fields(self) -> list[forms.BoundField]:
        """The bound number fields of :data:`CORE_NUMBER_HYPERPARAMETERS`, in the contract's order
        (the template renders them in a loop)."""
        return [self[name] for name in self.HYPERPARAMETER_FIELDS]

    def hyperparameters(self) -> dict:
        """The hyperparameters the user set (defaults are filled in by the service)."""
        data = self.cleaned_data
        out = {
            name: data[name] for name in self.HYPERPARAMETER_FIELDS if data.get(name) is not None
        }
        if data.get("fine_tune"):
            out["fine_tune"] = True
        return out


# Declarative fields are collected from the class body; these names come from the contract, so
# they join ``base_fields`` here (``field_order`` above places them). Labels: "Batch size".
for _name in CORE_NUMBER_HYPERPARAMETERS:
    TrainingForm.base_fields[_name] = _number_field(
        HYPERPARAMETERS[_name], _name.replace("_", " ").capitalize()
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=200, help_text="Where it is used, e.g. “production backend”."
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=[(s, s) for s in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        initial=list(SCOPES),
        help_text="What the key may do. It can never do more than your own role allows.",
    )
    expires_at = forms.DateTimeField(
        label="Expires",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional (UTC). Leave empty for a key that does not expire.",
    )

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("Choose a time in the future (UTC).")
        return value


class SignupConfirmForm(forms.Form):
    """The second step of a sign-up: the password chosen at sign-up, with the emailed link."""

    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="The password you chose when you signed up.",
    )


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email")
    role = forms.ChoiceField(label="Role", choices=Membership.Role.choices, initial="developer")


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Membership.Role.choices)


class SpendCapForm(forms.Form):
    monthly_spend_cap = forms.DecimalField(
        label="Monthly spend cap",
        required=False,
        min_value=0,
        max_digits=14,
        decimal_places=2,
        help_text="Usage is refused (HTTP 402) once this month's charges would pass it. "
        "Empty = no cap.",
    )
