"""`dvc plots show` offline: a page template with Vega inlined; every plot renders, no network.

The browser tests render the plots of a copy of this pipeline whose `cost` stage has run on a
tiny grid (its tables are DVC-cached, not in git) with plain `dvc plots show`, open the page in
headless Chromium with every network request sent to a closed port, and count the charts
Vega-Embed drew. The negative control
renders the same plots with DVC's default (CDN) page, which must stay blank.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from dvc_render.html import PAGE_HTML
from dvc_render.vega import VegaRenderer

from mobilenet_study import plots_page
from mobilenet_study.params import StudyError

from .conftest import REPO_ROOT, make_pipeline_repo
from .test_train_stage import TINY_GRID

CHROMIUM = Path("/usr/bin/chromium")
VENV_BIN = str(Path(sys.executable).parent)

# Records uncaught errors and unhandled promise rejections (vegaEmbed returns a promise) in an
# attribute of <html>, where --dump-dom shows them. Injected as the first thing in <head>.
ERROR_RECORDER = """<script>
(function () {
  function record(message) {
    var root = document.documentElement;
    root.setAttribute("data-errors", (root.getAttribute("data-errors") || "") + message + "\\n");
  }
  window.addEventListener("error", function (e) { record("error: " + e.message); });
  window.addEventListener("unhandledrejection", function (e) { record("rejection: " + e.reason); });
})();
</script>"""

# DVC's VegaRenderer.DIV: each chart is a div holding `var spec = {...}; vegaEmbed('#id', spec);`.
VEGA_DIV = re.compile(
    r"<div id = \"(?P<id>[^\"]+)\">\s*<script type = \"text/javascript\">\s*"
    r"var spec = (?P<spec>.*?);\s*vegaEmbed\('#(?P=id)', spec\);",
    re.DOTALL,
)


# --- the template, without npm or a browser ---------------------------------------------------


def _fake_package(node_modules: Path, name: str, version: str, code: str) -> None:
    folder = node_modules / name
    (folder / "build").mkdir(parents=True)
    meta = {"name": name, "version": version, "jsdelivr": f"build/{name}.min.js"}
    (folder / "package.json").write_text(json.dumps(meta))
    (folder / "build" / f"{name}.min.js").write_text(code)


@pytest.fixture
def fake_node_modules(tmp_path: Path) -> Path:
    root = tmp_path / "node_modules"
    for i, name in enumerate(plots_page.LIBRARIES):
        _fake_package(root, name, f"1.{i}.0", f"window.loaded_{i} = true;")
    return root


def test_template_inlines_libraries_in_load_order(fake_node_modules: Path) -> None:
    page = plots_page.build_template(fake_node_modules)
    positions = [page.index(f"window.loaded_{i} = true;") for i in range(3)]
    assert positions == sorted(positions)  # vega, then vega-lite, then vega-embed
    assert "<!-- vega-lite 1.1.0 -->" in page
    assert "{plot_divs}" in page and "{refresh_tag}" in page
    # No {scripts}: DVC would put its CDN <script> tags there.
    assert "{scripts}" not in page and "http" not in page
    assert '<meta charset="utf-8">' in page  # plot titles use α and ρ


@pytest.mark.parametrize("code", ["var s = '</script>';", "a = '<!--';", "x = '{plot_divs}';"])
def test_template_refuses_code_that_breaks_the_page(fake_node_modules: Path, code: str) -> None:
    (fake_node_modules / "vega-embed" / "build" / "vega-embed.min.js").write_text(code)
    with pytest.raises(StudyError, match="cannot be inlined"):
        plots_page.build_template(fake_node_modules)


def test_template_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="make setup"):
        plots_page.build_template(tmp_path / "node_modules")


def test_locked_versions_are_those_dvc_expects() -> None:
    """package-lock.json against the versions in DVC's default page (its CDN <script> tags)."""
    expected = dict(re.findall(r"npm/([a-z-]+)@([\d.]+)", VegaRenderer.SCRIPTS))
    assert set(expected) == set(plots_page.LIBRARIES)
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())
    locked = {name: lock["packages"][f"node_modules/{name}"]["version"] for name in expected}
    assert locked["vega-lite"] == expected["vega-lite"]
    assert locked["vega-embed"] == expected["vega-embed"]
    # vega-lite 5.2.0 declares the peer dependency vega ^5.21.0, one minor above DVC's 5.20.2
    # (npm ci refuses the pair), so vega may be newer within the same major version.
    major = expected["vega"].split(".")[0]
    assert locked["vega"].split(".")[0] == major
    assert tuple(map(int, locked["vega"].split("."))) >= tuple(
        map(int, expected["vega"].split("."))
    )


def test_dvc_config_names_the_template_make_setup_writes() -> None:
    # Under node_modules: git-ignored, and gone (so rewritten by `make setup`) after `npm ci`.
    path = plots_page.configured_template(REPO_ROOT)
    assert (REPO_ROOT / "node_modules").resolve() in path.parents


