"""The theory questions answered by experiment (stages `theory_*`), and reports/theory.pdf.

The modules are imported one by one (this file imports none), so a stage depends only on what
it runs:

- :mod:`.config`: params.yaml `theory:` as typed, validated settings.
- :mod:`.nets`: the networks: a deep plain CNN of 3×3 convs (with or without BatchNorm and
  shortcuts) covers the plain ReLU net of Q1a/b and the CIFAR plain-n and ResNet-n of He et
  al. (2016, §4.2); initialisations zero, constant, Xavier and He.
- :mod:`.propagation`: activation scale and gradient norm per layer at initialisation, and the
  closed-form expectation they are compared with (Q1a, Q1b).
- :mod:`.symmetry`: distinct filters per layer after training from a symmetric start (Q1b).
- :mod:`.training`: the short SGD runs, with training-loss, training-error and first-layer
  gradient curves (Xavier against He; degradation and shortcuts, Q1a, Q1c).
- :mod:`.gradcam_checks`: how much of Grad-CAM's raw map ReLU removes, and a deletion test (Q4b).
- :mod:`.document`: the PDF, compiled by Typst from docs/theory.typ, which reads the metrics.
"""
