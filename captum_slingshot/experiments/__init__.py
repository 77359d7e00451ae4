"""The application layer: the demo, the study runner, and what they share with the command line.

* :mod:`.options` -- every setting as a flat option (model, data, parametrization, and each
  transform's own, generated from its settings dataclasses), YAML files and merging;
* :mod:`.loading` -- models, weights, natural data, parametrizations and targets from settings;
* :mod:`.manipulation` -- a registered transform built and fitted from merged settings;
* :mod:`.auditing` -- the audit's settings from the command line or a study file;
* :mod:`.records` -- run records (versions, loss summaries, JSON files);
* :mod:`.demo` and :mod:`.study` -- the demo and comparison studies.

The library (``captum_slingshot`` outside this package and :mod:`captum_slingshot.cli`) never
imports this package; the command line builds on it.
"""
