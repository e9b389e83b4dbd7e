"""ecco_rs: Ecco's Python API on ecco-rs, the Rust successor of Ecco.

::

    import ecco_rs as ecco

    lm = ecco.from_pretrained("ecco-demo", activations=True)
    output = lm.generate("The capital of France is", generate=1, attribution=["grad_x_input"])
    output.saliency()                      # the page, inline in a notebook
    nmf = output.run_nmf(n_components=2)
    nmf.explore()

Everything is computed by the Rust ``ecco`` crate (the same numbers as the ``ecco``
command); arrays are numpy, views are the self-contained HTML report.
"""

from ecco_rs._ecco_rs import DEMO_NAME
from ecco_rs._errors import EccoError, EccoFileNotFoundError, EccoValueError
from ecco_rs._lm import LM, from_pretrained, load
from ecco_rs._output import NMF, OutputSeq
from ecco_rs._views import Attributions, Explorer, LayerPredictions, Rankings, RankingsWatch, Report, View

__all__ = [
    "DEMO_NAME",
    "LM",
    "NMF",
    "Attributions",
    "EccoError",
    "EccoFileNotFoundError",
    "EccoValueError",
    "Explorer",
    "LayerPredictions",
    "OutputSeq",
    "Rankings",
    "RankingsWatch",
    "Report",
    "View",
    "from_pretrained",
    "load",
]
