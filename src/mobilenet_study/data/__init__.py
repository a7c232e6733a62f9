"""CIFAR-10 for the study: fetch, verify and prepare it once; later stages load the result.

Sources (``data.source`` in params.yaml, the kind detected): the official python archive by
URL or local path, its extracted ``cifar-10-batches-py/`` folder, or an image-folder mirror.
The output is ``data/prepared/{train,test}.npz`` and ``summary.json`` beside them, plus
``metrics/data.json``.

This file imports none of the modules, so that a stage that only reads the prepared data does
not depend on the code that fetches it (and a change there retrains nothing):

- :mod:`.cifar`: the dataset's facts (classes, image shape, splits) and :class:`~.cifar.Split`.
- :mod:`.prepared`: the prepared copy — saving it, and reading it back
  (:func:`~.prepared.load_split`, :func:`~.prepared.read_stats`, :func:`~.prepared.read_summary`);
  what every later stage uses.
- :mod:`.prepare`: the `download` stage's work: from any source kind to prepared arrays.
- :mod:`.source`: params.yaml `data:` and which kind of source a path or URL is.
- :mod:`.download`, :mod:`.archive`, :mod:`.image_folder`: fetching the archive, reading the
  archive or its batches, decoding an image folder.
- :mod:`.errors`: the one-paragraph errors each failure gives; :mod:`.figures`: the samples.
"""
