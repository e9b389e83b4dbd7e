"""One whole-process job of Python Ecco 0.1.2, timed from the outside by compare.py.

    python ecco_job.py SCENARIO MODEL_DIR

Scenarios (the same work as the `ecco` commands compare.py runs):
  greedy20   generate 20 greedy tokens
  gxi20      generate 20 greedy tokens with grad_x_input attribution and activations
  ig5        generate 5 greedy tokens with integrated gradients
  forward    one forward pass over ~150 tokens with activations and hidden states
  nmf        the forward pass, then NMF with 10 components
"""
import sys
import types

# Ecco imports IPython.display at import time to show its views in Jupyter; nothing is shown
# here, so a stub stands in (this only makes Ecco's start-up faster).
ipython = types.ModuleType("IPython")
ipython.display = types.ModuleType("IPython.display")
sys.modules["IPython"] = ipython
sys.modules["IPython.display"] = ipython.display

import matplotlib.cm  # noqa: E402

if not hasattr(matplotlib.cm, "get_cmap"):  # removed in matplotlib 3.9; Ecco imports it
    import matplotlib

    matplotlib.cm.get_cmap = matplotlib.colormaps.get_cmap

import ecco  # noqa: E402

from texts import FORWARD_TEXT, PROMPT  # noqa: E402

GPT2_CONFIG = {
    "embedding": "transformer.wte.weight",
    "type": "causal",
    "activations": [r"mlp\.c_proj"],
    "token_prefix": "Ġ",
    "partial_token_prefix": "",
}


def main() -> None:
    scenario, model = sys.argv[1], sys.argv[2]
    activations = scenario in ("gxi20", "forward", "nmf")
    lm = ecco.from_pretrained(model, model_config=GPT2_CONFIG, activations=activations,
                              verbose=False, gpu=False)
    if scenario == "greedy20":
        out = lm.generate(PROMPT, generate=20, do_sample=False)
    elif scenario == "gxi20":
        out = lm.generate(PROMPT, generate=20, do_sample=False, attribution=["grad_x_input"])
    elif scenario == "ig5":
        out = lm.generate(PROMPT, generate=5, do_sample=False, attribution=["ig"])
    elif scenario in ("forward", "nmf"):
        inputs = lm.tokenizer([FORWARD_TEXT], return_tensors="pt")
        out = lm(inputs)
        if scenario == "nmf":
            nmf = out.run_nmf(n_components=10)
            print(type(nmf).__name__, file=sys.stderr)
    else:
        sys.exit(f"unknown scenario {scenario}")
    print(getattr(out, "output_text", None) or "", file=sys.stderr)


if __name__ == "__main__":
    main()
