import pytest

import config
from experiments.registry import SelectionError, _literal_budget_keys, all_tasks, get_task, resolve


def test_presets_and_overrides():
    quick = config.get_preset("quick")
    assert quick.name == "quick" and quick.seeds == 1
    assert config.get_preset("hybrid").seeds >= 3 and config.get_preset("full").seeds >= 3
    tuned = config.get_preset("quick", epochs="5", train_size="none", figure_crop="false")
    assert tuned.epochs == 5 and tuned.train_size is None and tuned.figure_crop is False


@pytest.mark.parametrize("kwargs, message", [
    ({"epoch": 3}, "unknown config key"),          # typo of 'epochs'
    ({"epochs": "three"}, "must be a number"),
    ({"epochs": 0}, "must be positive"),
    ({"figure_crop": "maybe"}, "must be true or false"),
    ({"name": "x"}, "unknown config key"),
])
def test_bad_overrides_are_rejected(kwargs, message):
    with pytest.raises(config.ConfigError, match=message):
        config.get_preset("quick", **kwargs)


def test_unknown_mode_and_env_default(monkeypatch):
    with pytest.raises(config.ConfigError, match="unknown mode"):
        config.get_preset("fast")
    monkeypatch.setenv("DL_MODE", "hybrid")
    assert config.get_preset().name == "hybrid"


def test_parse_overrides():
    assert config.parse_overrides(["epochs=3", " batch_size = 64"]) == {"epochs": "3", "batch_size": "64"}
    with pytest.raises(config.ConfigError):
        config.parse_overrides(["epochs"])


def test_registry_resolves_sections_and_ids_in_order_without_duplicates():
    tasks = resolve(["4.3", "3", "3.1"])
    ids = [t.id for t in tasks]
    assert ids[0] == "4.3"
    assert "3.1" in ids and "3.5" in ids and ids.count("3.1") == 1
    assert all(t.section == "3" for t in tasks[1:])


@pytest.mark.parametrize("bad", ["9.9", "12", "abc", "4.3.1"])
def test_unknown_selectors_raise(bad):
    with pytest.raises(SelectionError):
        resolve([bad])


def test_task_metadata():
    ids = [t.id for t in all_tasks()]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("."))))
    assert len(ids) == len(set(ids))
    t = get_task("4.3")
    assert t.dirname.startswith("4.3_") and " " not in t.dirname


def test_catalogue_ids_of_built_sections_are_registered():
    """Every catalogue id of the sections built so far exists (TASKS.md sections 1-4 and 6)."""
    expected = {f"1.{i}" for i in range(1, 6)} | {f"2.{i}" for i in range(1, 9)} \
        | {f"3.{i}" for i in range(1, 9)} | {f"4.{i}" for i in range(1, 10)} | {f"6.{i}" for i in range(1, 9)}
    have = {t.id for t in all_tasks()}
    assert expected <= have, f"missing: {sorted(expected - have)}"


@pytest.mark.parametrize("task", all_tasks(), ids=lambda t: t.id)
def test_budget_keys_read_from_source_match_the_imported_table(task):
    imported = {key for row in task.load().BUDGET.values() for key in row}
    assert task.budget_keys() == imported


@pytest.mark.parametrize("source, keys", [
    ('BUDGET = {"quick": {"epochs": 2}, "full": {"epochs": 9, "width": 4}}', {"epochs", "width"}),
    ('BUDGET = {m: {"n": 1} for m in ("tiny", "quick")}', {"n"}),
    ('_C = {"lr": 1}\nBUDGET = {"quick": {**_C, "epochs": 2}}', {"lr", "epochs"}),
    ('BUDGET = make_budget()', None),                         # not a literal: the caller imports
    ('BUDGET = {"quick": {**make(), "epochs": 2}}', None),
    ('X = 1', None),
])
def test_literal_budget_keys(source, keys):
    assert _literal_budget_keys(source) == keys


def test_one_short_module_per_task_in_task_order():
    """The layout's size rules: each task in its own t<section>_<n>_ module of at most 300 lines, no
    file in experiments/ over 400, and a section's task files sort in task order."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "experiments"
    files = {}
    for t in all_tasks():
        path = Path(importlib.util.find_spec(t.module).origin)
        section, n = t.id.split(".")
        assert path.name.startswith(f"t{section}_{n}_"), (t.id, path.name)
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 300, (t.id, path.name)
        files.setdefault(path.parent, []).append((tuple(map(int, t.id.split("."))), path.name))
    assert len(files) == 8
    for folder, entries in files.items():
        assert [name for _, name in sorted(entries)] == sorted(name for _, name in entries), folder
    over = [p.name for p in root.rglob("*.py") if len(p.read_text(encoding="utf-8").splitlines()) > 400]
    assert not over


def test_tasks_that_use_torch_declare_one_thread():
    """A task on every core gets cores ÷ N threads under --jobs N, and torch's sums (conv backward, reductions)
    depend on the thread count: 4.3, undeclared, gave 85.90% serially and 86.35% under --jobs 2."""
    import importlib.util
    from pathlib import Path

    on_every_core = [t.id for t in all_tasks() if t.threads != 1
                     and "torch" in Path(importlib.util.find_spec(t.module).origin).read_text(encoding="utf-8")]
    assert not on_every_core
