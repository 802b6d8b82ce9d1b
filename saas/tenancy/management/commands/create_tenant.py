"""``manage.py create_tenant SLUG --name NAME --owner-email EMAIL [--plan PLAN]``."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError

from saas.common.actor import Actor
from saas.common.errors import ValidationFailed
from saas.tenancy.services import organization_create


class Command(BaseCommand):
    help = "Create an organisation (tenant) with an owner; prints the organisation id."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="lowercase letters, digits, hyphens and underscores")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument(
            "--plan", default="free", help="a plan's code (seeded: free, pro, enterprise)"
        )

    def handle(self, *args, slug, name, owner_email, plan, **options):
        try:
            validate_slug(slug)
            if slug != slug.lower():
                raise ValidationError("use lowercase")
        except ValidationError as exc:
            raise CommandError(f"invalid slug {slug!r}: {' '.join(exc.messages)}") from None
        if not name.strip():
            raise CommandError("--name must not be empty")
        try:
            validate_email(owner_email)
        except ValidationError:
            raise CommandError(f"invalid --owner-email {owner_email!r}") from None
        try:
            org = organization_create(
                slug=slug,
                name=name.strip(),
                owner_email=owner_email,
                plan=plan,
                actor=Actor.system(),  # an operator at the console
            )
        except IntegrityError:
            raise CommandError(f"an organisation with slug {slug!r} already exists") from None
        except ValidationFailed as exc:  # billing knows the plans; tenancy sits below it
            reasons = "; ".join(e["message"] for e in exc.errors) or exc.detail
            raise CommandError(f"unknown plan {plan!r}: {reasons}") from None
        self.stdout.write(org.pk)
