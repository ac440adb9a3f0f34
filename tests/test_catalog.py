"""``medrobust list``: a static catalog that equals the live registry, read without torch.

The catalog test is what keeps ``robustbench_med/catalog.json`` honest: a built-in added or changed
without ``python -m robustbench_med.catalog --write`` fails here, naming the entries that differ.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from robustbench_med import catalog, registry
from robustbench_med.cli import main
from robustbench_med.registry import MODELS


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_static_catalog_equals_what_the_live_registry_reports():
    stale = catalog.stale_names(catalog.static_catalog(), catalog.live_catalog())
    assert not stale, f"catalog.json is stale for {', '.join(stale)}: run {catalog.WRITE_COMMAND}"


def test_the_catalog_knows_randomness_and_options():
    models = {row["name"]: row for row in catalog.static_catalog()["models"]}
    assert models["robust_mail"]["randomized"] is True and models["mail_rn18"]["randomized"] is False
    assert models["robust_mail-no-rpan"]["randomized"] is False  # its ablation switches RPF and MAN off
    assert {"name": "stem", "type": "str", "default": "imagenet", "required": False} in \
        models["resnet18"]["options"]
    defenses = {row["name"]: row for row in catalog.static_catalog()["defenses"]}
    assert defenses["pni"]["randomized"] is True and defenses["dbn"]["randomized"] is False
    assert {"name": "delay", "type": "int | None", "default": None, "required": False} in \
        defenses["pni"]["options"]


CHECK_IMPORTS = """
import sys
from robustbench_med.cli import main
code = main(sys.argv[1:])
print("HEAVY=" + ",".join(m for m in ("torch", "torchvision", "numpy", "pandas", "PIL") if m in sys.modules),
      file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("args", [
    ["list", "models"], ["list", "datasets", "--grep", "mnist", "--json"],
    ["list", "defenses", "--details", "pni"], ["list", "attacks", "pgd*"],
    ["list", "models", "--family", "mial"], ["--version"]],
    ids=["models", "datasets-json", "defense-details", "attacks-pattern", "bad-family", "version"])
def test_list_answers_without_importing_torch(args):
    done = subprocess.run([sys.executable, "-c", CHECK_IMPORTS, *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode in (0, 2), done.stderr
    assert "HEAVY=\n" in done.stderr, done.stderr


def test_python_m_medrobust_list_models_names_the_models():
    """The entry a user types; its speed (no torch import, above) is measured in benchmarks/, not here."""
    done = subprocess.run([sys.executable, "-m", "robustbench_med", "list", "models"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "robust_mail" in done.stdout and "mail_rn18" in done.stdout, done.stderr


def test_version(capsys):
    from robustbench_med import __version__

    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"medrobust {__version__}"


def test_patterns_filters_and_json(capsys):
    code, out, _ = run_cli(capsys, "list", "models", "mail*", "--json")
    names = [row["name"] for row in json.loads(out)]
    assert code == 0 and names and all(n.startswith("mail") for n in names) and "mail_rn18" in names
    code, out, _ = run_cli(capsys, "list", "models", "mnv2", "--json")  # an alias matches too
    assert [row["name"] for row in json.loads(out)] == ["mobilenetv2"]
    code, out, _ = run_cli(capsys, "list", "models", "--family", "robust_mail", "--deterministic", "--json")
    assert [row["name"] for row in json.loads(out)] == ["robust_mail-no-rpan"]
    code, out, _ = run_cli(capsys, "list", "defenses", "--randomized", "--json")
    assert {row["name"] for row in json.loads(out)} == {"pni", "learn2perturb", "rpf", "ctrw"}
    code, out, _ = run_cli(capsys, "list", "attacks", "--grep", "SURROGATE", "--json")
    assert {row["name"] for row in json.loads(out)} == {"aa-surrogate", "square-surrogate"}
    code, out, _ = run_cli(capsys, "list", "datasets", "d1?", "--json")
    assert [row["name"] for row in json.loads(out)] == [f"d{i}" for i in range(10, 20)]
    code, out, _ = run_cli(capsys, "list", "defenses")
    line = next(row for row in out.splitlines() if " pni " in row)
    assert code == 0 and "yes" in line and "medrobust" in line


def test_nothing_matching_is_said_with_the_nearest_name(capsys):
    code, out, err = run_cli(capsys, "list", "models", "resnt18")
    assert code == 0 and out == "" and "no models match 'resnt18'; did you mean 'resnet18'?" in err
    code, out, _ = run_cli(capsys, "list", "models", "xyz*", "--json")
    assert code == 0 and json.loads(out) == []


def test_details_show_options_with_types_and_defaults(capsys):
    code, out, _ = run_cli(capsys, "list", "defenses", "--details", "PNI")
    assert code == 0 and "--defense-option" in out
    line = next(row for row in out.splitlines() if "alpha_init" in row)
    assert "float" in line and "0.25" in line
    code, out, _ = run_cli(capsys, "list", "models", "--details", "mnv2", "--json")
    record = json.loads(out)
    assert record["name"] == "mobilenetv2" and record["options"] == [] and record["randomized"] is False
    code, out, _ = run_cli(capsys, "list", "attacks", "--details", "pgd-37", "--json")
    assert json.loads(out)["name"] == "pgd"  # any <family>-K names its family
    code, out, _ = run_cli(capsys, "list", "datasets", "--details", "pneumoniamnist", "--json")
    assert json.loads(out)["name"] == "d12"


@pytest.mark.parametrize(("args", "message"), [
    (["list"], "medrobust list needs what to list (allowed: datasets, models, defenses, attacks)"),
    (["list", "modles"], "cannot list 'modles'; did you mean 'models'? (allowed: datasets, models, "
                         "defenses, attacks)"),
    (["list", "models", "--family", "robust"], "unknown model family 'robust'; did you mean "
                                               "'robust_mail'? (allowed: backbone, mail, robust_mail)"),
    (["list", "defenses", "--family", "mail"], "--family filters models only, not defenses"),
    (["list", "attacks", "--randomized"], "--randomized/--deterministic filter models and defenses only"),
    (["list", "models", "--details", "resnt18"], "unknown model 'resnt18'; did you mean 'resnet18'?"),
    (["list", "defenses", "--details", "pin", "--grep", "x"], "--details shows one entry"),
], ids=["no-kind", "kind", "family", "family-kind", "randomized-kind", "details-name", "details-filters"])
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == "" and err.startswith(f"error: {message}") and err.count("\n") == 1, err


def test_without_plugins_the_live_registry_is_not_read(monkeypatch):
    monkeypatch.setattr(MODELS, "_loaded", False)
    monkeypatch.setattr(catalog, "entry_points", lambda group: [])

    def forbidden() -> None:
        raise AssertionError("the live registry was read")

    monkeypatch.setattr(MODELS, "_ensure_loaded", forbidden)
    listing = catalog.records("models")
    assert listing.rows == catalog.static_catalog()["models"] and listing.note == ""


def test_an_installed_plugin_is_listed_from_the_live_registry_and_said_so(monkeypatch, capsys):
    plugin = EntryPoint(name="toy_net", value="tests.plugin_objects:toy_model", group="medrobust.models")
    installed = lambda group: [plugin] if group == "medrobust.models" else []  # noqa: E731
    monkeypatch.setattr(catalog, "entry_points", installed)
    monkeypatch.setattr(registry, "entry_points", installed)
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    monkeypatch.setattr(MODELS, "_loaded", False)
    code, out, err = run_cli(capsys, "list", "models", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0 and "resnet18" in rows and rows["toy_net"]["from"] == "tests"
    assert rows["toy_net"]["randomized"] is False  # built once on a probe input to find out
    assert rows["toy_net"]["options"] == [{"name": "stem", "type": "str", "default": "imagenet",
                                           "required": False}]
    assert "1 models from plugins or this session (tests) were read from the live registry" in err


def test_a_stale_catalog_is_named_entry_by_entry():
    static = catalog.static_catalog()
    edited = {**static, "models": [{**row, "randomized": not row["randomized"]} if row["name"] == "resnet18"
                                   else row for row in static["models"][1:]]}
    assert catalog.stale_names(edited, static) == [f"models/{static['models'][0]['name']}", "models/resnet18"]


def test_the_library_lists_with_the_same_filters():
    import robustbench_med as rm

    assert rm.list_models(family="robust_mail", randomized=False) == ["robust_mail-no-rpan"]
    assert rm.list_models("mnv2") == ["mobilenetv2"]  # aliases match, as in medrobust list
    assert set(rm.list_defenses(randomized=True)) == {"pni", "learn2perturb", "rpf", "ctrw"}
    assert rm.list_attacks("*surrogate") == ["aa-surrogate", "square-surrogate"]
    assert rm.list_attacks(grep="momentum") == ["mim-10"] and rm.list_datasets(grep="pneumonia") == ["d12"]
