"""The inputs both sides of the comparison read."""

PROMPT = "The quick brown fox jumps over the lazy dog"

# About 150 GPT-2 tokens.
FORWARD_TEXT = (
    "Ecco is a Python library for exploring and explaining Natural Language Processing models "
    "using interactive visualizations. It provides multiple interfaces to aid the explanation "
    "and intuition of Transformer-based language models. Ecco runs inside Jupyter notebooks. "
    "It is built on top of pytorch and transformers. The library shows which input tokens "
    "contributed to each generated token, how the prediction of the next token evolves through "
    "the layers of the model, and which neurons in the feed-forward layers fire together when "
    "the model reads a text. These views help researchers and engineers understand what a "
    "language model has learned, where it fails, and how its internal representations change "
    "from one layer to the next. Ecco-rs does the same work without Python or Jupyter."
)
