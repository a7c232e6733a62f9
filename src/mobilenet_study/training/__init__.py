"""Training one grid point (stage `train@<run>`), in rooms; this file imports none of them, so
a module depends only on what it uses:

- :mod:`.recipe`: params.yaml `train:` (:class:`~.recipe.TrainParams`), the device, the seed,
  the optimiser and the learning-rate schedule.
- :mod:`.pipeline`: the data pipeline — the prepared splits held on the training device, and
  batched crop, flip, resize and normalisation there (no DataLoader).
- :mod:`.checkpoint`: what an epoch checkpoint holds, and when it may be resumed.
- :mod:`.loop`: the training loop and evaluation.
- :mod:`.artifacts`: what a run writes (model, metrics, curves, predictions) and how a trained
  model is read back (Grad-CAM, deploy).
"""
