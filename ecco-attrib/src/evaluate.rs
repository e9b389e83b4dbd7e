//! Faithfulness of attributions: how the target token's probability moves when the input tokens
//! an attribution ranks highest are removed or kept.
//!
//! Each *example* is one prediction: a causal LM's generated token with the prefix it read
//! ([`causal_examples`]), or a masked LM's prediction at a mask token with the whole text
//! ([`masked_examples`]). The attribution ranks the example's *candidates* (every token the
//! model read, the mask position itself excepted), highest first, ties to the earlier position.
//! The score is the softmax probability of the target token at the scored position.
//!
//! - **Deletion** (Petsiuk et al. 2018, as `interpreto.attributions.metrics.Deletion`): the
//!   candidates are removed in rank order, the probability recorded after each step; the area
//!   under that curve, trapezoid rule on an x axis from 0 to 1, lower is better.
//! - **Insertion** (`interpreto`'s `Insertion`): every candidate removed, then restored in rank
//!   order; higher is better.
//! - **Comprehensiveness** and **sufficiency** (DeYoung et al. 2020, ERASER, as
//!   `ferret`'s `AOPC_Comprehensiveness_Evaluation` / `AOPC_Sufficiency_Evaluation`): for
//!   each fraction of the candidates (1, 5, 10, 20, 50 %), the rationale is the top
//!   `floor(fraction · n)` of them; comprehensiveness is the mean of `p(full) − p(without the
//!   rationale)` (higher is better), sufficiency the mean of `p(full) − p(rationale only)`
//!   (lower is better).
//!
//! Removal is by a replacement token ([`Removal::Replace`]: pad, unk, eos or mask, whichever the
//! tokenizer has) or by dropping the token ([`Removal::Drop`]). A seeded random ranking is scored
//! the same way beside every method, averaged over [`EvaluateOptions::random_draws`] draws.
//!
//! Every perturbed copy of every example is scored in batches of forward passes (identical copies
//! once), so a curve costs a few forward passes, not one per step.
//!
//! ## Conventions, and where the references differ
//!
//! - **Step grid** (interpreto's `n_perturbations`): with `n` candidates and `s` = [`EvaluateOptions::steps`],
//!   the curve has `min(s, n) + 1` points, point `i` removing the top `floor(i · n / min(s, n))`;
//!   the AUC is `trapezoid(curve) / (points − 1)`. Both are interpreto's (`torch.linspace(0, n, p)`
//!   truncated, `torch.trapezoid(scores) / (p − 1)`).
//! - **The explained token**: interpreto feeds a causal LM the prefix *and* the generated token
//!   and counts that token among the perturbed elements (it cannot change the prediction before
//!   it). We perturb the prefix only; interpreto matches this with
//!   `max_percentage_perturbed = (n − ½)/(n + 1)` and the token ranked last, which is what
//!   `scripts/fixtures/evaluate.py` passes.
//! - **Replacement**: interpreto replaces with the tokenizer's mask token, adding a `[REPLACE]`
//!   token (and a random embedding row) when there is none; we never add tokens. The reference
//!   sets GPT-2's mask token to the same existing token we replace with.
//! - **Rationales** (ferret): `floor(fraction · n)` tokens; a fraction giving none, or the same
//!   set as the previous fraction, is skipped; with `only_positive` (ferret's `only_pos`,
//!   default) tokens scoring 0 or less are left out. When every fraction is skipped, ferret
//!   reports comprehensiveness 0 and sufficiency 1, and so do we.
//! - **Re-tokenisation**: ferret decodes each perturbed copy to text and tokenizes it again;
//!   we work on token ids, so a removed token never merges with its neighbours. The two agree
//!   when decoding and re-encoding gives the same ids, which the reference script checks.
//! - **ERASER's bins and normalisation**: ERASER divides by `|bins| + 1` (a 0 % bin); ferret takes
//!   the mean over the bins it kept, and so do we. Our default bins are ERASER's 1, 5, 10, 20,
//!   50 % (ferret's default is 10 %, 20 %, …, 100 %).
//! - **Dropping every token** (insertion's first point, with [`Removal::Drop`]) leaves a causal
//!   LM nothing to read: it reads `Drop::empty` (the tokenizer's BOS or EOS) alone.

