//! [`Output::evaluate`](crate::Output::evaluate) (`ecco evaluate`): which attribution can you
//! trust? Deletion and insertion AUC, comprehensiveness and sufficiency of every method in the
//! output, each beside a seeded random ranking (see [`ecco_attrib::evaluate`](mod@ecco_attrib::evaluate)
//! for the definitions and how they follow `interpreto` and `ferret`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use ecco_attrib::{Curves, EvaluateOptions as MetricOptions, Example, Method, Removal, Scores};
use ecco_core::{ModelKind, Trace};
use ecco_models::LoadedModel;
use serde::Serialize;

/// How a removed token is replaced: a special token of the tokenizer, or none (dropped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Baseline {
    /// `eos` for causal LMs, `mask` for masked LMs.
    #[default]
    Auto,
    /// The padding token (`[PAD]`, `<pad>`).
    Pad,
    /// The unknown token (`[UNK]`, `<unk>`).
    Unk,
    /// The end-of-sequence token (the config's `eos_token_id`, `</s>`, `<|endoftext|>`, `[SEP]`).
    Eos,
    /// The mask token (`[MASK]`, `<mask>`).
    Mask,
    /// Drop the token; a causal LM left with nothing reads its BOS/EOS token alone.
    Drop,
    /// Any token id.
    Id(u32),
}

impl FromStr for Baseline {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Self::Auto,
            "pad" => Self::Pad,
            "unk" => Self::Unk,
            "eos" => Self::Eos,
            "mask" => Self::Mask,
            "drop" => Self::Drop,
            other => match other.parse() {
                Ok(id) => Self::Id(id),
                Err(_) => return Err(format!("unknown baseline `{other}` (known: auto, pad, unk, eos, mask, drop, or a token id)")),
            },
        })
    }
}

impl fmt::Display for Baseline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Pad => f.write_str("pad"),
            Self::Unk => f.write_str("unk"),
            Self::Eos => f.write_str("eos"),
            Self::Mask => f.write_str("mask"),
            Self::Drop => f.write_str("drop"),
            Self::Id(id) => write!(f, "{id}"),
        }
    }
}

/// What [`Output::evaluate`](crate::Output::evaluate) scores and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvaluateOptions {
    /// The methods to score (empty: every method in the output).
    pub methods: Vec<Method>,
    /// How removed tokens are replaced.
    pub baseline: Baseline,
    /// Seed of the random rankings.
    pub seed: u64,
    /// How many random rankings the random baseline averages.
    pub random_draws: usize,
    /// Most steps per deletion or insertion curve (interpreto's `n_perturbations`).
    pub steps: usize,
    /// A progress bar on stderr (perturbed copies scored).
    pub progress: bool,
}

impl Default for EvaluateOptions {
    fn default() -> Self {
        let metric = MetricOptions::new(Removal::Replace(0));
        Self {
            methods: Vec::new(),
            baseline: Baseline::Auto,
            seed: metric.seed,
            random_draws: metric.random_draws,
            steps: metric.steps,
            progress: true,
        }
    }
}

/// One method's scores: the four metrics, the random ranking's, and the curves.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MethodEvaluation {
    /// Deletion and insertion AUC, comprehensiveness and sufficiency, averaged over the predictions.
    #[serde(flatten)]
    pub scores: Scores,
    /// The same four for the seeded random ranking, with its curves.
    pub random_baseline: RandomBaseline,
    /// Per prediction, the deletion and insertion curves.
    pub curves: Vec<Curves>,
    /// Per prediction, the four metrics.
    pub per_prediction: Vec<Scores>,
    /// The curves averaged over the predictions on [`MEAN_GRID`] (fraction of tokens removed).
    pub mean_curves: MeanCurves,
}

/// The random ranking's scores beside a method.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RandomBaseline {
    /// Its four metrics.
    #[serde(flatten)]
    pub scores: Scores,
    /// Its curves averaged over the predictions on [`MEAN_GRID`].
    pub mean_curves: MeanCurves,
}

/// Deletion and insertion curves on the fractions of [`MEAN_GRID`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MeanCurves {
    /// The target's mean probability as the top-ranked tokens are removed.
    pub deletion: Vec<f64>,
    /// The target's mean probability as the top-ranked tokens are restored.
    pub insertion: Vec<f64>,
}

/// How many points the mean curves have: fractions 0, 0.05, …, 1 of the tokens removed.
pub const MEAN_GRID: usize = 21;

/// One explained prediction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvaluatedPrediction {
    /// The position whose output predicts the token.
    pub position: usize,
    /// The predicted token id.
    pub token_id: u32,
    /// The predicted token, raw.
    pub token: String,
}

