"""``manage.py create_api_key SLUG [--name NAME]``: prints the new key alone on stdout."""

from django.core.management.base import BaseCommand, CommandError

from saas.apikeys.services import api_key_create
from saas.common.actor import Actor
from saas.tenancy.models import Organization


class Command(BaseCommand):
    help = "Create an API key with every scope for an organisation; prints the key (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="cli")

    def handle(self, *args, slug, name, **options):
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise CommandError(f"no organisation with slug {slug!r}")
        issued = api_key_create(organization=org, name=name, actor=Actor.system())
        self.stdout.write(issued.secret)
