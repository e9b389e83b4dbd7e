//! Shared helpers of the browser tests: synthetic traces and reports of any size, built in
//! memory (no model), the two browser clients (DevTools for Chromium, WebDriver BiDi for
//! Firefox) and the checks both browsers must pass.

#![allow(dead_code)]

pub mod bidi;
pub mod cdp;
pub mod checks;

use std::path::PathBuf;

use ecco_core::{F32Tensor, ModelInfo, ModelKind, Trace};
use ecco_viz::{
    EvaluationRow, EvaluationView, LayerPredictionsView, NeuronLoading, NmfView, Prediction, RankingsView, RankingsWatchView, Report,
    attention_view, neurons_view,
};

/// Where a browser is: the path in the environment variable `env`, or the first of `names`
/// found on `PATH`.
pub fn find_browser(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// `Ok(None)` when browser tests are switched off with `ECCO_SKIP_BROWSER_TESTS=1`; otherwise
/// the browser [`find_browser`] finds, or an error with the one-line `hint`.
pub fn browser_or_skip(env: &str, names: &[&str], hint: &str) -> anyhow::Result<Option<PathBuf>> {
    if std::env::var("ECCO_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("browser tests skipped: ECCO_SKIP_BROWSER_TESTS=1");
        return Ok(None);
    }
    match find_browser(env, names) {
        Some(p) => Ok(Some(p)),
        None => anyhow::bail!("{hint}"),
    }
}

/// A deterministic xorshift generator: test data without a `rand` dependency.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Uniform in `[0, 1)`.
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn info(n_layers: usize, n_heads: usize) -> ModelInfo {
    ModelInfo {
        name: "synthetic-gpt2".into(),
        family: "gpt2".into(),
        kind: ModelKind::Causal,
        n_layers,
        hidden_size: 768,
        n_heads,
        intermediate_size: 3072,
        vocab_size: 50257,
        max_positions: Some(1024),
    }
}

/// Normalised peaky weights (like real attention and attribution): `exp(4·u)`.
fn peaky(rng: &mut Rng, n: usize) -> Vec<f32> {
    let raw: Vec<f32> = (0..n).map(|_| (4.0 * rng.next()).exp()).collect();
    let sum: f32 = raw.iter().sum();
    raw.into_iter().map(|x| x / sum).collect()
}

/// A report with every view over `tokens` (the first `n_input` are the prompt), on a model of
/// `n_layers` layers and 12 heads, with `methods` attribution methods.
pub fn synthetic_report(tokens: &[String], n_input: usize, n_layers: usize, methods: usize) -> anyhow::Result<Report> {
    let n = tokens.len();
    let n_heads = 12;
    let mut rng = Rng::new(7);
    let ids: Vec<u32> = (0..n as u32).map(|i| 100 + i).collect();
    let mut trace = Trace::new(&info(n_layers, n_heads), "flex", tokens.to_vec(), ids.clone(), n_input);
    for m in ["grad_x_input", "integrated_gradients", "gradient"].iter().take(methods) {
        let rows = (n_input..n).map(|t| peaky(&mut rng, t)).collect();
        trace.attributions.insert((*m).to_owned(), rows);
    }
    let mut report = Report::from_trace(&trace)?;
    let positions = n - 1;
    let mut att = Vec::with_capacity(n_layers * n_heads * positions * positions);
    for _ in 0..n_layers * n_heads {
        for q in 0..positions {
            let row = peaky(&mut rng, q + 1);
            att.extend_from_slice(&row);
            att.extend(std::iter::repeat_n(0.0, positions - q - 1));
        }
    }
    let att = F32Tensor::new("attention.decoder", vec![n_layers, n_heads, positions, positions], att)?;
    report.attention = Some(attention_view("attention.decoder", &att, 8)?);
    let neurons = 64;
    let acts: Vec<f32> = (0..n_layers * neurons * positions).map(|_| rng.next() * 2.0 - 0.2).collect();
    let acts = F32Tensor::new("activations.decoder", vec![n_layers, neurons, positions], acts)?;
    let layers: Vec<usize> = (0..n_layers).collect();
    report.neurons = Some(neurons_view("activations.decoder", &acts, &layers, None, 8)?);
    let texts: Vec<String> = report.tokens.tokens.iter().map(|t| t.text.clone()).collect();
    let rank = |rng: &mut Rng, l: usize| 1 + ((50257.0 * rng.next()).powf(1.0 - l as f32 / n_layers as f32)) as usize;
    report.rankings = Some(RankingsView {
        lens: "normed".into(),
        layers: layers.clone(),
        positions: (n_input..n).collect(),
        tokens: texts[n_input..].to_vec(),
        rankings: (0..n_layers).map(|l| (n_input..n).map(|_| rank(&mut rng, l)).collect()).collect(),
        vocab_size: 50257,
    });
    report.rankings_watch = Some(RankingsWatchView {
        lens: "normed".into(),
        position: n_input,
        watch: ids[..2.min(n)].to_vec(),
        tokens: texts[..2.min(n)].to_vec(),
        layers: layers.clone(),
        rankings: (0..n_layers).map(|l| (0..2.min(n)).map(|_| rank(&mut rng, l)).collect()).collect(),
        vocab_size: 50257,
    });
    report.layer_predictions = Some(LayerPredictionsView {
        position: n_input,
        lens: "normed".into(),
        layers: layers.clone(),
        predictions: (0..n_layers)
            .map(|_| {
                let mut probs: Vec<f32> = peaky(&mut rng, 10);
                probs.sort_by(|a, b| b.total_cmp(a));
                probs
                    .into_iter()
                    .enumerate()
                    .map(|(k, p)| Prediction {
                        token_id: ids[k % n],
                        token: tokens[k % n].clone(),
                        text: texts[k % n].clone(),
                        prob: p,
                        ranking: k + 1,
                    })
                    .collect()
            })
            .collect(),
    });
    report.nmf = Some(NmfView {
        layers,
        components: (0..5).map(|_| (0..positions).map(|_| ecco_viz::round_sig(rng.next() * rng.next() * 3.0)).collect()).collect(),
        loadings: (0..5)
            .map(|k| (0..3).map(|j| NeuronLoading { layer: k % n_layers, neuron: 10 * j + k, weight: 0.5 }).collect())
            .collect(),
        reconstruction_error: 12.5,
    });
    let grid: Vec<f64> = (0..21).map(|i| f64::from(i) / 20.0).collect();
    let curve = |rng: &mut Rng, falling: bool| -> Vec<f64> {
        let speed = 1.0 + 6.0 * f64::from(rng.next());
        grid.iter().map(|x| if falling { 0.8 * (-speed * x).exp() } else { 0.8 * (1.0 - (-speed * x).exp()) }).collect()
    };
    report.evaluation = Some(EvaluationView {
        baseline: "eos".into(),
        n_predictions: n - n_input,
        grid: grid.clone(),
        rows: ["grad_x_input", "integrated_gradients", "random"]
            .iter()
            .map(|m| {
                let (deletion, insertion) = (curve(&mut rng, true), curve(&mut rng, false));
                EvaluationRow {
                    method: (*m).into(),
                    random: *m == "random",
                    deletion_auc: deletion.iter().sum::<f64>() / 21.0,
                    insertion_auc: insertion.iter().sum::<f64>() / 21.0,
                    comprehensiveness: 0.4,
                    sufficiency: 0.2,
                    deletion,
                    insertion,
                }
            })
            .collect(),
    });
    Ok(report)
}

/// `n` GPT-2 style pieces: words with `Ġ`, continuations, punctuation and a newline.
pub fn pieces(n: usize) -> Vec<String> {
    const WORDS: [&str; 12] = ["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis", "ĠParis", ".", "Ċ", "Ġun", "believ", "able", ","];
    (0..n).map(|i| WORDS[i % WORDS.len()].to_owned()).collect()
}
