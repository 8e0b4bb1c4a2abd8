from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from inbox.models import Org


class Command(BaseCommand):
    help = "Create an org (a Kirim customer)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", help="defaults to the name, slugified")

    def handle(self, *, name, slug, **options):
        slug = slug or slugify(name)
        if not slug:
            raise CommandError("The name has no letters or digits to make a slug from: pass --slug.")
        if Org.objects.filter(slug=slug).exists():
            raise CommandError(f"An org with slug {slug!r} exists already: pass another --slug.")
        org = Org.objects.create(name=name, slug=slug)
        self.stdout.write(f"Created org {org.slug} ({org.external_id}).")
