"""The study's results across runs: the table, its figures and the report (stage `aggregate`).

- :mod:`~mobilenet_study.study.table`: read every run and the cost table into one table,
  the metrics file, the Pareto frontier, the training curves.
- :mod:`~mobilenet_study.study.figures`: PNGs for the report and CSVs for dvc.yaml's plots.
- :mod:`~mobilenet_study.study.report`: reports/study.md, sentences computed from the numbers.
"""