use std::collections::HashMap;

use burn::tensor::{Int, Tensor, TensorData};
use ecco_core::{CaptureSpec, LanguageModel, Logits, ModelInputs, ModelKind};
use serde::Serialize;

use crate::engine::{AttributionTarget, head_scores};
use crate::error::{Error, Result};

/// How a token is taken out of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Removal {
    /// Replaced by this token id (positions are kept).
    Replace(u32),
    /// Dropped from the sequence; a causal LM left with no token reads `empty` alone.
    Drop {
        /// The token a causal LM reads when every token was dropped (BOS or EOS).
        empty: u32,
    },
}

/// Settings of [`evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct EvaluateOptions {
    /// How tokens are removed.
    pub removal: Removal,
    /// Most steps per deletion or insertion curve (interpreto's `n_perturbations`, default 100).
    pub steps: usize,
    /// The fractions of the candidates that make the rationales of comprehensiveness and
    /// sufficiency (ERASER: 1, 5, 10, 20 and 50 %).
    pub fractions: Vec<f64>,
    /// Leave tokens scoring 0 or less out of rationales (ferret's `only_pos`, its default).
    pub only_positive: bool,
    /// Seed of the random rankings.
    pub seed: u64,
    /// How many random rankings the random baseline averages.
    pub random_draws: usize,
    /// Most token positions in one forward pass.
    pub max_batch_tokens: usize,
}

impl EvaluateOptions {
    /// The defaults with `removal`.
    pub fn new(removal: Removal) -> Self {
        Self {
            removal,
            steps: 100,
            fractions: vec![0.01, 0.05, 0.10, 0.20, 0.50],
            only_positive: true,
            seed: 0,
            random_draws: 10,
            max_batch_tokens: 4096,
        }
    }
}

/// One prediction to explain: the model reads `ids`, and the target's probability is read at
/// `position`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// What the model reads.
    pub ids: Vec<u32>,
    /// The position whose output predicts the target.
    pub position: usize,
    /// The predicted token.
    pub target: u32,
    /// The positions an attribution ranks and removal may take out (ascending).
    pub candidates: Vec<usize>,
    /// Whether the model reads both directions (a masked LM): perturbed copies of different
    /// lengths are then never padded into one batch.
    pub bidirectional: bool,
}

/// The examples of a causal trace: per generated token `k`, the prefix `ids[..n_input + k]`
/// read at its last position, every prefix token a candidate.
///
/// # Errors
/// An empty prompt or nothing generated.
pub fn causal_examples(ids: &[u32], n_input: usize) -> Result<Vec<Example>> {
    if n_input == 0 {
        return Err(Error::Empty("the prompt has no tokens"));
    }
    if ids.len() <= n_input {
        return Err(Error::Empty("no generated tokens"));
    }
    Ok((n_input..ids.len())
        .map(|end| Example {
            ids: ids[..end].to_vec(),
            position: end - 1,
            target: ids[end],
            candidates: (0..end).collect(),
            bidirectional: false,
        })
        .collect())
}

/// The examples of a masked-LM trace: per `(position, predicted id)`, the whole text read at
/// the mask position, every other position a candidate.
///
/// # Errors
/// A position outside `ids`.
pub fn masked_examples(ids: &[u32], targets: &[(usize, u32)]) -> Result<Vec<Example>> {
    targets
        .iter()
        .map(|&(position, target)| {
            if position >= ids.len() {
                return Err(Error::PositionOutOfRange { position, reason: format!("the text has {} tokens", ids.len()) });
            }
            Ok(Example {
                ids: ids.to_vec(),
                position,
                target,
                candidates: (0..ids.len()).filter(|&i| i != position).collect(),
                bidirectional: true,
            })
        })
        .collect()
}

