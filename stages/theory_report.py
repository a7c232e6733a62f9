"""Stage `theory_report`: reports/theory.pdf, compiled by Typst from docs/theory.typ, which
reads the theory and residual stages' metrics and figures as it is built."""

from mobilenet_study.layout import THEORY_PDF
from mobilenet_study.stage import run_stage
from mobilenet_study.theory_pdf import SOURCE, build


def main() -> None:
    build(SOURCE, THEORY_PDF)


if __name__ == "__main__":
    run_stage(main)
