"""Stage `download`: fetch or read CIFAR-10 from `data.source` and write the prepared copy."""

from __future__ import annotations

from pathlib import Path

from mobilenet_study.data.figures import samples_figure
from mobilenet_study.data.prepare import prepare
from mobilenet_study.data.prepared import save_prepared
from mobilenet_study.data.source import DataParams
from mobilenet_study.files import remove_outputs, save_figure, write_json
from mobilenet_study.layout import DATA_METRICS, DATA_PLOTS, DOWNLOADS, PREPARED
from mobilenet_study.params import load_params
from mobilenet_study.stage import run_stage


def main() -> None:
    params = DataParams.from_params(load_params())
    # Before any work, so that no output of an earlier source outlives a failure below.
    remove_outputs(PREPARED, DATA_METRICS, DATA_PLOTS)
    data = prepare(params, root=Path.cwd(), download_dir=DOWNLOADS)
    save_prepared(data, PREPARED)
    write_json(DATA_METRICS, data.metrics())
    title = f"CIFAR-10 training samples ({data.source.kind}, {data.image_format})"
    save_figure(samples_figure(data.splits["train"], title=title), DATA_PLOTS / "samples.png")


if __name__ == "__main__":  # the guard lets decoding workers (spawned) import this file
    run_stage(main)
