//! Faithfulness metrics (`ecco_attrib::evaluate`) against the reference implementations, and
//! what they say about the demo model.
//!
//! `fixtures/demo/evaluate.json` (written by `scripts/fixtures/evaluate.py`) holds, for one text
//! on the demo model's weights, the attributions of every method and what `interpreto` (deletion
//! and insertion) and `ferret-xai` (comprehensiveness and sufficiency, replacing and dropping)
//! report for them; ours must match within 1e-4, curve by curve and prediction by prediction.

mod common;

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use ecco_attrib::{EvaluateOptions, Evaluation, Method, Removal, Sequence, causal_examples, evaluate_many};
use ecco_models::{DeviceKind, LoadedModel};
use serde::Deserialize;

const TOL: f64 = 1e-4;

#[derive(Debug, Deserialize)]
struct Interpreto {
    deletion_per_example: Vec<f64>,
    insertion_per_example: Vec<f64>,
    deletion_curves: Vec<Vec<f64>>,
    insertion_curves: Vec<Vec<f64>>,
}

#[derive(Debug, Deserialize)]
struct Ferret {
    comprehensiveness_per_example: Vec<f64>,
    sufficiency_per_example: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct MethodReference {
    interpreto: Interpreto,
    ferret_replace: Ferret,
    ferret_drop: Ferret,
}

#[derive(Debug, Deserialize)]
struct Reference {
    token_ids: Vec<u32>,
    n_input: usize,
    replace_id: u32,
    fractions: Vec<f64>,
    steps: usize,
    attributions: BTreeMap<String, Vec<Vec<f32>>>,
    methods: BTreeMap<String, MethodReference>,
}

fn reference() -> Result<Reference> {
    let path = common::fixture_dir("demo").join("evaluate.json");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

fn close(what: &str, ours: &[f64], theirs: &[f64]) -> Result<()> {
    ensure!(ours.len() == theirs.len(), "{what}: {} values, the reference has {}", ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        ensure!((a - b).abs() <= TOL, "{what}[{i}]: ours {a}, reference {b}");
    }
    Ok(())
}

/// Every method of the reference, evaluated in one call with `removal`.
fn ours(model: &LoadedModel, r: &Reference, removal: Removal) -> Result<Vec<(String, Evaluation)>> {
    let examples = causal_examples(&r.token_ids, r.n_input)?;
    let options = EvaluateOptions { steps: r.steps, fractions: r.fractions.clone(), ..EvaluateOptions::new(removal) };
    let names: Vec<&String> = r.attributions.keys().collect();
    let rows: Vec<&[Vec<f32>]> = r.attributions.values().map(Vec::as_slice).collect();
    let results = evaluate_many(model.model.as_lm(), &examples, &rows, &options)?;
    Ok(names.into_iter().cloned().zip(results).collect())
}

#[test]
fn deletion_and_insertion_match_interpreto_and_aopc_matches_ferret() -> Result<()> {
    let r = reference()?;
    let model = ecco_models::load_demo(DeviceKind::Flex)?;
    ensure!(r.methods.len() == 4, "the reference covers grad_x_input, gradient, integrated_gradients and attention_rollout");
    for (name, eval) in ours(&model, &r, Removal::Replace(r.replace_id))? {
        let m = r.methods.get(&name).with_context(|| format!("no reference for {name}"))?;
        let auc = |pick: fn(&ecco_attrib::Scores) -> f64| eval.per_example.iter().map(pick).collect::<Vec<f64>>();
        close(&format!("{name} deletion AUC"), &auc(|s| s.deletion_auc), &m.interpreto.deletion_per_example)?;
        close(&format!("{name} insertion AUC"), &auc(|s| s.insertion_auc), &m.interpreto.insertion_per_example)?;
        for (k, c) in eval.curves.iter().enumerate() {
            close(&format!("{name} deletion curve {k}"), &c.deletion, &m.interpreto.deletion_curves[k])?;
            close(&format!("{name} insertion curve {k}"), &c.insertion, &m.interpreto.insertion_curves[k])?;
        }
        close(
            &format!("{name} comprehensiveness (replace)"),
            &auc(|s| s.comprehensiveness),
            &m.ferret_replace.comprehensiveness_per_example,
        )?;
        close(&format!("{name} sufficiency (replace)"), &auc(|s| s.sufficiency), &m.ferret_replace.sufficiency_per_example)?;
        // The metrics move: a comparison of zeros would prove nothing.
        ensure!(eval.scores.insertion_auc - eval.scores.deletion_auc > 0.05, "{name}: {:?}", eval.scores);
    }
    for (name, eval) in ours(&model, &r, Removal::Drop { empty: r.replace_id })? {
        let m = &r.methods[&name];
        let per = |pick: fn(&ecco_attrib::Scores) -> f64| eval.per_example.iter().map(pick).collect::<Vec<f64>>();
        close(&format!("{name} comprehensiveness (drop)"), &per(|s| s.comprehensiveness), &m.ferret_drop.comprehensiveness_per_example)?;
        close(&format!("{name} sufficiency (drop)"), &per(|s| s.sufficiency), &m.ferret_drop.sufficiency_per_example)?;
    }
    Ok(())
}

/// The check: on the demo model's capital facts every gradient method beats the random
/// baseline on deletion AUC; attention rollout is scored and reported whatever its place.
#[test]
fn gradient_methods_beat_random_on_the_demo_capitals() -> Result<()> {
    let model = ecco_models::load_demo(DeviceKind::Flex)?;
    let lm = model.model.as_lm();
    let methods = [Method::GradXInput, Method::Gradient, Method::IntegratedGradients, Method::AttentionRollout];
    let options = EvaluateOptions::new(Removal::Replace(model.tokenizer.token_to_id("<|endoftext|>").context("eos")?));
    for prompt in ["The capital of France is", "The capital of Japan is", "The capital of Egypt is"] {
        let mut ids = model.tokenizer.encode(prompt, false)?.ids;
        let n_input = ids.len();
        let causal = model.model.as_causal().context("causal")?;
        let generate = ecco_models::GenerateOptions { max_new_tokens: 1, sampling: None, eos_token_id: model.model.eos_token_id() };
        ids.extend(ecco_models::generate(causal, &ids, &generate, |_| {})?);
        let seq = Sequence { ids: &ids, n_input };
        let rows: Vec<Vec<Vec<f32>>> = methods
            .iter()
            .map(|&m| ecco_attrib::attribute(lm, seq, m, &ecco_attrib::AttributionOptions::default(), &mut |_| {}))
            .collect::<Result<_, _>>()?;
        let examples = causal_examples(&ids, n_input)?;
        let refs: Vec<&[Vec<f32>]> = rows.iter().map(Vec::as_slice).collect();
        let results = evaluate_many(lm, &examples, &refs, &options)?;
        let random = &results[methods.len()].scores;
        let mut table = Vec::new();
        for (m, eval) in methods.iter().zip(&results) {
            table.push(format!("{}: deletion {:.3}", m.name(), eval.scores.deletion_auc));
            if m.needs_gradients() {
                ensure!(
                    eval.scores.deletion_auc < random.deletion_auc,
                    "{prompt}: {} deletion AUC {} is not below random's {}",
                    m.name(),
                    eval.scores.deletion_auc,
                    random.deletion_auc
                );
            }
        }
        // Rollout's place among the methods and the random baseline, reported as it is.
        let rollout = results[3].scores.deletion_auc;
        let place = 1 + results.iter().filter(|e| e.scores.deletion_auc < rollout).count();
        ensure!(rollout.is_finite() && (0.0..=1.0).contains(&rollout), "{prompt}: rollout {rollout}");
        eprintln!(
            "{prompt}: {}; random {:.3}; attention_rollout places {place} of {}",
            table.join(", "),
            random.deletion_auc,
            results.len()
        );
    }
    Ok(())
}
