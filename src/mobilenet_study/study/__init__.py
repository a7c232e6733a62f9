"""The study's results across runs (stage `aggregate`): one table, its figures, the report.

- :mod:`.table`: every run's inputs read into one table (accuracy, its interval, cost,
  training time), the paired tests between runs (:class:`~.table.PairedTests`), the Pareto
  frontiers, the metrics file, the training curves, the confusion counts.
- :mod:`.stats`: Wilson intervals, the exact McNemar test, the spread over seeds (scipy).
- :mod:`.figures`: the accuracy figures (PNG) and the CSVs dvc.yaml's plots draw.
- :mod:`.multipliers`: what α and ρ cost and buy, step by step, and the measured cost scaling
  against α² and ρ².
- :mod:`.families`: MobileNet V1 against the baseline CNN (point by point, beside the paper's
  Table 4, and at equal MACs), and MobileNet V2 against V1.
- :mod:`.latency`: where the models run — ONNX Runtime latency in fp32 and int8, int8's
  accuracy cost, accuracy against latency, latency against the MACs.
- :mod:`.formatting`: how numbers, intervals, verdicts and tables are written.
- :mod:`.report`: reports/study.md, the sections above in order.
"""
