"""The whole pipeline on a tiny study, and what a user does with it next: the aggregate stage's
outputs, `dvc metrics diff` and `dvc exp show` between two experiments, `dvc plots diff`, and
the `dvc plots show` page in a browser with the network closed.

One module-scoped repository: `dvc repro` of a tiny study, committed as `main` (the way a user
keeps a baseline), then one experiment that changes one grid value. (Two seeds through DVC:
tests/test_train_stage.py; what the study makes of them: tests/test_aggregate.py.)
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mobilenet_study import plots_page

from .conftest import REPO_ROOT, PipelineRepo, make_pipeline_repo
from .test_plots_offline import charts_with_data, dvc_plots_show, render_offline
from .test_train_stage import TINY_GRID, write_image_folder

GRADCAM_RUNS = ["baseline-0.25-0.5-0", "mobilenet_v1-0.25-0.5-0"]
TINY_STUDY = {
    **TINY_GRID,
    # The baseline at a point of its own (stage train_twin, as in the cpu profile) and no
    # reference row: MobileNet V2's ONNX export alone takes ~16 s here (tests/test_deploy.py
    # exports V2).
    "grid.twin.models": ["baseline"],
    "grid.twin.widths": [0.125],
    "grid.twin.resolutions": [0.5],
    "grid.reference.models": [],
    "cost.warmup": 0,
    "cost.repeats": 3,
    "gradcam.runs": GRADCAM_RUNS,
    "gradcam.images_per_class": 1,
}
EXPERIMENT = "twin-wider"
CHANGE = "grid.twin.widths=[0.375]"  # the baseline's own run at α 0.375 instead of 0.125
POINTS = ["mobilenet_v1-0.25-0.5", "baseline-0.25-0.5", "baseline-0.375-0.5"]
RUNS = [f"{point}-0" for point in POINTS]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> PipelineRepo:
    root = tmp_path_factory.mktemp("study")
    folder = write_image_folder(root / "mirror", {"train": 20, "test": 10})
    repo = make_pipeline_repo(root / "repo")
    repo.set_params({**TINY_STUDY, "data.source": str(folder)})
    repo.commit("tiny study")
    repo.dvc("repro")
    repo.commit("tiny study: results")  # metrics and plots are in git, data and models in DVC
    repo.dvc("exp", "run", "-n", EXPERIMENT, "-S", CHANGE)
    return repo


def dvc_plot_ids() -> tuple[list[str], list[str]]:
    """dvc.yaml's top-level plots: the ids of the Vega charts, and the image paths."""
    plots = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["plots"]
    charts = [next(iter(p)) for p in plots if isinstance(p, dict)]
    images = [p for p in plots if isinstance(p, str)]
    return charts, images


# --- the aggregate stage ------------------------------------------------------------------


@pytest.mark.slow
def test_aggregate_builds_the_study(study: PipelineRepo) -> None:
    path = study.path
    table = pd.read_csv(path / "plots/study/study.csv")
    metrics = json.loads((path / "metrics/study.json").read_text())
    assert table["run"].tolist() == RUNS
    assert table["first_seed"].all()
    for row in table.to_dict("records"):
        trained = json.loads((path / f"metrics/train/{row['run']}.json").read_text())
        assert trained["seed"] == row["seed"]
        entry = metrics[row["run"]]
        assert entry["acc"] == round(trained["test_accuracy"], 4)
        assert row["test_accuracy_ci_low"] <= row["test_accuracy"] <= row["test_accuracy_ci_high"]
        assert entry["macs"] == trained["macs"] == row["macs_measured"]
        assert entry["params"] == trained["params"]
        assert row["test_images"] == 100 and row["seeds"] == 1
    assert metrics["study"]["runs"] == len(RUNS)
    curves = pd.read_csv(path / "plots/study/curves.csv")
    assert len(curves) == len(RUNS) and set(curves["run"]) == set(RUNS)  # one epoch each

    first = table[table["first_seed"]]
    best = first[first["model"].str.startswith("mobilenet")].sort_values("test_accuracy")
    confusion = (path / "plots/study/confusion.csv").read_text()
    assert confusion == (path / f"plots/predictions/{best.iloc[-1]['run']}.csv").read_text()

    text = (path / "reports/study.md").read_text()
    assert "png image-folder mirror" in text and "**Training device:** cpu" in text
    assert "Each point was trained once (seed 0)" in text
    assert "## MobileNet V1 against the baseline CNN, point by point" in text
    assert re.search(r"\| 0\.25 +\| 0\.5 +\|", text) and "McNemar p" in text
    for name in ("study/accuracy_vs_macs", "study/curves", "study/confusion", "cost/scaling_width"):
        assert f"(../plots/{name}.png)" in text
        assert (path / f"plots/{name}.png").stat().st_size > 1000
    # The experiment put the baseline's own run at α 0.375: a width step, tested.
    assert "baseline at ρ 0.5: α 0.375 → 0.25 cuts MACs" in text and "McNemar" in text
    # Every run deployed: two ONNX files, a summary that passed its check, int8 predictions.
    for run in RUNS:
        summary = json.loads((path / f"deployed/{run}/deploy.json").read_text())
        assert summary["max_logit_difference"] <= summary["tolerance"]
        for name in ("model.onnx", "model.int8.onnx"):
            assert (path / f"deployed/{run}/{name}").stat().st_size > 1000
        int8 = (path / f"deployed/{run}/int8_predictions.csv").read_text().splitlines()
        assert len(int8) == 1 + 100
    assert "## Where MobileNets run: ONNX Runtime, fp32 and int8" in text
    assert "int8 − fp32, points [95% CI]" in text and "ORT/torch" in text
    latency = pd.read_csv(path / "plots/study/deploy_latency.csv")
    assert set(latency["engine"]) == {"onnxruntime", "torch"} and set(latency["run"]) == set(RUNS)


