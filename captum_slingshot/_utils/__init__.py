"""Private helpers shared across the package, one module per job.

Nothing outside ``captum_slingshot`` should import from here; inside the package this is the only
place from which modules share helpers (no module imports another's underscored names).

* :mod:`.registry` -- named registries (transforms, checks, strategies, transform sets,
  parametrizations, models) with one-line descriptions;
* :mod:`.layers` -- finding a layer of a model by module or dotted name;
* :mod:`.selectors` -- Captum-style ``neuron_selector`` handling;
* :mod:`.hooks` -- reading one layer's output (or input) with a forward hook that never leaks;
* :mod:`.attention` -- telling transformers apart, and attention on the math kernel (double backward);
* :mod:`.modes` -- eval mode with every module's own training flag restored;
* :mod:`.devices` -- where a model lives;
* :mod:`.statedicts` -- whether a state dict fits a model (missing, unexpected, mis-shaped keys);
* :mod:`.data` -- iterating tensors, ``(inputs, labels)`` tuples, datasets and loaders alike;
* :mod:`.seeding` -- the named random streams of long runs;
* :mod:`.settings` -- settings dataclasses as flat, named options (command line, YAML files).
"""
