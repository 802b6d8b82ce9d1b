"""The presenters package: each area module's public names are re-exported by
``saas.dashboard.presenters``, so both import paths name the same objects."""

from __future__ import annotations

import importlib
import inspect

import pytest

from saas.dashboard import presenters

AREAS = ["common", "home", "datasets", "jobs", "models", "usage"]


def _public(module) -> set[str]:
    # Public functions and upper-case constants defined in the module itself (not imported).
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (
            (inspect.isfunction(value) and value.__module__ == module.__name__)
            or (name.isupper() and not inspect.ismodule(value))
        )
    }


@pytest.mark.parametrize("area", AREAS)
def test_every_public_name_of_an_area_is_re_exported_as_the_same_object(area):
    module = importlib.import_module(f"saas.dashboard.presenters.{area}")
    names = _public(module)
    assert names, area
    for name in names:
        assert name in presenters.__all__, (area, name)
        assert getattr(presenters, name) is getattr(module, name), (area, name)


def test_the_package_exports_nothing_but_the_areas_names():
    by_area = set().union(
        *(_public(importlib.import_module(f"saas.dashboard.presenters.{a}")) for a in AREAS)
    )
    assert set(presenters.__all__) == by_area
    assert len(presenters.__all__) == len(by_area)  # each name exported once