/// The four metrics of one ranking, averaged over the examples.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Scores {
    /// Area under the deletion curve (lower is better).
    pub deletion_auc: f64,
    /// Area under the insertion curve (higher is better).
    pub insertion_auc: f64,
    /// AOPC comprehensiveness (higher is better).
    pub comprehensiveness: f64,
    /// AOPC sufficiency (lower is better).
    pub sufficiency: f64,
}

/// One example's curves under one ranking.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Curves {
    /// How many candidates each point has removed (deletion) or restored (insertion).
    pub removed: Vec<usize>,
    /// The target's probability after each deletion step.
    pub deletion: Vec<f64>,
    /// The target's probability after each insertion step.
    pub insertion: Vec<f64>,
}

/// A method's (or the random baseline's) scores and curves.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Evaluation {
    /// The metrics, averaged over the examples.
    #[serde(flatten)]
    pub scores: Scores,
    /// Per example, its curves (the random baseline's averaged over the draws).
    pub curves: Vec<Curves>,
    /// Per example, its four metrics.
    pub per_example: Vec<Scores>,
}

/// Scores `attributions` (one list per example, indexed by position in the example's `ids`)
/// and, with the same perturbations, `options.random_draws` seeded random rankings.
///
/// Returns `(method, random baseline)`.
///
/// # Errors
/// No examples, a list shorter than its example's input, removal or target ids outside the
/// vocabulary, options without steps or fractions, a model that is neither causal nor masked,
/// model errors.
pub fn evaluate(
    model: &dyn LanguageModel,
    examples: &[Example],
    attributions: &[Vec<f32>],
    options: &EvaluateOptions,
) -> Result<(Evaluation, Evaluation)> {
    let mut all = evaluate_many(model, examples, &[attributions], options)?;
    let random = all.pop().unwrap_or_default();
    let method = all.pop().unwrap_or_default();
    Ok((method, random))
}

/// [`evaluate`] for several methods at once, sharing the forward passes (the full inputs and
/// the random rankings are scored once): one [`Evaluation`] per method, then the random
/// baseline's.
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_many(
    model: &dyn LanguageModel,
    examples: &[Example],
    methods: &[&[Vec<f32>]],
    options: &EvaluateOptions,
) -> Result<Vec<Evaluation>> {
    check(model, examples, methods, options)?;
    let mut rankings: Vec<Vec<Vec<(usize, f32)>>> =
        methods.iter().map(|rows| examples.iter().zip(rows.iter()).map(|(ex, row)| rank(&ex.candidates, |p| row[p])).collect()).collect();
    let mut rng = SplitMix64(options.seed);
    let draws = options.random_draws.max(1);
    for _ in 0..draws {
        // Uniform in (0, 1]: every random score is positive, so `only_positive` keeps them all.
        rankings.push(examples.iter().map(|ex| rank(&ex.candidates, |_| rng.next_unit())).collect());
    }
    let mut queries = Queries::default();
    let plans: Vec<Vec<Plan>> = rankings
        .iter()
        .map(|per_example| examples.iter().zip(per_example).map(|(ex, r)| plan(ex, r, options, &mut queries)).collect())
        .collect();
    let probs = queries.run(model, options.max_batch_tokens)?;
    let mut results: Vec<Evaluation> = plans[..methods.len()].iter().map(|p| summarise(p, &probs)).collect();
    let random: Vec<Evaluation> = plans[methods.len()..].iter().map(|p| summarise(p, &probs)).collect();
    results.push(average(&random));
    Ok(results)
}

