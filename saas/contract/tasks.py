"""Task names and the file formats each task's datasets use."""

from __future__ import annotations

from typing import Final

TEXT: Final = "text-classification"
IMAGE: Final = "image-classification"
TASKS: Final[tuple[str, str]] = (TEXT, IMAGE)

# What an image dataset may hold: the extensions (lower case, with the dot) and the formats
# Pillow must recognise. Upload validation rejects anything else inside a class folder, so the
# runner never meets another kind of file in a validated archive.
IMAGE_EXTENSIONS: Final[tuple[str, ...]] = (".jpg", ".jpeg", ".png")
IMAGE_FORMATS: Final[frozenset[str]] = frozenset({"JPEG", "PNG"})
