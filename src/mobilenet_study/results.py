"""`make results PROFILE=cpu`: a finished run's outcome, copied where git keeps it.

A profile's run leaves its report, tables and figures in the workspace (reports/, plots/),
where the next run overwrites them. This command copies one finished run into
``results/<profile>/`` so that it can be committed and read without running anything:

- ``report.md``: the study's report (``reports/study.md``, its floors included) with its
  figure links pointing at the copies;
- ``study.csv`` (every run: accuracy, its interval, ``test_images``, cost, training time) and
  ``floors.csv`` (each floor's numbers, with the discordant counts behind its McNemar test),
  as the `aggregate` stage wrote them;
- ``plots/``: the figures, as the report links them;
- ``params.yaml``: the exact params the run used; ``run.json``: the commit the run ran from, the
  machine, and the wall time of each attempt of the run (from ``logs/<profile>-runs.jsonl``);
- ``summary.md``: the floors, the accuracy-against-MACs figure, the V1-against-baseline
  table, and where the wall time went. For the cpu profile it also replaces README.md's block
  between :data:`README_START` and :data:`README_END`, so that the README opens with the answer.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mobilenet_study.attempts import head_commit, recover_killed, run_log
from mobilenet_study.data.prepared import read_summary
from mobilenet_study.files import atomic_dir, write_text
from mobilenet_study.grid import Grid
from mobilenet_study.layout import (
    DATA_METRICS,
    FIGURE_DIRS,
    FLOORS_TABLE,
    RESULTS,
    STUDY_PLOTS,
    STUDY_REPORT,
    STUDY_TABLE,
    THEORY_PDF,
    RunPaths,
)
from mobilenet_study.machine import cpu_model, cpuinfo, speed_flags
from mobilenet_study.models import MODELS
from mobilenet_study.params import StudyError, load_params
from mobilenet_study.profiles import PROFILES
from mobilenet_study.stage import usable_cpus
from mobilenet_study.study.families import baseline_summary, baseline_table
from mobilenet_study.study.floors import Floor, floors_sentence, floors_table, read_floors
from mobilenet_study.study.formatting import bullets
from mobilenet_study.study.report import REPORT_TO_ROOT
from mobilenet_study.study.table import PairedTests, Predictions

HEADLINE_FIGURE = STUDY_PLOTS / "accuracy_vs_macs.png"
README = Path("README.md")
README_START = "<!-- results:cpu:start (written by `make results PROFILE=cpu`) -->"
README_END = "<!-- results:cpu:end -->"


def machine() -> dict[str, Any]:
    """What the run ran on: CPU model, cores, vector extensions, memory, OS, torch."""
    meminfo = Path("/proc/meminfo")
    mem = re.search(r"MemTotal:\s*(\d+) kB", meminfo.read_text()) if meminfo.exists() else None
    return {
        "cpu": cpu_model(),
        "cpu_family_model": f"{cpuinfo().get('cpu family', '?')}/{cpuinfo().get('model', '?')}",
        "cpus": usable_cpus(),
        "vector_extensions": speed_flags(),
        "memory_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


# What the run's code is: a change here means the results did not come from the commit alone.
CODE_PATHS = ("src/", "stages/", "docs/theory.typ", "dvc.yaml", "pyproject.toml", "Makefile")


def code_state() -> dict[str, Any]:
    """The commit checked out, and any file of the code changed beside it (the run's own
    outputs and params.yaml, which `dvc exp run` writes, are not code)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    changed = [line[3:] for line in status.stdout.splitlines() if line[3:].startswith(CODE_PATHS)]
    return {"commit": head_commit(), "changed_code": changed}


def same_code(commit: str, head: str) -> bool:
    """Whether ``commit`` and ``head`` hold the same code and params (:data:`CODE_PATHS`,
    params.yaml): a commit of documents or results between two attempts leaves the run one
    run of one code. A commit git does not know counts as different code."""
    if commit == head:
        return True
    paths = [*CODE_PATHS, "params.yaml"]
    diff = subprocess.run(
        ["git", "diff", "--quiet", commit, head, "--", *paths], capture_output=True
    )
    return diff.returncode == 0


def attempts(profile: str, commit: str) -> list[dict[str, Any]]:
    """The recorded attempts of ``profile`` that ran ``commit``'s code (that commit's, or one
    whose code is the same), an attempt killed outright included."""
    recover_killed(profile)  # a killed attempt is recorded; a running one stops us here
    log = run_log(profile)
    if not log.exists():
        raise StudyError(f"{log} does not exist: run the profile with `make {profile}` first")
    found = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    mine = [attempt for attempt in found if same_code(attempt["commit"], commit)]
    if not mine:
        raise StudyError(f"{log} records no run of commit {commit[:12]}: run `make {profile}`")
    return mine


def run_record(profile: str, study: pd.DataFrame) -> dict[str, Any]:
    state = code_state()
    tries = attempts(profile, state["commit"])
    return {
        "profile": profile,
        **state,
        "machine": machine(),
        "attempts": tries,
        "wall_seconds": round(sum(a["wall_s"] for a in tries), 1),
        "train_seconds": {row["run"]: row["train_seconds"] for _, row in study.iterrows()},
    }


def hours(seconds: float) -> str:
    whole = round(seconds / 60)
    return f"{whole // 60} h {whole % 60:02d} min"


def _counts(values: pd.Series) -> str:
    found = sorted({int(v) for v in values})
    return " or ".join(f"{v:,}" for v in found)


