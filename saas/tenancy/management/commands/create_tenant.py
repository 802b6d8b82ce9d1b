"""``manage.py create_tenant SLUG --name NAME --owner-email EMAIL [--plan PLAN]``."""

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from saas.tenancy.services import organization_create


class Command(BaseCommand):
    help = "Create an organisation (tenant) with an owner; prints the organisation id."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--plan", default="free")

    def handle(self, *args, slug, name, owner_email, plan, **options):
        try:
            org = organization_create(slug=slug, name=name, owner_email=owner_email, plan=plan)
        except IntegrityError:
            raise CommandError(f"an organisation with slug {slug!r} already exists") from None
        self.stdout.write(org.pk)
