"""The docs travel with the project: the catalogue lists every task with a working link, and no
README or docs page points outside the repository."""
from __future__ import annotations

import re
from pathlib import Path

from experiments.registry import all_tasks

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_task_is_in_the_catalogue_with_a_link_to_its_module():
    text = (ROOT / "docs" / "catalogue.md").read_text()
    for t in all_tasks():
        path = "../" + t.module.replace(".", "/") + ".py"
        assert f"**{t.id}** [" in text, f"{t.id} missing from docs/catalogue.md"
        assert f"]({path})" in text, f"{t.id}: catalogue does not link {path}"
        assert (ROOT / t.module.replace(".", "/")).with_suffix(".py").exists()


def test_relative_links_resolve_inside_the_repository():
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # web links
            resolved = (page.parent / target).resolve()
            assert ROOT in resolved.parents or resolved == ROOT, f"{page.name} links outside the repo: {target}"
            assert resolved.exists(), f"{page.name}: broken link {target}"


def test_nothing_points_at_the_steering_folder():
    for page in PAGES:
        assert "../shared" not in page.read_text(), page.name
