"""The HTML page `dvc plots show` renders into, with Vega, Vega-Lite and Vega-Embed inlined.

DVC's default page loads the three libraries from a CDN, so on an offline machine it stays
blank. `make setup` installs them from the npm registry (package-lock.json pins the versions)
and runs this module, which writes a page template with their code inlined to the path that
`.dvc/config` names under `plots.html_template`; plain `dvc plots show` then uses it.

Why inlined rather than ``<script src="../node_modules/...">``: DVC writes index.html to
``<cwd>/dvc_plots/`` by default and to any folder with ``-o DIR``, so no relative path from the
page to node_modules is right for every call, and a page that carries its libraries still works
when it is moved, copied or mailed. The cost is about 0.8 MB per page.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from mobilenet_study.files import write_text
from mobilenet_study.params import StudyError
from mobilenet_study.stage import run_stage

# Load order matters: vega-lite's and vega-embed's browser builds read the globals that the
# builds before them define (`vega`, then `vegaLite`).
LIBRARIES = ("vega", "vega-lite", "vega-embed")

# dvc_render fills these three placeholders by plain string replacement, anywhere in the page.
# The page leaves out `{scripts}` on purpose: DVC would put its CDN <script> tags there, which
# fail offline and, online, would load a second copy of the libraries over the inlined one.
PLACEHOLDERS = ("{scripts}", "{plot_divs}", "{refresh_tag}")

# Text that would end or confuse an inline <script> element (HTML's script-data states).
_UNSAFE_IN_SCRIPT = re.compile(r"</script|<!--|<script", re.IGNORECASE)

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {{refresh_tag}}
    <title>DVC Plot</title>
{libraries}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def library_script(node_modules: Path, package: str) -> tuple[str, str]:
    """The installed version of ``package`` and the code of its browser build.

    The build is the file that the package's ``jsdelivr`` field names: the one DVC's default
    page fetches from ``https://cdn.jsdelivr.net/npm/<package>@<version>``.
    """
    manifest = node_modules / package / "package.json"
    if not manifest.is_file():
        raise StudyError(f"{manifest} is missing: run `make setup` (it runs `npm ci`)")
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    build = node_modules / package / meta["jsdelivr"]
    code = build.read_text(encoding="utf-8")
    if _UNSAFE_IN_SCRIPT.search(code) or any(p in code for p in PLACEHOLDERS):
        # Escaping these inside minified code could change it; refusing is the safe side.
        raise StudyError(f"{build} contains text that cannot be inlined in a <script> element")
    return meta["version"], code


def build_template(node_modules: Path) -> str:
    """The page template, with the three libraries from ``node_modules`` inlined in order."""
    blocks = []
    for package in LIBRARIES:
        version, code = library_script(node_modules, package)
        blocks.append(f"    <!-- {package} {version} -->\n    <script>\n{code}\n    </script>")
    return PAGE.format(libraries="\n".join(blocks))


def configured_template(repo_root: Path) -> Path:
    """Where `dvc plots show` reads its page template: ``plots.html_template``, as DVC resolves it.

    DVC joins a relative path to the `.dvc` folder (dvc/commands/plots.py); asking DVC's own
    config keeps `.dvc/config` the one place that names the file.
    """
    from dvc.repo import Repo  # slow import; only the command line needs it

    with Repo(str(repo_root)) as repo:
        configured = repo.config.get("plots", {}).get("html_template")
        if not configured:
            raise StudyError(f"{repo_root}/.dvc/config sets no plots.html_template")
        return (Path(repo.dvc_dir) / configured).resolve()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="project root")
    parser.add_argument(
        "--output", type=Path, help="where to write (default: plots.html_template from DVC)"
    )
    args = parser.parse_args(argv)
    output = args.output or configured_template(args.repo)
    write_text(output, build_template(args.repo / "node_modules"))
    print(f"wrote {output}")


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1:]))