fn check(model: &dyn LanguageModel, examples: &[Example], methods: &[&[Vec<f32>]], options: &EvaluateOptions) -> Result<()> {
    let info = model.info();
    if !matches!(info.kind, ModelKind::Causal | ModelKind::Masked) {
        return Err(Error::ModelMismatch(format!("evaluation covers causal and masked LMs; {} is {:?}", info.name, info.kind)));
    }
    if examples.is_empty() {
        return Err(Error::Empty("no predictions to evaluate"));
    }
    if options.steps == 0 {
        return Err(Error::Empty("a deletion curve needs at least one step"));
    }
    if options.fractions.is_empty() || options.fractions.iter().any(|f| !(0.0..=1.0).contains(f)) {
        return Err(Error::Empty("comprehensiveness needs fractions between 0 and 1"));
    }
    let vocab = info.vocab_size;
    let removal_id = match options.removal {
        Removal::Replace(id) | Removal::Drop { empty: id } => id,
    };
    for ex in examples {
        for id in ex.ids.iter().chain([&ex.target, &removal_id]) {
            if *id as usize >= vocab {
                return Err(Error::TokenOutOfRange { id: *id, vocab });
            }
        }
    }
    for rows in methods {
        if rows.len() != examples.len() {
            return Err(Error::MissingCapture(format!("{} attribution lists for {} predictions", rows.len(), examples.len())));
        }
        for (k, (row, ex)) in rows.iter().zip(examples).enumerate() {
            if row.len() < ex.ids.len() {
                return Err(Error::MissingCapture(format!(
                    "attribution list {k} has {} values for {} input tokens",
                    row.len(),
                    ex.ids.len()
                )));
            }
        }
    }
    Ok(())
}

/// `candidates` with their scores, highest first; ties keep the earlier position first.
fn rank(candidates: &[usize], mut score: impl FnMut(usize) -> f32) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = candidates.iter().map(|&p| (p, score(p))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked
}

/// The indices (into the query list) one ranking of one example needs.
struct Plan {
    full: usize,
    removed: Vec<usize>,
    deletion: Vec<usize>,
    insertion: Vec<usize>,
    /// Per kept rationale: (query without it, query with it alone).
    rationales: Vec<(usize, usize)>,
}

/// interpreto's step grid: how many candidates each point of an `n`-candidate curve removes.
pub fn step_grid(n: usize, steps: usize) -> Vec<usize> {
    let p = steps.min(n);
    if p == 0 {
        return vec![0];
    }
    (0..=p).map(|i| i * n / p).collect()
}

/// ferret's rationales: per fraction, the top `floor(fraction · n)` (positive ones only with
/// `only_positive`), skipping empty ones and repeats of the previous kept set.
pub fn rationales(ranked: &[(usize, f32)], fractions: &[f64], only_positive: bool) -> Vec<Vec<usize>> {
    let n = ranked.len();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for &f in fractions {
        // Python's `int(percentage * len(...))`.
        let k = (f * n as f64) as usize;
        if k == 0 || k > n {
            continue;
        }
        let mut top: Vec<usize> = ranked[..k].iter().filter(|(_, s)| !only_positive || *s > 0.0).map(|&(p, _)| p).collect();
        if top.is_empty() {
            continue;
        }
        top.sort_unstable();
        if out.last() == Some(&top) {
            continue;
        }
        out.push(top);
    }
    out
}

fn plan(ex: &Example, ranked: &[(usize, f32)], options: &EvaluateOptions, queries: &mut Queries) -> Plan {
    let order: Vec<usize> = ranked.iter().map(|&(p, _)| p).collect();
    let n = order.len();
    let mut removed_set = vec![false; ex.ids.len()];
    let full = queries.add(ex, &removed_set, options.removal);
    let removed = step_grid(n, options.steps);
    let mut deletion = Vec::with_capacity(removed.len());
    let mut insertion = Vec::with_capacity(removed.len());
    for &j in &removed {
        removed_set.iter_mut().for_each(|r| *r = false);
        for &p in &order[..j] {
            removed_set[p] = true;
        }
        deletion.push(queries.add(ex, &removed_set, options.removal));
        for &p in &order {
            removed_set[p] = true;
        }
        for &p in &order[..j] {
            removed_set[p] = false;
        }
        insertion.push(queries.add(ex, &removed_set, options.removal));
    }
    let rationales = rationales(ranked, &options.fractions, options.only_positive)
        .into_iter()
        .map(|top| {
            removed_set.iter_mut().for_each(|r| *r = false);
            for &p in &top {
                removed_set[p] = true;
            }
            let without = queries.add(ex, &removed_set, options.removal);
            for &p in &ex.candidates {
                removed_set[p] = true;
            }
            for &p in &top {
                removed_set[p] = false;
            }
            (without, queries.add(ex, &removed_set, options.removal))
        })
        .collect();
    Plan { full, removed, deletion, insertion, rationales }
}