def budget_text(record: dict[str, Any], study: pd.DataFrame) -> str:
    """How the run's wall time was spent, and what one seed per point means for reading it."""
    tries = record["attempts"]
    walls = " + ".join(hours(a["wall_s"]) for a in tries)
    per_model = study.groupby("model", sort=False)["train_seconds"].agg(["sum", "count"])
    spent = "; ".join(
        f"{MODELS[str(model)].label} {hours(total)} ({count} run{'s' if count > 1 else ''})"
        for model, total, count in zip(
            per_model.index, per_model["sum"], per_model["count"].astype(int), strict=True
        )
    )
    rest = record["wall_seconds"] - study["train_seconds"].sum()
    seeds = study["seed"].nunique()
    spread = (
        "each point was trained once, so the intervals cover the sampling of the test images, "
        "not the spread between trainings: a difference of a point or two at one point needs "
        "more seeds (`grid.seeds`) before it means anything"
        if seeds == 1
        else f"each point was trained with {seeds} seeds (the report gives their spread)"
    )
    others = (
        f"the other stages, start-up, compiling and training redone after a stop, {hours(rest)}"
        if rest >= 0
        else "more than the attempts' wall time: runs were restored from DVC's run-cache, "
        "trained by an earlier run"
    )
    return (
        f"**Read with its budget.** {len(tries)} attempt(s), {walls} of wall time (a stopped "
        f"run resumes where its checkpoints left it). Training took {spent}; {others}. And "
        f"with its spread: {spread}."
    )


def summary(
    profile: str,
    found: Sequence[Floor],
    versus: str,
    record: dict[str, Any],
    study: pd.DataFrame,
    data_label: str,
) -> str:
    """What the README shows: what was run, the floors, the headline figure and the
    V1-against-baseline comparison (``versus``: the report's section, made by
    :func:`.families.baseline_summary` and :func:`.families.baseline_table`)."""
    cpu = record["machine"]
    return "\n\n".join(
        [
            f"Measured by the `{profile}` profile (`make {profile}`, commit "
            f"`{record['commit'][:12]}`) on {cpu['cpus']} cores ({cpu['cpu']}) in "
            f"{hours(record['wall_seconds'])} wall time: every run trained for "
            f"{_counts(study['epochs'])} epoch(s) on {_counts(study['train_images'])} "
            f"training images per epoch and tested on {_counts(study['test_images'])} test "
            f"images of CIFAR-10 ({data_label}). Full report: "
            f"[results/{profile}/report.md](results/{profile}/report.md); the theory "
            f"questions answered by experiment in the same run: "
            f"[results/{profile}/theory.pdf](results/{profile}/theory.pdf).",
            f"![Test accuracy against MACs](results/{profile}/{HEADLINE_FIGURE})",
            "**MobileNet V1 against the baseline CNN** (the same network with standard convs):",
            versus,
            "**Floors**: " + floors_sentence(found),
            floors_table(found),
            budget_text(record, study),
        ]
    )


def publish(profile: str, out_root: Path = RESULTS) -> Path:
    """Copy the finished run in this workspace to ``out_root/profile``; return that folder."""
    params = load_params()
    grid = Grid.from_params(params)
    for output in (STUDY_TABLE, FLOORS_TABLE, STUDY_REPORT, THEORY_PDF):
        if not output.exists():
            raise StudyError(f"{output} is missing: run `make {profile}` first")
    study = pd.read_csv(STUDY_TABLE)
    expected = {run.name for run in grid.runs}
    if set(study["run"]) != expected:
        raise StudyError(
            f"{STUDY_TABLE} holds runs {sorted(set(study['run']))}, params.yaml's grid "
            f"{sorted(expected)}: the study is not finished (`dvc status`)"
        )
    found = read_floors(pd.read_csv(FLOORS_TABLE))
    tests = PairedTests(
        {run: Predictions.read(RunPaths.for_run(run).predictions) for run in study["run"]}
    )
    record = run_record(profile, study)
    # The copy sits beside its figures: links from reports/ up to the root start here instead.
    report = STUDY_REPORT.read_text().replace(f"]({REPORT_TO_ROOT}/", "](")
    label = read_summary(DATA_METRICS).label
    versus = "\n\n".join([bullets(baseline_summary(study, tests)), baseline_table(study, tests)])
    readme_block = summary(profile, found, versus, record, study, label)
    target = out_root / profile
    with atomic_dir(target) as tmp:
        write_text(tmp / "report.md", report)
        shutil.copy(STUDY_TABLE, tmp / "study.csv")
        shutil.copy(FLOORS_TABLE, tmp / "floors.csv")
        shutil.copy(THEORY_PDF, tmp / "theory.pdf")
        shutil.copy("params.yaml", tmp / "params.yaml")
        write_text(tmp / "run.json", json.dumps(record, indent=2) + "\n")
        write_text(tmp / "summary.md", readme_block + "\n")
        for folder in FIGURE_DIRS:
            for png in sorted(folder.glob("*.png")):
                (tmp / folder).mkdir(parents=True, exist_ok=True)
                shutil.copy(png, tmp / png)
    if profile == "cpu":
        update_readme((target / "summary.md").read_text())
    return target


def update_readme(block: str, readme: Path = README) -> None:
    """Replace the README's results block (between the markers) with ``block``."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise StudyError(f"{readme} has no results block ({README_START} … {README_END})")
    before, rest = text.split(README_START, 1)
    _, after = rest.split(README_END, 1)
    write_text(readme, f"{before}{README_START}\n{block.strip()}\n{README_END}{after}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", choices=PROFILES)
    args = parser.parse_args(argv)
    try:
        target = publish(args.profile)
    except StudyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {target}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
