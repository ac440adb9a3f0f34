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


def test_a_broken_plugin_is_reported_once_on_stderr_and_skipped(monkeypatch, capsys):
    monkeypatch.setattr(registry, "entry_points", lambda group: [
        EntryPoint(name="broken", value="no_such_module_xyz:thing", group=group)])
    monkeypatch.setattr(registry, "_REPORTED", set())
    fresh = Registry("defense", "medrobust.defenses")
    fresh.add("working", object(), origin="tests")
    assert fresh.names() == ["working"]  # the rest of the registry still works
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "skipped defense plugin 'broken'" in err and "no_such_module_xyz" in err
    assert Registry("defense", "medrobust.defenses").names() == [] and fresh.names() == ["working"]
    assert capsys.readouterr().err == "", "a broken plugin was reported twice"


def test_a_plugin_named_like_a_built_in_is_an_error_naming_both_packages(monkeypatch):
    from robustbench_med.errors import MedrobustError

    MODELS.names()  # built-ins loaded first, as in a real session
    monkeypatch.setattr(registry, "entry_points", lambda group: [
        EntryPoint(name="resnet18", value="tests.plugin_objects:toy_model", group=group)]
        if group == "medrobust.models" else [])
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    monkeypatch.setattr(MODELS, "_loaded", False)
    with pytest.raises(MedrobustError, match=r"model 'resnet18' from package 'tests' collides with .*"
                                             r"package 'medrobust'"):
        MODELS.names()
    with pytest.raises(MedrobustError, match="collides"):  # every lookup says so, none picks one
        MODELS.get("resnet50")


def test_add_refuses_to_replace_an_entry_unless_asked():
    from robustbench_med.errors import MedrobustError

    fresh = Registry("thing", "medrobust.things")
    fresh.add("alpha", 1, aliases=("a",), origin="one")
    with pytest.raises(MedrobustError, match=r"thing 'alpha' from package 'two' collides with the thing "
                                             r"'alpha' of package 'one'.*replace=True"):
        fresh.add("alpha", 2, origin="two")
    with pytest.raises(MedrobustError, match="collides"):  # an alias is taken too
        fresh.add("beta", 3, aliases=("a",))
    fresh.add("alpha", 2, origin="two", replace=True)
    assert fresh.get("alpha") == 2 and fresh.get("a") == 2


@pytest.mark.parametrize(("kind", "group"), [
    (DATASETS, "medrobust.datasets"), (MODELS, "medrobust.models"), (DEFENSES, "medrobust.defenses"),
    (ATTACKS, "medrobust.attacks")], ids=["datasets", "models", "defenses", "attacks"])
def test_each_registry_discovers_the_plugins_of_its_documented_group_and_no_other(monkeypatch, kind,
                                                                                  group):
    """One installed plugin per documented group (as a plugin's entry_points.txt declares it):
    each registry lists the one of its own group, next to its built-ins, and none of the others."""
    groups = ("medrobust.datasets", "medrobust.models", "medrobust.defenses", "medrobust.attacks")
    installed = {g: EntryPoint(name=f"plugin-{g.split('.')[1]}", value="tests.plugin_objects:toy_model",
                               group=g) for g in groups}
    builtins = set(kind.names())  # loaded first, as in a real session
    monkeypatch.setattr(registry, "entry_points", lambda group: [installed[group]] if group in installed
                        else [])
    monkeypatch.setattr(kind, "_entries", dict(kind._entries))
    monkeypatch.setattr(kind, "_loaded", False)
    names = set(kind.names())
    assert names - builtins == {installed[group].name}
    assert kind.entry(installed[group].name).origin == "tests"


def test_a_plugin_module_registering_a_built_in_name_is_an_error_not_a_skipped_plugin(monkeypatch, capsys):
    """The decorator runs while the entry point's module is imported: its conflict is not an import
    failure to report and skip, but an error naming both packages."""
    from robustbench_med.registry import RegistryConflict

    MODELS.names()  # built-ins loaded first, as in a real session
    monkeypatch.setattr(registry, "entry_points", lambda group: [
        EntryPoint(name="my-resnet", value="tests.plugin_collision", group=group)]
        if group == "medrobust.models" else [])
    monkeypatch.setattr(registry, "_REPORTED", set())
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    monkeypatch.setattr(MODELS, "_aliases", dict(MODELS._aliases))
    monkeypatch.setattr(MODELS, "_loaded", False)
    with pytest.raises(RegistryConflict, match=r"model 'resnet50' from package 'tests' collides with the "
                                               r"model 'resnet50' of package 'medrobust'"):
        MODELS.names()
    assert "skipped" not in capsys.readouterr().err
    assert MODELS._entries["resnet50"].origin == "medrobust"  # the built-in kept, not replaced