/// interpreto's AUC: the trapezoid rule with unit spacing, divided by the number of intervals.
pub fn auc(curve: &[f64]) -> f64 {
    if curve.len() < 2 {
        return curve.first().copied().unwrap_or(0.0);
    }
    let area: f64 = curve.windows(2).map(|w| (w[0] + w[1]) / 2.0).sum();
    area / (curve.len() - 1) as f64
}

fn summarise(plans: &[Plan], probs: &[f64]) -> Evaluation {
    let mut eval = Evaluation::default();
    for plan in plans {
        let deletion: Vec<f64> = plan.deletion.iter().map(|&q| probs[q]).collect();
        let insertion: Vec<f64> = plan.insertion.iter().map(|&q| probs[q]).collect();
        let full = probs[plan.full];
        let (comprehensiveness, sufficiency) = if plan.rationales.is_empty() {
            // ferret's values when no rationale is left.
            (0.0, 1.0)
        } else {
            let n = plan.rationales.len() as f64;
            (
                plan.rationales.iter().map(|&(without, _)| full - probs[without]).sum::<f64>() / n,
                plan.rationales.iter().map(|&(_, alone)| full - probs[alone]).sum::<f64>() / n,
            )
        };
        eval.per_example.push(Scores { deletion_auc: auc(&deletion), insertion_auc: auc(&insertion), comprehensiveness, sufficiency });
        eval.curves.push(Curves { removed: plan.removed.clone(), deletion, insertion });
    }
    eval.scores = mean_scores(&eval.per_example);
    eval
}

fn mean_scores(all: &[Scores]) -> Scores {
    let n = all.len().max(1) as f64;
    Scores {
        deletion_auc: all.iter().map(|s| s.deletion_auc).sum::<f64>() / n,
        insertion_auc: all.iter().map(|s| s.insertion_auc).sum::<f64>() / n,
        comprehensiveness: all.iter().map(|s| s.comprehensiveness).sum::<f64>() / n,
        sufficiency: all.iter().map(|s| s.sufficiency).sum::<f64>() / n,
    }
}

/// The mean of several evaluations of the same examples (the random draws): metrics and curve
/// points averaged.
fn average(draws: &[Evaluation]) -> Evaluation {
    let Some(first) = draws.first() else { return Evaluation::default() };
    let n = draws.len() as f64;
    let per_example: Vec<Scores> =
        (0..first.per_example.len()).map(|k| mean_scores(&draws.iter().map(|d| d.per_example[k].clone()).collect::<Vec<_>>())).collect();
    let curves = (0..first.curves.len())
        .map(|k| {
            let mean = |pick: fn(&Curves) -> &Vec<f64>| -> Vec<f64> {
                (0..pick(&first.curves[k]).len()).map(|i| draws.iter().map(|d| pick(&d.curves[k])[i]).sum::<f64>() / n).collect()
            };
            Curves { removed: first.curves[k].removed.clone(), deletion: mean(|c| &c.deletion), insertion: mean(|c| &c.insertion) }
        })
        .collect();
    Evaluation { scores: mean_scores(&per_example), curves, per_example }
}

/// One perturbed input to score.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Query {
    ids: Vec<u32>,
    position: usize,
    target: u32,
    bidirectional: bool,
}