@pytest.mark.slow
def test_a_missing_run_names_its_stage(study: PipelineRepo, tmp_path: Path) -> None:
    metrics = study.path / "metrics/train/baseline-0.25-0.5-0.json"
    shutil.move(metrics, tmp_path / metrics.name)
    try:
        failed = study.run("python", "stages/aggregate.py", check=False)
    finally:
        shutil.move(tmp_path / metrics.name, metrics)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "dvc repro train@baseline-0.25-0.5-0" in failed.stderr


# --- comparing two experiments --------------------------------------------------------------


@pytest.mark.slow
def test_metrics_diff_and_exp_show_list_only_what_changed(study: PipelineRepo) -> None:
    diff = json.loads(study.dvc("metrics", "diff", "main", EXPERIMENT, "--json").stdout)
    changed = set(diff["metrics/study.json"])
    # The twin runs went from α 0.125 to 0.375: their headline numbers, and the study's
    # headline (best run, frontier size) where the new runs move it; nothing else.
    twin = {
        f"baseline-{width}-0.5-0.{field}"
        for width in ("0.125", "0.375")
        for field in ("acc", "acc_ci95", "macs", "params")
    }
    headline = {f"study.{k}" for k in ("best_run", "best_acc", "frontier")}
    assert twin <= changed and changed - twin <= headline
    assert set(diff) == {"metrics/study.json"}  # data and residual did not change
    rows = study.dvc("metrics", "diff", "main", EXPERIMENT).stdout.strip().splitlines()
    assert len(rows) == 1 + len(changed) <= 41  # a header, then one row per changed metric

    shown = study.dvc("exp", "show", "--only-changed", "--csv").stdout
    columns = next(csv.reader(io.StringIO(shown)))
    meta = {"Experiment", "rev", "typ", "Created"}
    # Stage inputs that changed, by content hash: paths in the repository.
    deps = {c for c in columns if (study.path / c).exists()}
    params = [c for c in columns if c.startswith(("grid.", "train.", "data.", "cost."))]
    assert params == ["grid.twin.widths"]
    assert set(columns) - meta - deps - set(params) == changed
    assert len(columns) <= 160


@pytest.mark.slow
def test_plots_diff_overlays_both_experiments(study: PipelineRepo) -> None:
    shown = json.loads(study.dvc("plots", "diff", "main", EXPERIMENT, "--json").stdout)
    charts, images = dvc_plot_ids()
    for chart in charts:
        (entry,) = shown["data"][chart]
        assert entry["type"] == "vega" and set(entry["revisions"]) == {"main", EXPERIMENT}
        values = entry["content"]["data"]["values"]
        assert {row["rev"] for row in values} == {"main", EXPERIMENT}, chart
    pictures = [name for name in shown["data"] if name.endswith(".png")]
    assert len(pictures) == len(images) - 1 + len(GRADCAM_RUNS)  # plots/gradcam: one per run
    for picture in pictures:
        revisions = {entry["revisions"][0] for entry in shown["data"][picture]}
        assert revisions == {"main", EXPERIMENT}, picture