# --- the rendered page, in headless Chromium with no network --------------------------------


class _RenderedCharts(HTMLParser):
    """From a dumped DOM: the `marks` elements (canvas or svg) inside each chart div, and the
    errors the recorder wrote on <html>."""

    def __init__(self, chart_ids: set[str]) -> None:
        super().__init__()
        self.chart_ids = chart_ids
        self.divs: list[str | None] = []
        self.marks: dict[str, list[tuple[float, float]]] = {i: [] for i in chart_ids}
        self.errors = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.errors = attr.get("data-errors", "")
        if tag == "div":
            self.divs.append(attr.get("id"))
        if "marks" in attr.get("class", "").split():
            owner = next((d for d in reversed(self.divs) if d in self.chart_ids), None)
            if owner is not None:
                size = (float(attr.get("width") or 0), float(attr.get("height") or 0))
                self.marks[owner].append(size)

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self.divs:
            self.divs.pop()


def charts_with_data(page: str) -> list[str]:
    """Ids of the Vega charts DVC wrote whose spec holds data (a missing source gives `{}`)."""
    charts = [(m["id"], json.loads(m["spec"])) for m in VEGA_DIV.finditer(page)]
    assert page.count("vegaEmbed(") == len(charts), "a chart div DVC wrote was not recognised"
    return [chart_id for chart_id, spec in charts if spec]


def render_offline(index: Path, profile: Path) -> _RenderedCharts:
    """Load ``index`` (with the error recorder) in headless Chromium, no network; parse the DOM."""
    page = index.read_text(encoding="utf-8")
    assert "<head>" in page
    probe = index.with_name("probe.html")  # beside index.html: relative image paths still work
    probe.write_text(page.replace("<head>", "<head>\n" + ERROR_RECORDER, 1), encoding="utf-8")
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        # Every request, loopback included, goes to the discard port: nothing is reachable.
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        # Let scripts and Vega's promises run to completion before the DOM is dumped.
        "--virtual-time-budget=10000",
        "--dump-dom",
        probe.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "</html>" in result.stdout, result.stderr[-3000:]
    parsed = _RenderedCharts(set(charts_with_data(page)))
    parsed.feed(result.stdout)
    return parsed


def dvc_plots_show(out: Path, *args: str, cwd: Path = REPO_ROOT) -> Path:
    """Plain `dvc plots show` in a repository (this one by default: its .dvc/config, its
    plots), written to out."""
    env = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(
        ["dvc", "plots", "show", "-o", str(out), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "index.html"


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no {CHROMIUM}: `make setup-browser` installs Debian's chromium (root, apt)")
    return CHROMIUM


@pytest.fixture(scope="module")
def cost_repo(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the pipeline whose `cost` stage has run on the tiny grid (seconds)."""
    repo = make_pipeline_repo(tmp_path_factory.mktemp("cost") / "repo")
    repo.set_params({**TINY_GRID, "cost.warmup": 0, "cost.repeats": 3})
    repo.dvc("repro", "cost")
    return repo.path


@pytest.fixture(scope="module")
def offline_index(cost_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = plots_page.configured_template(REPO_ROOT)
    if not template.is_file():
        pytest.fail(f"{template} is missing: `make setup` writes it (npm ci, then plots_page)")
    out = tmp_path_factory.mktemp("offline") / "dvc_plots"
    return dvc_plots_show(out, "--html-template", str(template), cwd=cost_repo)


def test_every_plot_renders_offline(offline_index: Path, tmp_path: Path) -> None:
    page = offline_index.read_text(encoding="utf-8")
    assert "cdn.jsdelivr.net" not in page and "<script src=" not in page
    charts = charts_with_data(page)
    assert charts, "no Vega plot with data: did `cost` write plots/cost/cost.csv?"
    rendered = render_offline(offline_index, tmp_path / "profile")
    assert rendered.errors == ""
    for chart in charts:
        sizes = rendered.marks[chart]
        assert len(sizes) == 1, f"{chart}: {len(sizes)} rendered charts"
        assert min(sizes[0]) > 0, f"{chart}: drawn at {sizes[0]}"


def test_default_cdn_page_stays_blank_offline(
    cost_repo: Path, offline_index: Path, tmp_path: Path
) -> None:
    """Negative control: the same plots in DVC's default page (Vega from a CDN) draw nothing,
    so the test above can fail, and the browser really has no network."""
    default = tmp_path / "default.html"
    default.write_text(PAGE_HTML, encoding="utf-8")
    index = dvc_plots_show(tmp_path / "dvc_plots", "--html-template", str(default), cwd=cost_repo)
    page = index.read_text(encoding="utf-8")
    assert "cdn.jsdelivr.net" in page
    assert charts_with_data(page) == charts_with_data(offline_index.read_text(encoding="utf-8"))
    rendered = render_offline(index, tmp_path / "profile")
    assert "vegaEmbed is not defined" in rendered.errors
    assert all(not sizes for sizes in rendered.marks.values())
