"""`make results PROFILE=cpu`: a finished run's outcome, copied where git keeps it.

A profile's run leaves its report, tables and figures in the workspace (reports/, plots/),
where the next run overwrites them. This command copies one finished run into
``results/<profile>/`` so that it can be committed and read without running anything:

- ``report.md``: the floors (:func:`floors`) and the data behind this run, then the study's
  report (``reports/study.md``) with its figure links pointing at the copies;
- ``study.csv`` (every run: accuracy, its interval, ``test_images``, cost, training time) and
  ``floors.csv`` (each floor's numbers, with the discordant counts behind its McNemar test);
- ``plots/``: the figures, as the report links them;
- ``params.yaml``: the exact params the run used; ``run.json``: the commit the run ran from, the
  machine, and the wall time of each attempt of the run (from ``logs/<profile>-runs.jsonl``);
- ``summary.md``: the floors, the accuracy-against-MACs figure and the V1-against-baseline
  table. For the cpu profile it also replaces README.md's block between
  :data:`README_START` and :data:`README_END`, so that the README opens with the answer.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mobilenet_study.data.prepared import METRICS_FILE as DATA_METRICS
from mobilenet_study.data.prepared import read_summary
from mobilenet_study.grid import Grid
from mobilenet_study.machine import cpu_model, cpuinfo, speed_flags
from mobilenet_study.outputs import atomic_dir, write_text
from mobilenet_study.params import StudyError, load_params
from mobilenet_study.profiles import PROFILES, head_commit, run_log
from mobilenet_study.stage import usable_cpus
from mobilenet_study.study.formatting import accuracy_cell, markdown_table, p_value, pct
from mobilenet_study.study.stats import ALPHA
from mobilenet_study.study.table import PairedTests, Predictions, first_seed_runs

RESULTS_DIR = Path("results")
STUDY_TABLE = Path("plots/study/study.csv")
REPORT = Path("reports/study.md")
THEORY_PDF = Path("reports/theory.pdf")  # the theory_report stage's output
PREDICTIONS_DIR = Path("plots/predictions")
FIGURE_DIRS = ("plots/study", "plots/cost", "plots/gradcam", "plots/residual", "plots/data")
HEADLINE_FIGURE = "plots/study/accuracy_vs_macs.png"
VERSUS_HEADING = "## MobileNet V1 against the baseline CNN, point by point"
README = Path("README.md")
README_START = "<!-- results:cpu:start (written by `make results PROFILE=cpu`) -->"
README_END = "<!-- results:cpu:end -->"

# Issue 20's floors for MobileNet V1 at the widest α and largest ρ of the grid.
FLOOR_ACCURACY = 0.70
V1, BASELINE = "mobilenet_v1", "baseline"


@dataclass(frozen=True)
class Floor:
    """One floor: what it asks, what was measured, and whether it holds."""

    name: str
    asks: str
    measured: str
    met: bool
    run_a: str = ""
    run_b: str = ""
    only_a: int = 0  # test images only run A classified correctly (McNemar's discordant pairs)
    only_b: int = 0
    p_value: float = float("nan")


def _run_at(table: pd.DataFrame, model: str, width: float, resolution: float) -> pd.Series:
    match = table[
        (table["model"] == model) & (table["width"] == width) & (table["resolution"] == resolution)
    ]
    if match.empty:
        raise StudyError(f"the study table has no {model} run at α {width}, ρ {resolution}")
    return match.iloc[0]


def _separation(
    name: str, asks: str, a: pd.Series, b: pd.Series, tests: PairedTests, met: bool | None = None
) -> Floor:
    comparison = tests.compare(a["run"], b["run"])
    significant = comparison.p_value < ALPHA
    measured = (
        f"{a['run']} {pct(a['test_accuracy'])} against {b['run']} {pct(b['test_accuracy'])}: "
        f"{comparison.points:+.1f} points, McNemar {p_value(comparison.p_value)} "
        f"({comparison.only_a} images right only in the first, {comparison.only_b} only in the "
        "second)"
    )
    return Floor(
        name=name,
        asks=asks,
        measured=measured,
        met=significant if met is None else met,
        run_a=a["run"],
        run_b=b["run"],
        only_a=comparison.only_a,
        only_b=comparison.only_b,
        p_value=comparison.p_value,
    )


def floors(table: pd.DataFrame, tests: PairedTests) -> list[Floor]:
    """The floors of the study at the grid's ends, on the first seed's runs.

    1. V1 at the widest α and largest ρ reaches :data:`FLOOR_ACCURACY`;
    2. the baseline at that point is more accurate than V1 there;
    3. V1's α axis ends (smallest → widest α, at the largest ρ) are separated, p < 0.05;
    4. V1's ρ axis ends (smallest → largest ρ, at the widest α) are separated, p < 0.05.
    """
    first = first_seed_runs(table)
    v1 = first[first["model"] == V1]
    widths, resolutions = sorted(v1["width"].unique()), sorted(v1["resolution"].unique())
    top_w, top_r = widths[-1], resolutions[-1]
    v1_top = _run_at(first, V1, top_w, top_r)
    base_top = _run_at(first, BASELINE, top_w, top_r)
    accuracy = Floor(
        name="V1 accuracy",
        asks=f"MobileNet V1 at α {top_w:g}, ρ {top_r:g}: at least {FLOOR_ACCURACY:.0%} top-1",
        measured=accuracy_cell(v1_top),
        met=bool(v1_top["test_accuracy"] >= FLOOR_ACCURACY),
        run_a=v1_top["run"],
    )
    above = tests.compare(v1_top["run"], base_top["run"])
    return [
        accuracy,
        _separation(
            "baseline above V1",
            f"the baseline above V1 at α {top_w:g}, ρ {top_r:g}",
            v1_top,
            base_top,
            tests,
            met=above.points > 0,
        ),
        _separation(
            "α ends separated",
            f"V1 at α {widths[0]:g} and α {top_w:g} (ρ {top_r:g}) separated, "
            f"McNemar p < {ALPHA:.2f}",
            _run_at(first, V1, widths[0], top_r),
            v1_top,
            tests,
        ),
        _separation(
            "ρ ends separated",
            f"V1 at ρ {resolutions[0]:g} and ρ {top_r:g} (α {top_w:g}) separated, "
            f"McNemar p < {ALPHA:.2f}",
            _run_at(first, V1, top_w, resolutions[0]),
            v1_top,
            tests,
        ),
    ]


def floors_table(found: Sequence[Floor]) -> str:
    rows = [
        {"floor": f.asks, "measured": f.measured, "outcome": "met" if f.met else "**missed**"}
        for f in found
    ]
    return markdown_table(pd.DataFrame(rows))


def floors_sentence(found: Sequence[Floor]) -> str:
    missed = [f for f in found if not f.met]
    if not missed:
        return f"All {len(found)} floors are met."
    names = "; ".join(f"{f.asks} — measured {f.measured}" for f in missed)
    return f"{len(found) - len(missed)} of {len(found)} floors are met. Missed: {names}."


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


def attempts(profile: str, commit: str) -> list[dict[str, Any]]:
    """The recorded attempts of ``profile`` that ran ``commit``'s code."""
    log = run_log(profile)
    if not log.exists():
        raise StudyError(f"{log} does not exist: run the profile with `make {profile}` first")
    found = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    mine = [attempt for attempt in found if attempt["commit"] == commit]
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