@pytest.mark.slow
def test_plots_page_draws_one_chart_per_question_offline(
    study: PipelineRepo, tmp_path: Path
) -> None:
    from .test_plots_offline import CHROMIUM

    if not CHROMIUM.is_file():
        pytest.skip(f"no {CHROMIUM}: `make setup-browser` installs Debian's chromium")
    template = plots_page.configured_template(REPO_ROOT)
    index = dvc_plots_show(tmp_path / "dvc_plots", "--html-template", str(template), cwd=study.path)
    page = index.read_text(encoding="utf-8")
    charts, images = dvc_plot_ids()
    drawn = charts_with_data(page)
    assert len(drawn) == len(charts) == 10
    rendered = render_offline(index, tmp_path / "profile")
    assert rendered.errors == ""
    for chart in drawn:
        (size,) = rendered.marks[chart]
        assert min(size) > 0, chart
    # Images: the samples, the two numpy exercises and one Grad-CAM figure per run.
    pictures = re.findall(r"<img [^>]*src\s*=\s*\"(static/[^\"]+\.png)\"", page)
    assert len(pictures) == len(images) - 1 + len(GRADCAM_RUNS)
    assert len(charts) + len(pictures) <= 15


# --- the theory PDF -------------------------------------------------------------------------


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return " ".join(page.extract_text() for page in PdfReader(path).pages)


@pytest.mark.slow
def test_the_theory_pdf_is_built_and_quotes_the_measurements(study: PipelineRepo) -> None:
    path = study.path
    text = re.sub(r"\s+", " ", _pdf_text(path / "reports/theory.pdf"))
    init = json.loads((path / "plots/theory/init/summary.json").read_text())
    degradation = json.loads((path / "plots/theory/degradation/summary.json").read_text())
    gradcam = json.loads((path / "plots/theory/gradcam/summary.json").read_text())
    residual = json.loads((path / "metrics/residual.json").read_text())
    # Each number, as the document rounds it, is in its text (within the rounding).
    numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)]
    quoted = [
        (residual["output"], 0.01),
        (init["init_training"]["xavier"]["final_train_loss"], 0.001),
        (init["init_training"]["he"]["final_train_loss"], 0.001),
        (degradation["runs"]["plain-14"]["final_train_error"] * 100, 0.1),
        (gradcam["negative_position_share_mean"] * 100, 0.1),
        (init["symmetry"]["he"]["filters_total"], 0),
    ]
    for value, rounding in quoted:
        assert any(abs(n - value) <= rounding * 0.51 + 1e-9 for n in numbers), value
    assert "plain-14" in text and "resnet-8" in text
    assert gradcam["run"] in text
    # The figures are embedded, and no placeholder or unresolved markup is left.
    assert "n/a" not in text
    assert "#" not in text


def _metric_values(tree: object) -> int:
    """The values `dvc metrics show` lists: numbers and booleans, nested keys flattened."""
    if isinstance(tree, dict):
        return sum(_metric_values(value) for value in tree.values())
    return int(isinstance(tree, (int, float, bool)))


@pytest.mark.slow
def test_metrics_show_stays_readable(study: PipelineRepo) -> None:
    """At most 4 values per trained run and 25 others (the theory stages 12 of them)."""
    shown = json.loads(study.dvc("metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    counts = {name: _metric_values(entry.get("data", {})) for name, entry in files.items()}
    per_run = 4 * len(RUNS)
    theory = sum(n for name, n in counts.items() if name.startswith("metrics/theory"))
    assert theory <= 12, counts
    assert sum(counts.values()) <= per_run + 25, counts
    headline = json.loads((study.path / "metrics/theory/degradation.json").read_text())
    assert set(headline) >= {"plain_deeper_worse", "resnet_deeper_better"}


@pytest.mark.slow
def test_results_publish_the_study_with_its_theory_pdf(study: PipelineRepo) -> None:
    commit = study.run("git", "rev-parse", "HEAD").stdout.strip()
    attempt = {"started": "", "ended": "", "wall_s": 60.0, "status": 0, "commit": commit}
    (study.path / "logs").mkdir(exist_ok=True)
    (study.path / "logs/full-runs.jsonl").write_text(json.dumps(attempt) + "\n")
    study.run("python", "-m", "mobilenet_study.results", "full")
    published = study.path / "results/full"
    assert (published / "theory.pdf").read_bytes() == (
        study.path / "reports/theory.pdf"
    ).read_bytes()
    assert (
        "[results/full/theory.pdf](results/full/theory.pdf)"
        in (published / "summary.md").read_text()
    )
