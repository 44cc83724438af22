"""docs/theory.md answers every conceptual question of the course, and every answer points at a real task and
at a figure that task really writes (the figure names are read from the task modules' save_figure calls)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from experiments.registry import all_tasks

ROOT = Path(__file__).resolve().parents[2]
THEORY = ROOT / "docs" / "theory.md"
TASK_LINK = re.compile(r"\]\(\.\./(experiments/[^)#\s]+\.py)\)")
FIGURE = re.compile(r"`([A-Za-z0-9_]+)\.png`")
SAVED = re.compile(r"save_figure\(\s*\w+\s*,\s*\"([A-Za-z0-9_]+)\"")

QUESTIONS = [  # (what the heading must mention, lower case), one per question of the course
    "why do networks need activation functions", "vanishing-gradient", "dying relu", "relu vs sigmoid vs tanh",
    "sigmoid vs softmax", "backpropagation", "over-fitting, and what are its remedies", "regularization in deep",
    "batch norm compute", "validation loss rises", "initial learning rate", "what does a convolution do",
    "padding and output size", "filter size", "pooling and translation invariance",
    "fully connected vs convolutional", "medical images", "siamese", "lstm vs gru", "attention and interpretability",
    "which recurrent model did best", "when to use which", "online shop",
]


def _blocks(text: str) -> list[str]:
    """Paragraphs, with every table row and list item as a block of its own."""
    blocks = []
    for para in re.split(r"\n\s*\n", text):
        current: list[str] = []
        for line in para.splitlines():
            if line.startswith(("|", "- ")):
                if current:
                    blocks.append("\n".join(current))
                current = [line]
            else:
                current.append(line)
        if current:
            blocks.append("\n".join(current))
    return blocks


def _modules() -> dict[str, object]:
    return {t.module.replace(".", "/") + ".py": t for t in all_tasks()}


def _figures(path: str) -> set[str]:
    return set(SAVED.findall((ROOT / path).read_text()))


def test_every_question_has_an_answer_with_a_task_link():
    text = THEORY.read_text()
    sections = re.split(r"\n### ", text)[1:]
    headings = {s.splitlines()[0].lower(): s for s in sections}
    for q in QUESTIONS:
        found = [body for h, body in headings.items() if q in h]
        assert found, f"theory.md has no answer headed with {q!r}"
        assert TASK_LINK.search(found[0]), f"the answer on {q!r} links no task"
        assert FIGURE.search(found[0]), f"the answer on {q!r} names no figure"


def test_linked_tasks_exist_and_cited_figures_are_theirs():
    modules = _modules()
    blocks = _blocks(THEORY.read_text())
    cited = 0
    for block in blocks:
        links = TASK_LINK.findall(block)
        for path in links:
            assert path in modules, f"theory.md links {path}, which is no registered task"
            assert (ROOT / path).exists(), f"{path} does not exist"
        figures = FIGURE.findall(block)
        if not figures:
            continue
        assert links, f"figures {figures} cited without a task link in: {block[:80]!r}"
        written = set().union(*(_figures(p) for p in links))
        for name in figures:
            cited += 1
            assert name in written, f"{name}.png is written by none of {links} (block: {block[:80]!r})"
    assert cited >= 40


@pytest.mark.parametrize("block,ok", [
    ("[4.1](../experiments/s4_cnn/t4_1_convolution_seen.py) `output_size.png`", True),
    ("[4.1](../experiments/s4_cnn/t4_1_convolution_seen.py) `roc.png`", False),
])
def test_the_figure_check_catches_a_wrong_name(block, ok):
    links = TASK_LINK.findall(block)
    written = set().union(*(_figures(p) for p in links))
    assert all(f in written for f in FIGURE.findall(block)) is ok
