"""The theory questions answered by experiment (stages `theory_init`, `theory_degradation`
and `theory_gradcam`, which depend on this whole folder; this file imports none of it):

- :mod:`.config`: params.yaml `theory:` as typed, validated settings.
- :mod:`.nets`: the networks: a deep plain CNN of 3×3 convs (with or without BatchNorm and
  shortcuts) covers the plain ReLU net of Q1a/b and the CIFAR plain-n and ResNet-n of He et
  al. (2016, §4.2); initialisations zero, constant, Xavier and He.
- :mod:`.propagation`: activation scale and gradient norm per layer at initialisation, and the
  closed-form expectation they are compared with (Q1a, Q1b).
- :mod:`.symmetry`: distinct filters per layer after training from a symmetric start (Q1b).
- :mod:`.training`: the short SGD runs, with training-loss, training-error and first-layer
  gradient curves (Xavier against He; degradation and shortcuts, Q1a, Q1c).

Grad-CAM's ReLU measured on a trained run (Q4b) is :mod:`mobilenet_study.gradcam_checks`, beside
the Grad-CAM it measures; the PDF that quotes every answer is :mod:`mobilenet_study.theory_pdf`.
"""
