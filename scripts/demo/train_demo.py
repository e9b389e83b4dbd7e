#!/usr/bin/env python3
"""Trains the demo model embedded in the `ecco` binary: a small GPT-2 that knows capitals.

Regenerate (from the repository root; versions pinned in scripts/fixtures/requirements.txt):

    python3 -m venv .venv && .venv/bin/pip install -r scripts/fixtures/requirements.txt
    .venv/bin/python scripts/demo/train_demo.py

Everything is generated here and seeded: the corpus (facts such as "The capital of France is
Paris.", numbered lists, counting), a byte-level BPE tokenizer trained on it (every word of the
corpus is one token, e.g. `ĠFrance`, `ĠParis`), and a 4-layer GPT-2 trained on one CPU thread
with deterministic torch until it names every capital (a few minutes). It writes
`fixtures/demo/{config.json, model.safetensors (f16), tokenizer.json, reference.json}`;
`reference.json` holds what `transformers` computes on the saved (f16) weights: greedy
continuations with their probabilities, Ecco's `grad_x_input` attribution and the normed logit
lens ranks, which the Rust tests compare against.
"""

import argparse
import json
import random
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "fixtures" / "demo"
SEED = 1234
EOS = "<|endoftext|>"

# Single-word countries and capitals, so that each is one token.
CAPITALS = [
    ("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Germany", "Berlin"),
    ("Japan", "Tokyo"), ("Egypt", "Cairo"), ("Russia", "Moscow"), ("China", "Beijing"),
    ("Greece", "Athens"), ("Portugal", "Lisbon"), ("Austria", "Vienna"), ("Poland", "Warsaw"),
    ("Hungary", "Budapest"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"), ("Ireland", "Dublin"), ("Belgium", "Brussels"),
    ("Netherlands", "Amsterdam"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"),
    ("Serbia", "Belgrade"), ("Croatia", "Zagreb"), ("Ukraine", "Kyiv"), ("Turkey", "Ankara"),
    ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Syria", "Damascus"), ("Lebanon", "Beirut"),
    ("Jordan", "Amman"), ("Kenya", "Nairobi"), ("Nigeria", "Abuja"), ("Ghana", "Accra"),
    ("Senegal", "Dakar"), ("Morocco", "Rabat"), ("Tunisia", "Tunis"), ("Sudan", "Khartoum"),
    ("Peru", "Lima"), ("Chile", "Santiago"), ("Colombia", "Bogota"), ("Venezuela", "Caracas"),
    ("Ecuador", "Quito"), ("Cuba", "Havana"), ("Canada", "Ottawa"), ("Brazil", "Brasilia"),
    ("Australia", "Canberra"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"),
    ("Indonesia", "Jakarta"), ("Philippines", "Manila"), ("Pakistan", "Islamabad"),
    ("Nepal", "Kathmandu"), ("Afghanistan", "Kabul"), ("Iceland", "Reykjavik"),
    ("Estonia", "Tallinn"), ("Latvia", "Riga"), ("Lithuania", "Vilnius"), ("Albania", "Tirana"),
    ("Qatar", "Doha"),
]
NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
THINGS = ["red", "green", "blue", "apple", "bread", "milk", "cat", "dog", "bird", "tree", "river", "stone"]

# Prompts whose transformers reference the Rust tests compare against.
REFERENCE_PROMPTS = [
    ("The capital of France is", 4),
    ("The capital of Japan is", 4),
    ("one two three four", 4),
]

# Model shape and training schedule: small enough to train in minutes on one core.
CONFIG = dict(n_layer=4, n_embd=128, n_head=4, n_positions=64, activation_function="gelu_new")
STEPS, BATCH, LR, EVAL_EVERY = 3000, 24, 3e-3, 100


def sentences(rng: random.Random) -> list[str]:
    """One corpus draw: facts in several phrasings, numbered lists, counting."""
    out = []
    for country, capital in CAPITALS:
        out += [
            f"The capital of {country} is {capital}.",
            f"The capital of {country} is {capital}.",
            f"{capital} is the capital of {country}.",
            f"Q: What is the capital of {country}? A: {capital}.",
        ]
    for _ in range(40):
        start = rng.randrange(0, 3)
        length = rng.randrange(6, 10)
        out.append(" ".join(NUMBERS[start:start + length]) + ".")
        out.append(", ".join(str(i) for i in range(start + 1, start + 1 + length)) + ".")
        items = rng.sample(THINGS, rng.randrange(2, 5))
        out.append(" ".join(f"{i + 1}. {item}" for i, item in enumerate(items)))
    return out


def train_tokenizer(corpus: list[str]) -> Tokenizer:
    """Byte-level BPE as GPT-2's (no prefix space); large enough that every word merges whole."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(corpus, trainer)
    for country, capital in CAPITALS:
        for word in (f" {country}", f" {capital}"):
            ids = tok.encode(word).ids
            assert len(ids) == 1, f"{word!r} is {len(ids)} tokens"
    return tok


def batches(tok: Tokenizer, rng: random.Random, n_pos: int):
    """Examples of `n_pos` tokens: sentences joined by spaces, each example starting at a
    sentence at position 0 (no BOS, as the CLI's prompts start)."""
    pool = [tok.encode(s).ids for s in sentences(rng)]
    space_pool = [tok.encode(" " + s).ids for s in sentences(rng)]
    while True:
        xs, ys = [], []
        for _ in range(BATCH):
            ids = list(rng.choice(pool))
            while len(ids) < n_pos:
                ids += rng.choice(space_pool)
            ids = ids[:n_pos]
            xs.append(ids)
            ys.append(ids)
        yield torch.tensor(xs), torch.tensor(ys)


def greedy(model, ids: list[int], n: int):
    out = model.generate(
        torch.tensor([ids]), max_new_tokens=n, do_sample=False, attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        pad_token_id=model.config.eos_token_id, output_scores=True, return_dict_in_generate=True,
    )
    generated = out.sequences[0, len(ids):].tolist()
    probs = [float(torch.softmax(s[0], -1)[t]) for s, t in zip(out.scores, generated)]
    return generated, probs


def capital_accuracy(model, tok: Tokenizer) -> tuple[int, float]:
    """How many capitals greedy decoding names after "The capital of X is", and the lowest
    probability it gives a right one."""
    right, low = 0, 1.0
    with torch.no_grad():
        for country, capital in CAPITALS:
            ids = tok.encode(f"The capital of {country} is").ids
            p = torch.softmax(model(torch.tensor([ids])).logits[0, -1], -1)
            target = tok.token_to_id(f"Ġ{capital}")
            right += int(int(p.argmax()) == target)
            low = min(low, float(p[target]))
    return right, low


def grad_x_input(model, ids: list[int], target: int) -> list[float]:
    """Ecco 0.1.2's attribution: d softmax(logits[-1])[target] / d inputs_embeds, times the
    embeddings, L2 over the hidden dimension, normalised to sum 1."""
    emb = model.transformer.wte.weight[torch.tensor(ids)].detach().clone().unsqueeze(0).requires_grad_(True)
    prob = torch.softmax(model(inputs_embeds=emb).logits[0, -1], -1)[target]
    (grad,) = torch.autograd.grad(prob, emb)
    norms = (grad * emb).detach()[0].norm(dim=-1)
    return (norms / norms.sum()).tolist()


def normed_ranks(model, ids: list[int], target: int) -> list[int]:
    """Rank of `target` at the last position for each block's output under the normed lens
    (final layer norm, then the tied LM head); the last block's output is already normed."""
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
        wte = model.transformer.wte.weight
        hidden = out.hidden_states
        ranks = []
        for layer in range(1, len(hidden)):
            h = hidden[layer][0, -1]
            if layer < len(hidden) - 1:
                h = model.transformer.ln_f(h)
            logits = h @ wte.T
            ranks.append(int((logits > logits[target]).sum()) + 1)
    return ranks


def reference(model, tok: Tokenizer) -> dict:
    cases = []
    for prompt, n in REFERENCE_PROMPTS:
        enc = tok.encode(prompt)
        generated, probs = greedy(model, enc.ids, n)
        cases.append({
            "prompt": prompt, "prompt_ids": enc.ids, "prompt_tokens": enc.tokens, "max_new_tokens": n,
            "generated_ids": generated, "generated_tokens": [tok.id_to_token(i) for i in generated],
            "generated_text": tok.decode(generated), "probs": probs,
            "grad_x_input_first": grad_x_input(model, enc.ids, generated[0]),
            "normed_ranks_first": normed_ranks(model, enc.ids, generated[0]),
        })
    right, low = capital_accuracy(model, tok)
    return {"cases": cases, "capitals_right": right, "capitals_total": len(CAPITALS), "lowest_capital_prob": low}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output directory (default: fixtures/demo)")
    out = parser.parse_args().out
    started = time.time()
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = random.Random(SEED)
    corpus = sentences(random.Random(SEED))
    # Sentences also follow a space (" The", " Q:"), as they do inside training examples.
    tok = train_tokenizer(corpus + [" " + s for s in corpus])
    eos = tok.token_to_id(EOS)
    config = GPT2Config(
        vocab_size=tok.get_vocab_size(), bos_token_id=eos, eos_token_id=eos,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **CONFIG,
    )
    model = GPT2LMHeadModel(config)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100))
    data = batches(tok, rng, config.n_positions)
    model.train()
    for step in range(1, STEPS + 1):
        x, y = next(data)
        loss = model(x, labels=y).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % EVAL_EVERY == 0:
            model.eval()
            right, low = capital_accuracy(model, tok)
            model.train()
            print(f"step {step}: loss {loss.item():.3f}, capitals {right}/{len(CAPITALS)}, lowest p {low:.3f}, {time.time() - started:.0f}s", flush=True)
            if right == len(CAPITALS) and low > 0.5:
                break
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(out, safe_serialization=True)
    (out / "generation_config.json").unlink(missing_ok=True)
    tok.save(str(out / "tokenizer.json"), pretty=False)
    # The reference is computed on the weights as saved (f16), widened to f32 as ecco-rs does.
    saved = GPT2LMHeadModel.from_pretrained(out, dtype=torch.float32).eval()
    ref = reference(saved, tok)
    ref["training"] = {"steps": step, "seed": SEED, "seconds": round(time.time() - started, 1)}
    (out / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
    for case in ref["cases"]:
        print(f"{case['prompt']!r} -> {case['generated_text']!r} {[round(p, 3) for p in case['probs']]}")
        print(f"  grad_x_input {[round(a, 3) for a in case['grad_x_input_first']]}, ranks {case['normed_ranks_first']}")
    print(f"capitals {ref['capitals_right']}/{ref['capitals_total']}; done in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