def section(report: str, heading: str) -> str:
    """The text of ``report`` from ``heading`` to the next heading of its level."""
    start = report.index(heading)
    following = report.find("\n## ", start + len(heading))
    return report[start : following if following != -1 else len(report)].strip()


def hours(seconds: float) -> str:
    whole = round(seconds / 60)
    return f"{whole // 60} h {whole % 60:02d} min"


def _counts(values: pd.Series) -> str:
    found = sorted({int(v) for v in values})
    return " or ".join(f"{v:,}" for v in found)


def summary(
    profile: str,
    found: Sequence[Floor],
    report: str,
    record: dict[str, Any],
    study: pd.DataFrame,
    data_label: str,
) -> str:
    """What the README shows: what was run, the floors, the headline figure and the
    V1-against-baseline table."""
    cpu = record["machine"]
    versus = section(report, VERSUS_HEADING).replace(VERSUS_HEADING, "").strip()
    return "\n\n".join(
        [
            f"Measured by the `{profile}` profile (`make {profile}`, commit "
            f"`{record['commit'][:12]}`) on {cpu['cpus']} cores ({cpu['cpu']}) in "
            f"{hours(record['wall_seconds'])} wall time: every run trained for "
            f"{_counts(study['epochs'])} epoch(s) on {_counts(study['train_images'])} "
            f"training images and tested on {_counts(study['test_images'])} test images of "
            f"CIFAR-10 ({data_label}). Full report: "
            f"[results/{profile}/report.md](results/{profile}/report.md); the theory "
            f"questions answered by experiment in the same run: "
            f"[results/{profile}/theory.pdf](results/{profile}/theory.pdf).",
            f"![Test accuracy against MACs](results/{profile}/{HEADLINE_FIGURE})",
            "**MobileNet V1 against the baseline CNN** (the same network with standard convs):",
            versus,
            "**Floors**: " + floors_sentence(found),
            floors_table(found),
        ]
    )


def publish(profile: str, out_root: Path = RESULTS_DIR) -> Path:
    """Copy the finished run in this workspace to ``out_root/profile``; return that folder."""
    params = load_params()
    grid = Grid.from_params(params)
    for output in (STUDY_TABLE, REPORT, THEORY_PDF):
        if not output.exists():
            raise StudyError(f"{output} is missing: run `make {profile}` first")
    study = pd.read_csv(STUDY_TABLE)
    expected = {run.name for run in grid.runs}
    if set(study["run"]) != expected:
        raise StudyError(
            f"{STUDY_TABLE} holds runs {sorted(set(study['run']))}, params.yaml's grid "
            f"{sorted(expected)}: the study is not finished (`dvc status`)"
        )
    tests = PairedTests(
        {run: Predictions.read(PREDICTIONS_DIR / f"{run}.csv") for run in study["run"]}
    )
    found = floors(study, tests)
    record = run_record(profile, study)
    report = REPORT.read_text()
    floors_part = "\n\n".join(
        [
            "## Floors",
            floors_sentence(found),
            floors_table(found),
        ]
    )
    title, rest = report.split("\n\n", 1)
    published = "\n\n".join([title, floors_part, rest]).replace("](../plots/", "](plots/")
    target = out_root / profile
    with atomic_dir(target) as tmp:
        write_text(tmp / "report.md", published)
        shutil.copy(STUDY_TABLE, tmp / "study.csv")
        shutil.copy(THEORY_PDF, tmp / "theory.pdf")
        pd.DataFrame([asdict(f) for f in found]).to_csv(tmp / "floors.csv", index=False)
        shutil.copy("params.yaml", tmp / "params.yaml")
        write_text(tmp / "run.json", json.dumps(record, indent=2) + "\n")
        label = read_summary(DATA_METRICS).label
        write_text(tmp / "summary.md", summary(profile, found, report, record, study, label) + "\n")
        for folder in FIGURE_DIRS:
            for png in sorted(Path(folder).glob("*.png")):
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
