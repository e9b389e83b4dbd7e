"""The Python side of the SmolLM2 comparison: what `ecco generate --model SmolLM2.gguf --prompt P
--max-new-tokens 20 --attribution grad_x_input --activations` does, with `transformers` and captum
(Ecco 0.1.2 does the same through a custom model config): load the GGUF, generate greedily, capture
the FFN neurons (the input of every `down_proj`) over the generated sequence, and attribute each
generated token with InputXGradient over the token embeddings.

Run with the fixture environment's Python (scripts/fixtures/requirements*.txt) and time the whole
process: python smollm2_python.py [N_TOKENS]
"""

import os
import sys
from pathlib import Path

import torch
from captum.attr import InputXGradient
from transformers import AutoModelForCausalLM, AutoTokenizer

NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "The capital of France is"


def main():
    n_new = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    directory = Path(os.environ.get("ECCO_SMOLLM2_DIR", Path.home() / ".cache" / "ecco-rs" / "smollm2"))
    tok = AutoTokenizer.from_pretrained(str(directory), gguf_file=NAME)
    model = AutoModelForCausalLM.from_pretrained(str(directory), gguf_file=NAME, dtype=torch.float32).eval()
    model.lm_head.weight = model.model.embed_tokens.weight
    ids = tok(PROMPT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n_new, do_sample=False, eos_token_id=tok.eos_token_id)
    all_ids = out[0].tolist()
    n = len(ids)

    activations = []
    hooks = [layer.mlp.down_proj.register_forward_pre_hook(lambda m, a: activations.append(a[0].detach())) for layer in model.model.layers]
    with torch.no_grad():
        model(torch.tensor([all_ids[:-1]]))
    for h in hooks:
        h.remove()

    wte = model.model.embed_tokens.weight

    def forward(embeds):
        return torch.softmax(model(inputs_embeds=embeds).logits[:, -1, :], dim=-1)

    attributions = []
    for k in range(len(all_ids) - n):
        embeds = wte[torch.tensor([all_ids[: n + k]])].detach()
        a = InputXGradient(forward).attribute(embeds, target=all_ids[n + k]).detach()
        scores = a.norm(dim=-1)[0]
        attributions.append((scores / scores.sum()).tolist())
    print(tok.decode(all_ids), len(activations), len(attributions))


if __name__ == "__main__":
    main()