/// The token removed tokens are replaced with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplacementToken {
    /// Its id.
    pub token_id: u32,
    /// The token, raw.
    pub token: String,
}

/// Everything `ecco evaluate --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// Per method (its canonical name), its scores and the random baseline's.
    pub methods: BTreeMap<String, MethodEvaluation>,
    /// The baseline asked for (`auto` resolved).
    pub baseline: String,
    /// The replacement token (`null` when dropping).
    pub replacement: Option<ReplacementToken>,
    /// The random rankings' seed and count.
    pub seed: u64,
    /// How many random rankings the baseline averages.
    pub random_draws: usize,
    /// The fractions of tokens whose rationales comprehensiveness and sufficiency average.
    pub fractions: Vec<f64>,
    /// The predictions the scores average over.
    pub predictions: Vec<EvaluatedPrediction>,
}

/// Scores the attributions of `trace` with `model` (checked to match it).
pub(crate) fn evaluate(trace: &Trace, loaded: &LoadedModel, options: &EvaluateOptions) -> Result<Evaluation> {
    let lm = loaded.model.as_lm();
    ecco_attrib::check_compatible(lm, &trace.model)?;
    if trace.attributions.is_empty() {
        bail!("the trace has no attributions to evaluate: make it with `--attribution` (e.g. `--attribution grad_x_input,ig`)");
    }
    let names = method_names(trace, &options.methods)?;
    let examples = examples(trace, loaded)?;
    let (baseline, removal) = resolve_baseline(loaded, trace.model.model_type, options.baseline)?;
    let metric =
        MetricOptions { seed: options.seed, random_draws: options.random_draws, steps: options.steps, ..MetricOptions::new(removal) };
    let rows: Vec<&[Vec<f32>]> = names.iter().map(|n| trace.attributions[n].as_slice()).collect();
    let bar = crate::progress::bar(options.progress, None, 0, "evaluate");
    let results = ecco_attrib::evaluate_many(lm, &examples, &rows, &metric, &mut |n, total| {
        bar.set_length(total as u64);
        bar.inc(n as u64);
    });
    bar.finish_and_clear();
    let mut results = results?;
    let random = results.pop().unwrap_or_default();
    let random_baseline = RandomBaseline { scores: random.scores.clone(), mean_curves: mean_curves(&random.curves) };
    let methods = names
        .into_iter()
        .zip(results)
        .map(|(name, e)| {
            let mean = mean_curves(&e.curves);
            (
                name,
                MethodEvaluation {
                    scores: e.scores,
                    random_baseline: random_baseline.clone(),
                    curves: e.curves,
                    per_prediction: e.per_example,
                    mean_curves: mean,
                },
            )
        })
        .collect();
    let token = |position: usize, token_id: u32| EvaluatedPrediction { position, token_id, token: loaded.tokenizer.token(token_id) };
    Ok(Evaluation {
        methods,
        baseline: baseline.to_string(),
        replacement: match removal {
            Removal::Replace(id) => Some(ReplacementToken { token_id: id, token: loaded.tokenizer.token(id) }),
            Removal::Drop { .. } => None,
        },
        seed: options.seed,
        random_draws: metric.random_draws,
        fractions: metric.fractions,
        predictions: examples.iter().map(|ex| token(ex.position, ex.target)).collect(),
    })
}

/// The trace's attribution keys to score: `methods` (each present) or all of them.
fn method_names(trace: &Trace, methods: &[Method]) -> Result<Vec<String>> {
    if methods.is_empty() {
        return Ok(trace.attributions.keys().cloned().collect());
    }
    methods
        .iter()
        .map(|m| {
            if trace.attributions.contains_key(m.name()) {
                Ok(m.name().to_owned())
            } else {
                let have: Vec<&str> = trace.attributions.keys().map(String::as_str).collect();
                bail!("the trace has no {} attributions (it has: {})", m.name(), have.join(", "))
            }
        })
        .collect()
}

/// The predictions a trace's attributions explain.
fn examples(trace: &Trace, loaded: &LoadedModel) -> Result<Vec<Example>> {
    Ok(match trace.model.model_type {
        ModelKind::Causal => ecco_attrib::causal_examples(&trace.token_ids, trace.n_input_tokens)?,
        ModelKind::Masked => {
            let Some(preds) = &trace.masked_predictions else {
                bail!("the masked-LM trace has no predictions at a mask token to evaluate");
            };
            let targets: Vec<(usize, u32)> =
                preds.iter().filter_map(|p| p.predictions.first().map(|top| (p.position, top.token_id))).collect();
            // The special tokens the tokenizer wraps the text in stay, as ferret leaves them.
            let keep: Vec<usize> = (0..trace.token_ids.len())
                .filter(|&i| ["[CLS]", "[SEP]", "<s>", "</s>"].contains(&loaded.tokenizer.token(trace.token_ids[i]).as_str()))
                .collect();
            ecco_attrib::masked_examples(&trace.token_ids, &targets, &keep)?
        }
        ModelKind::EncoderDecoder => bail!("evaluation covers causal and masked LMs; encoder-decoder traces are not supported yet"),
    })
}

