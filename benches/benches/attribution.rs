//! Attribution benchmarks on a distilgpt2-sized checkpoint: `grad_x_input` for 20 generated
//! tokens and integrated gradients (50 steps) for 5.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ecco_attrib::{AttributionOptions, Method, Sequence, attribute};
use ecco_benches::{bench_model, prompt_of, set_up};
use ecco_models::{DeviceKind, load};

fn benches(c: &mut Criterion) {
    let dir = set_up("writing the bench model", bench_model());
    let loaded = set_up("loading the bench model", load(&dir, DeviceKind::Flex));
    let ids = set_up("tokenising the prompt", loaded.tokenizer.encode(&prompt_of(40), false)).ids;
    let lm = loaded.model.as_lm();
    let options = AttributionOptions::default();
    let mut group = c.benchmark_group("attribution");
    group.sample_size(10);
    for (method, generated) in [(Method::GradXInput, 20), (Method::IntegratedGradients, 5)] {
        // A 20-token prompt followed by `generated` tokens (which ones does not change the cost).
        let seq_ids = &ids[..20 + generated];
        let seq = Sequence { ids: seq_ids, n_input: 20 };
        group.bench_with_input(BenchmarkId::new(method.name(), generated), &seq, |b, seq| {
            b.iter(|| attribute(lm, black_box(*seq), method, &options, &mut |_| {}))
        });
    }
    group.finish();
}

criterion_group!(attribution, benches);
criterion_main!(attribution);
