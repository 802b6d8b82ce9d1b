"""The operator admin for organisations, memberships and the audit log, and the admin bases
every app's ``admin.py`` uses.

The admin reads every tenant (on purpose) and changes nothing behind the services' back:
an organisation's status changes through actions that call the tenancy services (audited, the
operator as actor), its plan through billing, roles through the membership services, and the
audit log is read-only. What an operator may still edit here (contract terms) goes through
:class:`TenantModelAdmin`, which audits every save and delete.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import ForeignKey

from saas.common.actor import Actor

from . import services
from .audit import audit_record
from .models import AuditEvent, Membership, Organization, TenantManager


def operator(request) -> Actor:
    """The signed-in operator, as the actor of an admin action."""
    return Actor.for_user(request, request.user)


def admin_audit(request, obj: Any, change: str, *, fields: list[str] | None = None) -> None:
    """Record an operator's admin ``change`` (``created``, ``changed`` or ``deleted``) of the
    tenant-owned ``obj`` as ``admin.<model>.<change>``, the operator as actor, ``fields`` the
    names of the fields the form changed. Call inside the transaction of the change."""
    audit_record(
        organization_id=obj.organization_id,
        action=f"admin.{obj._meta.model_name}.{change}",
        actor=operator(request),
        target_type=str(obj._meta.model_name),
        target_id=str(obj.pk),
        **({"fields": sorted(fields)} if fields is not None else {}),
    )


class TenantModelForm(forms.ModelForm):
    """Model form for tenant-owned models: their unique constraints are checked against every
    tenant's rows, as the database checks them.

    Django validates a unique constraint through the model's default manager, which refuses
    unscoped queries (UnscopedQueryError); this form leaves the constraint's fields out of
    Django's model validation (the form fields still validate choices and foreign keys) and
    runs the same check through ``unscoped_all_tenants()``. Conditional and expression
    constraints are not supported (none exist on tenant-owned models).
    """

    def _unique_field_sets(self) -> list[tuple[str, ...]]:
        """Each set of field names the database keeps unique (the primary key aside)."""
        opts = self._meta.model._meta
        return [
            *((f.name,) for f in opts.concrete_fields if f.unique and not f.primary_key),
            *(tuple(names) for names in opts.unique_together),
            *(tuple(c.fields) for c in opts.total_unique_constraints),
        ]

    # Django's private ModelForm hooks (not in django-stubs): the only places to change what
    # model validation checks.
    def _get_validation_exclusions(self):
        # Keeps Model.validate_unique (unique fields, unique_together) off these fields.
        exclude = super()._get_validation_exclusions()  # type: ignore[misc]
        for names in self._unique_field_sets():
            exclude.update(names)
        return exclude

    def _post_clean(self) -> None:
        # Model.validate_constraints asks each UniqueConstraint to validate, and the constraint
        # takes the default manager before it looks at the exclusions; so for the length of
        # model validation this instance reports its other constraints only (clean() has
        # checked the unique ones).
        instance = self.instance
        checked = {id(c) for c in instance._meta.total_unique_constraints}
        every = instance.get_constraints()
        instance.get_constraints = lambda: [
            (model, [c for c in constraints if id(c) not in checked])
            for model, constraints in every
        ]
        try:
            super()._post_clean()  # type: ignore[misc]
        finally:
            del instance.get_constraints

    def clean(self):
        data = super().clean() or {}
        model = self._meta.model
        for names in self._unique_field_sets():
            if any(n in self.errors for n in names):
                continue  # a field of the constraint is already invalid
            values = {
                n: data[n]
                if n in data
                else getattr(self.instance, model._meta.get_field(n).attname)
                for n in names
            }
            if any(v is None for v in values.values()):
                continue  # NULLs never clash in a unique constraint
            clash = model.objects.unscoped_all_tenants().filter(**values)
            if self.instance.pk is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                labels = ", ".join(str(model._meta.get_field(n).verbose_name) for n in names)
                raise forms.ValidationError(
                    f"A {model._meta.verbose_name} with this {labels} already exists."
                )
        return data


class TenantModelAdmin(admin.ModelAdmin):
    """Admin for tenant-owned models: the operator console sees every tenant (on purpose), and
    every change an operator makes through it is audited in the change's transaction.

    A save is recorded as ``admin.<model>.created`` or ``admin.<model>.changed`` with the names
    of the changed fields, a delete (one, or the bulk action) as ``admin.<model>.deleted``;
    the actor is the operator (:func:`admin_audit`). Inlines of tenant-owned models are not
    supported: Django's inline formsets look rows up through the default manager, which
    refuses unscoped queries; give such rows their own admin page instead.
    """

    form = TenantModelForm

    def get_queryset(self, request):
        return self.model.objects.unscoped_all_tenants()

    def save_model(self, request, obj, form, change) -> None:
        # The admin's change view is already atomic; the block makes "the save and its audit
        # event together" hold for any other caller too.
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            admin_audit(request, obj, "changed" if change else "created", fields=form.changed_data)

    def delete_model(self, request, obj) -> None:
        with transaction.atomic():
            admin_audit(request, obj, "deleted")
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for obj in queryset:
                admin_audit(request, obj, "deleted")
            super().delete_queryset(request, queryset)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """A foreign key to a tenant-owned model (a price's contract) chooses among every
        tenant's rows. ``ForeignKey.formfield`` builds its default queryset from the
        fail-closed default manager before it looks at ``queryset=`` (and raises), so the form
        field is built one level up, from ``RelatedField.formfield``, as ``ForeignKey`` would
        build it otherwise. Only the plain select widget is supported for such keys (no
        ``raw_id_fields``, ``radio_fields`` or autocomplete)."""
        manager = db_field.related_model._default_manager
        if not isinstance(manager, TenantManager):
            return super().formfield_for_foreignkey(db_field, request, **kwargs)
        defaults = {
            "form_class": forms.ModelChoiceField,
            "queryset": manager.unscoped_all_tenants(),
            "to_field_name": db_field.remote_field.field_name,
            "blank": db_field.blank,
        }
        # Skip ForeignKey.formfield (see above) for RelatedField.formfield.
        return super(ForeignKey, db_field).formfield(**{**defaults, **kwargs})  # type: ignore[misc]


# The mixin is always combined with a ModelAdmin; the type checker sees it as one (for
# ``self.model`` and ``self.exclude``), at run time it stays a plain mixin.
if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object


class ReadOnlyAdminMixin(_AdminBase):
    """No add, change or delete from the admin: rows are written by services only (the ledger,
    the audit log, job state). The change page still shows every field."""

    def get_readonly_fields(self, request, obj=None):
        return [
            f.name for f in self.model._meta.concrete_fields if f.name not in (self.exclude or ())
        ]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class MembershipInline(ReadOnlyAdminMixin, admin.TabularInline):
    # Read-only: role changes go through the membership services (owner rules, audit log).
    model = Membership
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Organisations: read-only fields; suspend or reactivate with the actions (audited).

    No add (sign-up and ``create_tenant`` create organisations, audited) and no delete (it
    would cascade into the usage ledger and invoices). The plan is billing's (the billing
    accounts' page shows it and changes it, audited).
    Actions need only the view permission, so they work while the change form is read-only.
    """

    list_display = ("slug", "name", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("slug", "name")
    fields = ("id", "slug", "name", "status", "created_at")
    inlines = [MembershipInline]
    actions = ["suspend", "reactivate"]

    @admin.action(description="Suspend (reads only: no upload, training or prediction)")
    def suspend(self, request, queryset) -> None:
        for org in queryset:
            services.organization_suspend(
                organization=org, actor=operator(request), reason="admin action"
            )
        self.message_user(
            request, f"{queryset.count()} organisation(s) suspended.", messages.SUCCESS
        )

    @admin.action(description="Reactivate")
    def reactivate(self, request, queryset) -> None:
        for org in queryset:
            services.organization_reactivate(
                organization=org, actor=operator(request), reason="admin action"
            )
        self.message_user(
            request, f"{queryset.count()} organisation(s) reactivated.", messages.SUCCESS
        )


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
    list_display = (
        "organization",
        "action",
        "target_id",
        "actor_user",
        "actor_api_key",
        "ip",
        "created_at",
    )
    list_filter = ("action",)