/// The distinct perturbed inputs of an evaluation, each scored once.
#[derive(Default)]
struct Queries {
    list: Vec<Query>,
    index: HashMap<Query, usize>,
}

impl Queries {
    /// Adds `ex` with the positions marked in `removed` taken out; returns the query's index.
    fn add(&mut self, ex: &Example, removed: &[bool], removal: Removal) -> usize {
        let query = perturb(ex, removed, removal);
        if let Some(&i) = self.index.get(&query) {
            return i;
        }
        self.list.push(query.clone());
        self.index.insert(query, self.list.len() - 1);
        self.list.len() - 1
    }

    /// Every query's target probability, in batches of at most `max_batch_tokens` positions.
    fn run(&self, model: &dyn LanguageModel, max_batch_tokens: usize) -> Result<Vec<f64>> {
        let mut order: Vec<usize> = (0..self.list.len()).collect();
        order.sort_by_key(|&i| (self.list[i].bidirectional, self.list[i].ids.len()));
        let mut probs = vec![0.0; self.list.len()];
        let mut start = 0;
        while start < order.len() {
            let first = &self.list[order[start]];
            let mut end = start + 1;
            while end < order.len() {
                let q = &self.list[order[end]];
                // Sorted by length: the last row is the longest. A bidirectional model would
                // attend to padding, so its batches hold one length only.
                let same = q.bidirectional == first.bidirectional && (!q.bidirectional || q.ids.len() == first.ids.len());
                if !same || (end + 1 - start) * q.ids.len() > max_batch_tokens {
                    break;
                }
                end += 1;
            }
            let batch: Vec<&Query> = order[start..end].iter().map(|&i| &self.list[i]).collect();
            for (&i, p) in order[start..end].iter().zip(score_batch(model, &batch)?) {
                probs[i] = f64::from(p);
            }
            start = end;
        }
        Ok(probs)
    }
}

/// `ex`'s input with the marked positions replaced or dropped.
fn perturb(ex: &Example, removed: &[bool], removal: Removal) -> Query {
    match removal {
        Removal::Replace(id) => Query {
            ids: ex.ids.iter().zip(removed).map(|(&t, &r)| if r { id } else { t }).collect(),
            position: ex.position,
            target: ex.target,
            bidirectional: ex.bidirectional,
        },
        Removal::Drop { empty } => {
            let mut ids: Vec<u32> = ex.ids.iter().zip(removed).filter(|(_, r)| !**r).map(|(&t, _)| t).collect();
            let before = removed[..ex.position].iter().filter(|r| **r).count();
            let position = if ex.bidirectional {
                ex.position - before
            } else if ids.is_empty() {
                ids.push(empty);
                0
            } else {
                // A causal prefix is read at its last token, whichever that is now.
                ids.len() - 1
            };
            Query { ids, position, target: ex.target, bidirectional: ex.bidirectional }
        }
    }
}

/// The target probabilities of a batch of queries (causal rows padded on the right, which
/// the causal mask hides from the scored positions).
fn score_batch(model: &dyn LanguageModel, batch: &[&Query]) -> Result<Vec<f32>> {
    let n = batch.len();
    let len = batch.iter().map(|q| q.ids.len()).max().unwrap_or(1);
    let ids: Vec<i64> = batch.iter().flat_map(|q| (0..len).map(move |j| i64::from(q.ids.get(j).copied().unwrap_or(q.ids[0])))).collect();
    let device = model.device();
    let embeds = model.embed(Tensor::<2, Int>::from_data(TensorData::new(ids, [n, len]), device));
    let out = model.forward(ModelInputs::new(embeds), &CaptureSpec::none().with_logits(Logits::Skip))?;
    let hidden = out.last_hidden.dims()[2];
    let at: Vec<i64> = batch.iter().enumerate().map(|(i, q)| (i * len + q.position) as i64).collect();
    let at = Tensor::<1, Int>::from_data(TensorData::new(at, [n]), device);
    let h = out.last_hidden.reshape([n * len, hidden]).select(0, at).reshape([n, 1, hidden]);
    let targets = batch.iter().map(|q| (q.target, None, 1.0));
    let p = head_scores(model, h, targets, AttributionTarget::Prob)?;
    p.into_data().try_into_vec::<f32>().map_err(|e| Error::Readback(format!("{e:?}")))
}

