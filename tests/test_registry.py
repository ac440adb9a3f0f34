"""The one registry: lookups, clear errors with the nearest name, entry-point plugins."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from robustbench_med import registry
from robustbench_med.errors import UnknownNameError
from robustbench_med.registry import ATTACKS, DATASETS, DEFENSES, MODELS, Registry


def test_all_paper_datasets_are_registered():
    assert DATASETS.names()[:3] == ["d1", "d2", "d3"]
    assert {f"d{i}" for i in range(1, 21)} == set(DATASETS.names())
    spec = DATASETS.get("d12")
    assert (spec.name, spec.n_classes, spec.n_samples, spec.channels) == ("PneumoniaMNIST", 2, 5856, 1)
    assert DATASETS.get("PneumoniaMNIST") is spec  # the MedMNIST flag is an alias


def test_backbones_are_registered():
    assert {"resnet18", "resnet50", "resnet101", "mobilenetv2"} <= set(MODELS.names())
    assert MODELS.resolve("MNV2") == "mobilenetv2"


def test_unknown_name_lists_names_and_suggests_nearest():
    with pytest.raises(UnknownNameError) as info:
        MODELS.get("resnet19")
    message = str(info.value)
    assert "unknown model 'resnet19'" in message
    assert "did you mean 'resnet18'" in message
    assert "resnet50" in message and "\n" not in message


def test_unknown_name_without_a_near_match_has_no_guess():
    with pytest.raises(UnknownNameError) as info:
        DATASETS.get("zzzzzz")
    assert "did you mean" not in str(info.value)
    assert "d12" in str(info.value)


def test_entry_point_plugins_are_discovered(monkeypatch):
    def fake_entry_points(group):
        if group == "medrobust.models":
            return [EntryPoint(name="toy_net", value="tests.plugin_objects:toy_model",
                               group="medrobust.models")]
        return []

    MODELS.names()  # built-ins loaded first, as in a real session
    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    monkeypatch.setattr(MODELS, "_loaded", False)
    assert {"toy_net", "resnet18"} <= set(MODELS.names())
    assert MODELS.entry("toy_net").origin == "tests"


def test_broken_plugin_gives_a_clear_error(monkeypatch):
    from robustbench_med.errors import MedrobustError

    monkeypatch.setattr(registry, "entry_points", lambda group: [
        EntryPoint(name="broken", value="no_such_module_xyz:thing", group=group)])
    fresh = Registry("defense", "medrobust.defenses")
    with pytest.raises(MedrobustError, match="could not load defense plugin 'broken'"):
        fresh.names()


def test_every_registry_has_its_group():
    assert [r.group for r in (DATASETS, MODELS, DEFENSES, ATTACKS)] == [
        "medrobust.datasets", "medrobust.models", "medrobust.defenses", "medrobust.attacks"]
