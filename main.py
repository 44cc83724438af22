"""Deep-learning course experiment runner.

    python main.py                 interactive menu
    python main.py 4.3             one task          python main.py 3      a whole section
    python main.py 3.1 4.3         several           python main.py --all  everything
    python main.py --list          ids, titles, datasets and last results

Heavy libraries (torch, matplotlib, scikit-learn) are imported only when a task runs, so
the menu appears at once.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import config

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


def _terminated() -> bool:
    from utils.runner import interrupted_by

    return interrupted_by() == "SIGTERM"


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage dump), exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def seed_value(text: str) -> int:
    """A seed NumPy and torch both accept: a whole number from 0 to 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and {2**32 - 1}, got {value}")
    return value


def job_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be between 1 and 64, got {value}")
    return value


def folder_path(text: str) -> Path:
    if not text.strip() or "\0" in text:
        raise argparse.ArgumentTypeError("needs a folder name (an empty path would write into the current folder)")
    return Path(text)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="main.py", description="Run the deep-learning course experiments "
                       "(results go to results/<id>_<name>/).",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  python main.py --all --mode quick\n  python main.py 4.3 --dataset fashion-mnist\n"
                              "  python main.py 3 --mode hybrid --seed 1\n  python main.py --list")
    p.add_argument("ids", nargs="*", metavar="ID", help="task ids (4.3) or section numbers (4); none: the menu")
    p.add_argument("--all", action="store_true", help="run every task")
    p.add_argument("--list", action="store_true", help="list tasks with their datasets and last result")
    p.add_argument("--ids", action="store_true", dest="print_ids",
                   help="print the selected task ids, one per line (for scripts)")
    p.add_argument("--mode", type=str.lower, choices=list(config.MODES) + ["tiny"],
                   default=None, help=f"budget preset (default {config.DEFAULT_MODE}, or $DL_MODE); tiny is a smoke test")
    p.add_argument("--device", type=str.lower, choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="where torch runs (default auto: cuda, then mps, then cpu)")
    p.add_argument("--seed", type=seed_value, default=config.DEFAULT_SEED,
                   help=f"random seed, 0 to 2**32-1 (default {config.DEFAULT_SEED})")
    p.add_argument("--dataset", type=str.lower, choices=config.IMAGE_DATASETS, default=None,
                   help="image dataset for tasks that accept another one")
    p.add_argument("--no-fallback", action="store_true", help="fail instead of using an offline stand-in dataset")
    p.add_argument("--results", type=folder_path, default=None, metavar="DIR", help="results folder (default results/)")
    p.add_argument("--data", type=folder_path, default=None, metavar="DIR", help="data cache folder (default data/)")
    p.add_argument("--resume", action="store_true",
                   help="skip tasks already done with the same mode, seed, dataset, --set values and code")
    p.add_argument("--report", action="store_true",
                   help="rebuild results/summary.md and results/index.html from the task folders there")
    p.add_argument("--latex", action="store_true",
                   help="with --report: also write results/report.tex and compile it with pdflatex when present")
    p.add_argument("--jobs", type=job_count, default=1, metavar="N",
                   help="run independent tasks in N processes, the cores split between them (default 1)")
    p.add_argument("--redraw", action="store_true",
                   help="re-make figures and analysis of the given tasks from their stored results (no training)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset value, e.g. --set epochs=3 (see config.py)")
    return p


def make_settings(args, tasks=()):
    from utils.runner import Settings

    mode = (args.mode or os.environ.get("DL_MODE") or config.DEFAULT_MODE).lower()
    overrides = config.parse_overrides(args.set)
    config.get_preset(mode, **config.preset_overrides(overrides))  # validate now: a bad key fails before any work
    check_budget_keys(overrides, tasks)
    return Settings(mode=mode, overrides=overrides, device=args.device, seed=args.seed,
                    results_dir=args.results or config.RESULTS_DIR, data_dir=args.data or config.DATA_DIR,
                    dataset=args.dataset, allow_fallback=not args.no_fallback, resume=args.resume)


def check_budget_keys(overrides: dict, tasks) -> None:
    """--set keys that are not shared preset values must name a budget value of a selected task."""
    extra = set(overrides) - config.PRESET_KEYS
    if not extra:
        return
    known: set[str] = set()
    for t in tasks:
        try:
            known |= t.budget_keys()
        except Exception:  # a task that cannot even import fails later, with its own message
            continue
    unknown = sorted(extra - known)
    if unknown:
        raise config.ConfigError(
            f"unknown config key(s) {', '.join(unknown)} for the selected tasks; shared keys: "
            f"{', '.join(sorted(config.PRESET_KEYS - {'name'}))}; their budget keys: {', '.join(sorted(known)) or 'none'}")


def print_list(settings) -> None:
    from rich.table import Table

    from experiments.registry import SECTIONS, all_tasks
    from utils.console import console
    from utils.results import task_status

    from rich.markup import escape

    table = Table(title=f"Tasks (results in {escape(str(settings.results_dir))})")
    for col in ("id", "title", "datasets", "status", "mode", "last result"):
        table.add_column(col)
    section = None
    for t in all_tasks():
        if t.section != section:
            section = t.section
            table.add_row(f"[bold]{section}[/]", f"[bold]{SECTIONS[section]}[/]", "", "", "", "")
        st = task_status(settings.results_dir, t)
        table.add_row(t.id, t.title, ", ".join(t.datasets), st["status"], st["mode"], st["headline"])
    console.print(table)