/// SplitMix64 (Steele et al. 2014): a small, seeded, portable generator for the random rankings.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1], 24 bits (exact in f32).
    fn next_unit(&mut self) -> f32 {
        ((self.next() >> 40) + 1) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_follows_interpreto() {
        // torch.linspace(0, 10, 4) = 0, 3.33, 6.67, 10, truncated.
        assert_eq!(step_grid(10, 3), vec![0, 3, 6, 10]);
        assert_eq!(step_grid(4, 100), vec![0, 1, 2, 3, 4]);
        assert_eq!(step_grid(0, 100), vec![0]);
    }

    #[test]
    fn auc_is_the_normalised_trapezoid() {
        assert!((auc(&[1.0, 0.0]) - 0.5).abs() < 1e-12);
        assert!((auc(&[1.0, 1.0, 0.0, 0.0]) - 0.5).abs() < 1e-12);
        assert!((auc(&[0.2, 0.4, 0.6]) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn rationales_follow_ferret() {
        let ranked = rank(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], |p| [0.1, 0.3, 0.0, 0.2, 0.05, 0.1, 0.0, 0.0, 0.15, 0.1][p]);
        // 1 % and 5 % of 10 give no token; 10 %: [1]; 20 %: [1, 3]; 50 %: the top 5 sorted.
        let r = rationales(&ranked, &[0.01, 0.05, 0.10, 0.20, 0.50], true);
        assert_eq!(r, vec![vec![1], vec![1, 3], vec![0, 1, 3, 5, 8]]);
        // Zero scores are left out, and a repeat of the previous set is skipped.
        let ranked = rank(&[0, 1, 2, 3], |p| [0.5, 0.0, 0.0, 0.0][p]);
        assert_eq!(rationales(&ranked, &[0.25, 0.5, 1.0], true), vec![vec![0]]);
        assert_eq!(rationales(&ranked, &[0.25, 0.5], false), vec![vec![0], vec![0, 1]]);
    }

    #[test]
    fn ties_rank_the_earlier_position_first() {
        assert_eq!(rank(&[0, 1, 2], |p| [0.2, 0.5, 0.5][p]).iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 0]);
    }

    #[test]
    fn removal_replaces_or_drops() {
        let ex = Example { ids: vec![10, 11, 12, 13], position: 2, target: 7, candidates: vec![0, 1, 3], bidirectional: true };
        let removed = [true, false, false, true];
        let q = perturb(&ex, &removed, Removal::Replace(99));
        assert_eq!((q.ids, q.position), (vec![99, 11, 12, 99], 2));
        let q = perturb(&ex, &removed, Removal::Drop { empty: 0 });
        assert_eq!((q.ids, q.position), (vec![11, 12], 1));
        let causal = causal_examples(&[5, 6, 7, 8], 2).unwrap_or_default();
        assert_eq!(causal.len(), 2);
        assert_eq!((causal[1].ids.clone(), causal[1].position, causal[1].target), (vec![5, 6, 7], 2, 8));
        let q = perturb(&causal[0], &[true, true], Removal::Drop { empty: 3 });
        assert_eq!((q.ids, q.position), (vec![3], 0));
        let q = perturb(&causal[1], &[false, false, true], Removal::Drop { empty: 3 });
        assert_eq!((q.ids, q.position), (vec![5, 6], 1));
    }

    #[test]
    fn random_scores_are_seeded_and_positive() {
        let draw = |seed| {
            let mut r = SplitMix64(seed);
            (0..100).map(|_| r.next_unit()).collect::<Vec<f32>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(draw(1).iter().all(|&u| u > 0.0 && u <= 1.0));
    }
}
