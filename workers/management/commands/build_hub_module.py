"""``manage.py build_hub_module PATH``: write a local MobileNetV2 feature-vector hub module."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    """Build a randomly initialised MobileNetV2 TF Hub module (see workers.ml.hub_module)."""

    help = (
        "Write a randomly initialised MobileNetV2 feature-vector module (TF Hub Reusable "
        "SavedModel) to PATH, for offline installs and tests; prints PATH."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="output directory")
        parser.add_argument(
            "--image-size", type=int, default=224, help="input height and width (default 224)"
        )
        parser.add_argument(
            "--alpha", type=float, default=1.0, help="width multiplier (default 1.0)"
        )
        parser.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")

    def handle(self, *args, **options):
        # TensorFlow is imported here, not at module level: Django imports every command
        # module to list them, and the web tier must not load TensorFlow.
        from workers.ml.hub_module import build_mobilenet_v2_feature_vector

        try:
            path = build_mobilenet_v2_feature_vector(
                options["path"],
                image_size=options["image_size"],
                alpha=options["alpha"],
                seed=options["seed"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(path)