def run_batch(tasks, settings, jobs: int = 1) -> int:
    from experiments.registry import SECTIONS, all_tasks, get_task
    from utils.runner import print_summary, run_tasks

    if jobs > 1 and len(tasks) > 1:
        from utils.parallel import run_parallel
        from utils.runner import Outcome, resume_reason, update_summary

        skipped = {t.id: resume_reason(t, settings) for t in tasks} if settings.resume else {}
        todo = [t for t in tasks if not skipped.get(t.id)]
        done = run_parallel(todo, settings, all_tasks(), jobs, get_task) if todo else []
        by_id = {o.task.id: o for o in done}
        outcomes = [by_id.get(t.id) or Outcome(t, "skipped", message=skipped[t.id]) for t in tasks]
        update_summary(settings, all_tasks(), SECTIONS)
    else:
        outcomes = run_tasks(tasks, settings, all_tasks(), sections=SECTIONS)
    if len(outcomes) > 1:
        print_summary(outcomes)
    if any(o.status == "interrupted" for o in outcomes):
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(o.status == "failed" for o in outcomes) else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from experiments.registry import SelectionError, all_tasks, resolve
    from utils.results import check_writable

    prog = "main.py"
    try:
        tasks = all_tasks() if args.all else resolve(args.ids)
        settings = make_settings(args, tasks or all_tasks())
    except (config.ConfigError, SelectionError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.latex and not args.report:
        print(f"{prog}: error: --latex goes with --report (python main.py --report --latex)", file=sys.stderr)
        return EXIT_USAGE
    if args.list:
        print_list(settings)
        return EXIT_OK
    if args.print_ids:
        print("\n".join(t.id for t in (tasks or all_tasks())))
        return EXIT_OK
    if settings.device != "auto":  # a missing GPU is a usage error, reported before any work
        from utils.provenance import pick_device

        try:
            pick_device(settings.device)
        except ValueError as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    problem = check_writable(settings.results_dir)
    if problem:
        print(f"{prog}: error: {problem} (choose another with --results DIR)", file=sys.stderr)
        return EXIT_USAGE
    if args.redraw:
        return redraw(tasks or all_tasks(), settings)
    if args.report:
        return report(settings, latex=args.latex)
    if tasks:
        return run_batch(tasks, settings, args.jobs) if not distributed_worker(settings) else run_batch(tasks, settings)
    return Menu(settings).loop()


def report(settings, *, latex: bool = False) -> int:
    """--report [--latex]: the overviews (and the course report) from whatever is in results/."""
    from rich.markup import escape

    from experiments.registry import SECTIONS, all_tasks
    from utils.console import console
    from utils.runner import update_summary

    update_summary(settings, all_tasks(), SECTIONS)
    index = settings.results_dir / "index.html"
    console.print(f"wrote {escape(str(settings.results_dir / 'summary.md'))} and {escape(str(index))} "
                  f"(open it in a browser: file://{escape(str(index.resolve()))})")
    if not latex:
        return EXIT_OK
    from utils.latex_report import build_report

    ok, message = build_report(settings.results_dir, all_tasks(), SECTIONS)
    console.print(escape(message))
    return EXIT_OK if ok else EXIT_FAILED


def distributed_worker(settings) -> bool:
    """Under torchrun, join the process group; ranks other than 0 train but write and print nothing."""
    from utils.distributed import init_from_env, rank

    if init_from_env(settings.device) <= 1:
        return False
    if rank() != 0:
        import tempfile

        from utils.console import console

        console.file = open(os.devnull, "w", encoding="utf-8")
        settings.results_dir = Path(tempfile.mkdtemp(prefix=f"rank{rank()}-"))
    return True


def redraw(tasks, settings) -> int:
    """--redraw: figures and analyses of finished tasks, rebuilt from result.json."""
    from experiments.registry import SECTIONS, all_tasks
    from utils.console import console
    from utils.runner import redraw_task, update_summary

    from rich.markup import escape

    outcomes = [redraw_task(t, settings) for t in tasks]
    update_summary(settings, all_tasks(), SECTIONS)
    for o in outcomes:
        if o.status != "done":
            console.print(f"[red]{o.task.id}: {escape(o.message)}[/]")
    if any(o.status == "interrupted" for o in outcomes):
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(o.status != "done" for o in outcomes) else EXIT_OK


class Menu:
    """The interactive menu: sections, then their tasks, each with its last result.

    End of input (Ctrl-D, a closed pipe) and Ctrl-C at the prompt leave with status 0;
    Ctrl-C during a task stops only that task and comes back here.
    """

    HELP_MAIN = ("[bold]4[/] open a section · [bold]4.3[/] run a task · [bold]a[/] run all · [bold]m[/] mode · "
                 "[bold]q[/] or [bold]0[/] quit")
    HELP_SECTION = ("[bold]number or id[/] run a task · [bold]r[/] run the section · [bold]b[/] back · [bold]m[/] mode · "
                    "[bold]q[/] or [bold]0[/] quit")

    def __init__(self, settings):
        from utils.console import console

        self.settings = settings
        self.console = console
        self.section: str | None = None

    def ask(self, prompt: str) -> str:
        """One line of input; raises EOFError at end of input."""
        self.console.print(prompt, end="")
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        if not sys.stdin.isatty():
            self.console.print(line.rstrip(), markup=False)  # echo piped input so transcripts read naturally
        return line.strip()

    def loop(self) -> int:
        if hasattr(sys.stdin, "reconfigure"):  # undecodable bytes become U+FFFD, not a crash
            sys.stdin.reconfigure(errors="replace")
        try:
            while True:
                self.show()
                choice = self.ask("> ").lower()
                if not self.handle(choice):
                    break
        except (EOFError, KeyboardInterrupt):
            self.console.print()
        self.console.print("bye")
        return EXIT_OK

    def show(self) -> None:
        from rich.table import Table

        from experiments.registry import SECTIONS, all_tasks
        from utils.results import task_status

        s = self.settings
        tasks = all_tasks()
        head = f"[bold]Deep-learning experiments[/]  mode [cyan]{s.mode}[/] · device {s.device} · seed {s.seed}"
        if self.section is None:
            table = Table(title=head, title_justify="left")
            for col in ("section", "title", "tasks", "done"):
                table.add_column(col)
            for sec in sorted({t.section for t in tasks}, key=int):
                members = [t for t in tasks if t.section == sec]
                done = sum(task_status(s.results_dir, t)["status"] == "done" for t in members)
                table.add_row(sec, SECTIONS[sec], str(len(members)), f"{done}/{len(members)}")
            self.console.print(table)
            self.console.print(self.HELP_MAIN)
        else:
            table = Table(title=f"{head}\n[bold]{self.section} {SECTIONS[self.section]}[/]", title_justify="left")
            for col in ("id", "title", "status", "mode", "last result"):
                table.add_column(col)
            colours = {"done": "green", "failed": "red", "interrupted": "yellow"}
            for t in tasks:
                if t.section == self.section:
                    st = task_status(s.results_dir, t)
                    c = colours.get(st["status"], "dim")
                    table.add_row(t.id, t.title, f"[{c}]{st['status']}[/]", st["mode"], st["headline"])
            self.console.print(table)
            self.console.print(self.HELP_SECTION)

    def handle(self, choice: str) -> bool:
        """Act on one answer; False means quit."""
        from experiments.registry import SelectionError, all_tasks, resolve

        from rich.markup import escape

        if choice in {"q", "0", "quit", "exit"}:
            return False
        if choice == "":
            return True
        if choice == "m":
            self.change_mode()
            return True
        if self.section is None:
            if choice == "a":
                self.run(all_tasks())
                return True
        else:
            if choice == "b":
                self.section = None
                return True
            if choice == "r":
                self.run(resolve([self.section]))
                return True
            if choice.isdigit():  # a task number within the open section
                choice = f"{self.section}.{choice}"
        try:
            selected = resolve([choice])
        except SelectionError as exc:
            self.console.print(f"[red]{escape(str(exc))}[/] · " + (self.HELP_MAIN if self.section is None else self.HELP_SECTION))
            return True
        if self.section is None and "." not in choice.rstrip("."):  # "1" and "1." open section 1
            self.section = choice.rstrip(".")
        else:
            self.run(selected)
        return True

    def change_mode(self) -> None:
        from rich.markup import escape

        while True:
            answer = self.ask(f"mode ({'/'.join(config.MODES)}) [{self.settings.mode}]: ").lower()
            if answer == "":
                return
            if answer in config.MODES:
                self.settings.mode = answer
                return
            self.console.print(f"[red]unknown mode {escape(repr(answer))}[/]")

    def run(self, tasks) -> None:
        from utils.runner import print_summary, run_tasks

        from experiments.registry import SECTIONS, all_tasks

        outcomes = run_tasks(tasks, self.settings, all_tasks(), sections=SECTIONS)
        if len(outcomes) > 1:
            print_summary(outcomes)


def _on_sigterm(signum, frame):
    """SIGTERM is handled like Ctrl-C: the running task stops, files saved so far are kept."""
    from utils.runner import Terminated

    raise Terminated()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = main()
        from utils.distributed import shutdown

        shutdown()  # leave a torchrun process group cleanly (no-op otherwise)
        # Exempt what is alive now from the collections Python runs while shutting down: with
        # torch loaded they took 1-2 s of every run's exit and freed nothing that matters.
        import gc

        gc.freeze()
        sys.exit(EXIT_TERMINATED if code == EXIT_INTERRUPTED and _terminated() else code)
    except BrokenPipeError:  # output piped into a program that stopped reading (e.g. `| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM outside a task (tasks handle their own)
        if type(exc).__name__ == "Terminated":
            print("\nterminated", file=sys.stderr)
            sys.exit(EXIT_TERMINATED)
        print("\ninterrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