/// The baseline's token (or dropping), refusing a token the tokenizer does not have.
fn resolve_baseline(loaded: &LoadedModel, kind: ModelKind, baseline: Baseline) -> Result<(Baseline, Removal)> {
    let tok = &loaded.tokenizer;
    let find = |names: &[&str]| names.iter().find_map(|t| tok.token_to_id(t));
    let eos = || loaded.model.eos_token_id().or_else(|| find(&["</s>", "<|endoftext|>", "[SEP]"]));
    let baseline = match (baseline, kind) {
        (Baseline::Auto, ModelKind::Masked) => Baseline::Mask,
        (Baseline::Auto, _) => Baseline::Eos,
        (b, _) => b,
    };
    let id = match baseline {
        Baseline::Pad => find(&["[PAD]", "<pad>", "<|pad|>"]),
        Baseline::Unk => find(&["[UNK]", "<unk>"]),
        Baseline::Eos => eos(),
        Baseline::Mask => tok.mask_token_id(),
        Baseline::Id(id) => Some(id),
        Baseline::Drop => {
            // Only a causal LM can be left with nothing to read; a masked LM keeps its mask token.
            let empty = find(&["<s>", "[CLS]", "<bos>"]).or_else(eos);
            return match (empty, kind) {
                (Some(empty), _) => Ok((baseline, Removal::Drop { empty })),
                (None, ModelKind::Masked) => Ok((baseline, Removal::Drop { empty: 0 })),
                (None, _) => bail!("--baseline drop: the tokenizer has no BOS or EOS token for a prefix with every token dropped"),
            };
        }
        Baseline::Auto => None,
    };
    match id {
        Some(id) if (id as usize) < loaded.model.as_lm().info().vocab_size => Ok((baseline, Removal::Replace(id))),
        Some(id) => bail!("--baseline {id}: the token id is outside the vocabulary ({})", loaded.model.as_lm().info().vocab_size),
        None => bail!("--baseline {baseline}: the tokenizer has no such token (try eos, pad, unk, mask, drop or a token id)"),
    }
}

/// Curves of different lengths averaged on [`MEAN_GRID`] fractions, linearly interpolated.
fn mean_curves(curves: &[Curves]) -> MeanCurves {
    let at = |c: &Curves, values: &[f64], x: f64| -> f64 {
        let total = c.removed.last().copied().unwrap_or(0) as f64;
        if total == 0.0 || values.len() < 2 {
            return values.first().copied().unwrap_or(0.0);
        }
        let xs: Vec<f64> = c.removed.iter().map(|&r| r as f64 / total).collect();
        let i = xs.iter().position(|&v| v >= x).unwrap_or(xs.len() - 1).max(1);
        let (x0, x1) = (xs[i - 1], xs[i]);
        let t = if x1 > x0 { ((x - x0) / (x1 - x0)).clamp(0.0, 1.0) } else { 1.0 };
        values[i - 1] + t * (values[i] - values[i - 1])
    };
    let n = curves.len().max(1) as f64;
    let grid: Vec<f64> = (0..MEAN_GRID).map(|i| i as f64 / (MEAN_GRID - 1) as f64).collect();
    let mean = |pick: fn(&Curves) -> &Vec<f64>| grid.iter().map(|&x| curves.iter().map(|c| at(c, pick(c), x)).sum::<f64>() / n).collect();
    MeanCurves { deletion: mean(|c| &c.deletion), insertion: mean(|c| &c.insertion) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_curves_interpolate_on_the_fraction_grid() {
        let c = Curves { removed: vec![0, 1, 2], deletion: vec![1.0, 0.5, 0.0], insertion: vec![0.0, 0.5, 1.0] };
        let m = mean_curves(&[c]);
        assert_eq!(m.deletion.len(), MEAN_GRID);
        assert!((m.deletion[0] - 1.0).abs() < 1e-12 && (m.deletion[10] - 0.5).abs() < 1e-12 && m.deletion[20].abs() < 1e-12);
        assert!((m.insertion[5] - 0.25).abs() < 1e-12);
    }

    #[test]
    fn baselines_parse() {
        assert_eq!("mask".parse::<Baseline>(), Ok(Baseline::Mask));
        assert_eq!("17".parse::<Baseline>(), Ok(Baseline::Id(17)));
        assert!("zero".parse::<Baseline>().is_err_and(|e| e.contains("`zero`")));
    }
}
