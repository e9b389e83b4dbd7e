//! Model benchmarks on a distilgpt2-sized checkpoint: a capturing forward pass over ~150 tokens
//! and 20 greedy tokens with the KV cache.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ecco_benches::{bench_model, prompt_of, set_up};
use ecco_core::CaptureSpec;
use ecco_models::{DeviceKind, GenerateOptions, capture_pass, generate, load};

fn benches(c: &mut Criterion) {
    let dir = set_up("writing the bench model", bench_model());
    let loaded = set_up("loading the bench model", load(&dir, DeviceKind::Flex));
    let ids = set_up("tokenising the prompt", loaded.tokenizer.encode(&prompt_of(150), false)).ids;
    let lm = loaded.model.as_lm();
    let capture = CaptureSpec { hidden_states: true, activations: true, ..CaptureSpec::none() };
    let mut group = c.benchmark_group("forward");
    group.sample_size(10);
    group.bench_function("150_tokens", |b| b.iter(|| capture_pass(lm, black_box(&ids), &capture)));
    group.finish();

    let causal = set_up("the bench model as a causal LM", loaded.model.as_causal().ok_or("it is not causal"));
    let prompt = &ids[..20];
    let opts = GenerateOptions { max_new_tokens: 20, sampling: None, eos_token_id: None };
    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    group.bench_function("20_greedy", |b| b.iter(|| generate(causal, black_box(prompt), &opts, |_| {})));
    group.finish();
}

criterion_group!(model, benches);
criterion_main!(model);
