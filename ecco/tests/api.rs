//! The `ecco` API on the embedded demo model, checked against what `transformers` computed on
//! the same weights (`fixtures/demo/reference.json`, written by `scripts/demo/train_demo.py`),
//! on T5 against `fixtures/t5-relu/reference.json`, and its errors on bad input.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use ecco::{ForwardOptions, GenerateOptions, Lens, LoadOptions, Method, NmfOptions, Output, ReportOptions};
use serde::Deserialize;

/// One prompt of `reference.json`.
#[derive(Debug, Deserialize)]
struct Case {
    prompt: String,
    prompt_tokens: Vec<String>,
    max_new_tokens: usize,
    generated_ids: Vec<u32>,
    generated_tokens: Vec<String>,
    probs: Vec<f32>,
    grad_x_input_first: Vec<f32>,
    normed_ranks_first: Vec<usize>,
}

/// `fixtures/demo/reference.json`.
#[derive(Debug, Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("fixtures").join(name)
}

fn reference() -> Result<Reference> {
    let path = fixture("demo").join("reference.json");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

fn quiet(max_new_tokens: usize) -> GenerateOptions {
    GenerateOptions { max_new_tokens, progress: false, ..Default::default() }
}

#[test]
fn generate_attributions_and_rankings_match_transformers() -> Result<()> {
    let lm = ecco::demo()?;
    for c in &reference()?.cases {
        let options = GenerateOptions { attribution: vec![Method::GradXInput], ..quiet(c.max_new_tokens) };
        let output = lm.generate(&c.prompt, &options)?;
        let t = output.trace();
        ensure!(
            t.token_ids[t.n_input_tokens..] == c.generated_ids[..],
            "{:?}: {:?} != {:?}",
            c.prompt,
            output.generated_tokens(),
            c.generated_tokens
        );
        ensure!(output.tokens()[..t.n_input_tokens] == c.prompt_tokens[..]);
        let first = &output.primary_attributions(Method::GradXInput)?[0];
        ensure!(first.len() == c.grad_x_input_first.len());
        for (o, r) in first.iter().zip(&c.grad_x_input_first) {
            ensure!((o - r).abs() < 2e-3, "{:?}: grad_x_input {first:?} vs transformers {:?}", c.prompt, c.grad_x_input_first);
        }
        let ranks: Vec<usize> = output.rankings(Lens::Normed)?.iter().map(|layer| layer[0]).collect();
        ensure!(ranks == c.normed_ranks_first, "{:?}: ranks {ranks:?} vs transformers {:?}", c.prompt, c.normed_ranks_first);
        // The last layer under Ecco's raw lens is the model's own output distribution.
        let n = t.n_input_tokens;
        let last = output.layer_predictions(n, 1, Some(3), Lens::Raw)?;
        let top = last.first().and_then(|l| l.first()).context("one prediction")?;
        ensure!(top.token_id == c.generated_ids[0] && (top.prob - c.probs[0]).abs() < 1e-3, "{top:?} vs p {}", c.probs[0]);
    }
    Ok(())
}

#[test]
fn france_drives_paris_and_the_watched_rank_is_one() -> Result<()> {
    let lm = ecco::from_pretrained(ecco::DEMO_NAME, &LoadOptions { progress: false, ..Default::default() })?;
    let options = GenerateOptions { attribution: vec![Method::IntegratedGradients], ig_steps: 16, ..quiet(1) };
    let output = lm.generate("The capital of France is", &options)?;
    ensure!(output.generated_tokens() == ["ĠParis"]);
    let row = &output.primary_attributions(Method::IntegratedGradients)?[0];
    let best = (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).context("empty")?;
    ensure!(output.tokens()[best] == "ĠFrance", "{row:?}");
    ensure!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    let paris = lm.token_id(" Paris")?;
    ensure!(paris == 770 && lm.token_id("ĠParis")? == 770 && lm.token_id("770")? == 770);
    let ranks = output.rankings_watch(&[paris], 5, Lens::Normed)?;
    ensure!(ranks.len() == 4 && ranks[3] == [1], "{ranks:?}");
    Ok(())
}

#[test]
fn nmf_report_and_save_round_trip() -> Result<()> {
    let lm = ecco::demo()?;
    let options = GenerateOptions { activations: true, attention: true, attribution: vec![Method::GradXInput], ..quiet(4) };
    let output = lm.generate("one two three four", &options)?;
    ensure!(output.output_text() == "one two three four five six. The", "{}", output.output_text());
    let nmf = output.run_nmf(&NmfOptions { components: 3, progress: false, ..Default::default() })?;
    ensure!(nmf.components.len() == 3 && nmf.layers == [0, 1, 2, 3] && nmf.positions == 7, "{nmf:?}");
    ensure!(nmf.components.iter().flatten().all(|&v| v >= 0.0) && nmf.reconstruction_error > 0.0);
    let report = output.report(&ReportOptions { progress: false, ..Default::default() })?;
    ensure!(report.rankings.is_some() && report.layer_predictions.is_some() && report.nmf.is_some());
    ensure!(report.attention.is_some() && report.neurons.is_some() && !report.attributions.is_empty());
    let html = output.to_html(&ReportOptions { components: 0, ..Default::default() })?;
    ensure!(html.starts_with("<!DOCTYPE html>") && html.contains("Content-Security-Policy"));

    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("trace");
    output.save(&dir)?;
    // A demo trace read back finds the demo model by itself.
    let back = Output::load(&dir)?;
    ensure!(back.trace().token_ids == output.trace().token_ids);
    ensure!(back.rankings(Lens::Normed)? == output.rankings(Lens::Normed)?);
    ensure!(back.with_model(&lm).run_nmf(&NmfOptions { components: 3, progress: false, ..Default::default() })? == nmf);
    // A file where the bundle would go is not overwritten.
    let file = tmp.path().join("keep");
    std::fs::write(&file, "keep")?;
    ensure!(output.save(&file).is_err() && std::fs::read_to_string(&file)? == "keep");
    Ok(())
}

#[test]
fn masked_lms_fill_masks_and_refuse_to_generate() -> Result<()> {
    let lm = ecco::from_pretrained(&fixture("bert-wordpiece").display().to_string(), &LoadOptions::default())?;
    ensure!(!lm.is_causal());
    let err = lm.generate("hello", &quiet(2)).err().context("a masked LM cannot generate")?;
    ensure!(format!("{err:#}").contains("Lm::forward"), "{err:#}");
    let mask = lm.tokenizer().mask_token_id().map(|id| lm.tokenizer().token(id)).context("a mask token")?;
    let options = ForwardOptions { attribution: vec![Method::GradXInput], progress: false, ..Default::default() };
    let output = lm.forward(&format!("the {mask} is"), &options)?;
    let masks = output.trace().masked_predictions.as_ref().context("masked predictions")?;
    ensure!(masks.len() == 1 && masks[0].predictions.len() == 10);
    ensure!(output.primary_attributions(Method::GradXInput)?.len() == 1);
    ensure!(output.layer_predictions(masks[0].position, 3, None, Lens::Normed)?.len() == lm.info().n_layers);
    Ok(())
}

/// Checks that `result` failed with a one-line message holding `needle`.
fn one_line_with(result: Result<impl std::fmt::Debug>, needle: &str) -> Result<()> {
    let err = match result {
        Ok(v) => anyhow::bail!("expected an error with {needle:?}, got {v:?}"),
        Err(e) => format!("{e:#}"),
    };
    ensure!(err.contains(needle) && !err.contains('\n'), "{err:?} lacks {needle:?}");
    Ok(())
}

#[test]
fn bad_input_gives_one_line_errors() -> Result<()> {
    let lm = ecco::demo()?;
    one_line_with(ecco::from_pretrained("/no/such/model", &LoadOptions::default()), "/no/such/model")?;
    one_line_with(ecco::from_pretrained("", &LoadOptions::default()), "empty")?;
    one_line_with(lm.generate("", &quiet(2)), "empty")?;
    one_line_with(lm.generate("hi", &quiet(0)), "max-new-tokens")?;
    one_line_with(lm.generate("hi", &GenerateOptions { layers: Some(vec![1]), ..quiet(1) }), "activations")?;
    one_line_with(lm.generate("hi", &GenerateOptions { activations: true, layers: Some(vec![9]), ..quiet(1) }), "9")?;
    one_line_with(
        lm.generate("hi", &GenerateOptions { contrast_with: Some(" Paris is".into()), attribution: vec![Method::GradXInput], ..quiet(1) }),
        "not a single token",
    )?;
    one_line_with(
        lm.generate("hi", &GenerateOptions { attribution: vec![Method::IntegratedGradients], ig_steps: 0, ..quiet(1) }),
        "--ig-steps",
    )?;
    one_line_with(lm.forward("hi", &ForwardOptions { attribution: vec![Method::GradXInput], ..Default::default() }), "masked LMs")?;
    one_line_with(lm.token_id("99999"), "outside the vocabulary")?;

    let bare = lm.generate("The capital of France is", &GenerateOptions { hidden_states: false, ..quiet(1) })?;
    one_line_with(bare.primary_attributions(Method::GradXInput), "grad_x_input")?;
    one_line_with(bare.rankings(Lens::Normed), "hidden states")?;
    one_line_with(bare.run_nmf(&NmfOptions::default()), "activations")?;
    let full = lm.generate("The capital of France is", &quiet(1))?;
    one_line_with(full.layer_predictions(0, 3, None, Lens::Normed), "position 0")?;
    one_line_with(full.layer_predictions(1, 0, None, Lens::Normed), "topk")?;
    one_line_with(full.rankings_watch(&[99_999], 1, Lens::Normed), "99999")?;
    // The lens refuses a model that did not make the trace.
    let other = ecco::from_pretrained(&fixture("gpt2-bpe").display().to_string(), &LoadOptions::default())?;
    one_line_with(full.clone().with_model(&other).rankings(Lens::Normed), "different model")?;
    Ok(())
}

/// `fixtures/t5-relu/reference.json` (written by `scripts/fixtures/t5.py`): the part the API
/// checks.
#[derive(Debug, Deserialize)]
struct T5Reference {
    text: String,
    input_ids: Vec<u32>,
    tokens: Vec<String>,
    decoder_start_token_id: u32,
    generated_ids: Vec<u32>,
    generated_tokens: Vec<String>,
    generated_texts: Vec<String>,
    attributions: std::collections::BTreeMap<String, Vec<Vec<f32>>>,
}

#[test]
fn t5_generates_as_transformers_does() -> Result<()> {
    let dir = fixture("t5-relu");
    let text = std::fs::read_to_string(dir.join("reference.json"))?;
    let r: T5Reference = serde_json::from_str(&text)?;
    let lm = ecco::from_pretrained(&dir.display().to_string(), &LoadOptions { progress: false, ..Default::default() })?;
    ensure!(!lm.is_causal());
    let n_new = r.generated_ids.len();
    let options = GenerateOptions { attribution: vec![Method::GradXInput], activations: true, attention: true, ..quiet(n_new) };
    let output = lm.generate(&r.text, &options)?;
    let t = output.trace();
    // The encoder's tokens (with `</s>`), then the decoder's: its start token and the greedy ids.
    ensure!(t.n_input_tokens == r.input_ids.len() && t.token_ids[..t.n_input_tokens] == r.input_ids[..], "{:?}", t.token_ids);
    ensure!(output.tokens()[..t.n_input_tokens] == r.tokens[..]);
    ensure!(t.token_ids[t.n_input_tokens] == r.decoder_start_token_id);
    ensure!(output.generated_ids() == r.generated_ids.as_slice(), "{:?} vs {:?}", output.generated_ids(), r.generated_ids);
    ensure!(output.generated_tokens() == r.generated_tokens.as_slice(), "{:?}", output.generated_tokens());
    ensure!(output.output_text() == r.generated_texts[n_new - 1], "{:?} vs {:?}", output.output_text(), r.generated_texts[n_new - 1]);
    // Ecco's encoder-decoder attributions: the encoder's tokens then the decoder prefix.
    let ours = output.primary_attributions(Method::GradXInput)?;
    let theirs = r.attributions.get("grad_x_input").context("grad_x_input")?;
    ensure!(ours.len() == n_new);
    for (k, (a, b)) in ours.iter().zip(theirs).enumerate() {
        ensure!(a.len() == r.input_ids.len() + k + 1 && a.len() == b.len(), "[{k}]: {} values", a.len());
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        ensure!(worst < 1e-4, "[{k}]: off by {worst}");
    }
    for name in ["activations.encoder", "activations.decoder", "attention.cross", "hidden_states.decoder"] {
        ensure!(output.bundle().tensors.contains_key(name), "no {name}");
    }
    // The lens reads the decoder: at the last layer every greedy token ranks first, and the
    // prediction for the first generated position is the first greedy token.
    let layers = lm.info().n_layers;
    let ranks = output.rankings(Lens::Normed)?;
    ensure!(ranks.len() == layers && ranks[layers - 1] == vec![1; n_new], "{ranks:?}");
    let first = t.n_input_tokens + 1;
    let preds = output.layer_predictions(first, 1, None, Lens::Normed)?;
    ensure!(preds[layers - 1][0].token_id == r.generated_ids[0], "{preds:?}");
    let watch = output.rankings_watch(&[r.generated_ids[0]], first, Lens::Normed)?;
    ensure!(watch[layers - 1] == [1], "{watch:?}");
    one_line_with(output.layer_predictions(2, 1, None, Lens::Normed), "position 2")?;
    // NMF joins the encoder's and decoder's activations along the positions (as Ecco).
    let nmf = output.run_nmf(&NmfOptions { components: 2, progress: false, ..Default::default() })?;
    ensure!(nmf.positions == t.n_input_tokens + n_new && nmf.components[0].len() == nmf.positions, "{nmf:?}");
    let report = output.report(&ReportOptions { components: 2, progress: false, ..Default::default() })?;
    ensure!(report.rankings.is_some() && report.layer_predictions.is_some() && report.nmf.is_some() && report.attention.is_some());
    ensure!(output.to_html(&ReportOptions { components: 0, progress: false, ..Default::default() })?.starts_with("<!DOCTYPE html>"));

    // `forward`: the encoder reads the text, the decoder its start token and `decoder_text`.
    let first_piece = r.generated_tokens[0].trim_start_matches('▁');
    let options = ForwardOptions { decoder_text: Some(first_piece.to_owned()), progress: false, ..Default::default() };
    let fwd = lm.forward(&r.text, &options)?;
    let mut expected = r.input_ids.clone();
    expected.extend([r.decoder_start_token_id, r.generated_ids[0]]);
    ensure!(fwd.trace().token_ids == expected && fwd.output_text() == r.generated_texts[0], "{:?}", fwd.trace().token_ids);

    // What an encoder-decoder does not support.
    one_line_with(lm.generate(&r.text, &GenerateOptions { attribution: vec![Method::Occlusion], ..quiet(1) }), "occlusion")?;
    one_line_with(
        lm.forward(&r.text, &ForwardOptions { attribution: vec![Method::GradXInput], progress: false, ..Default::default() }),
        "generate",
    )?;
    one_line_with(ecco::demo()?.forward("hi", &ForwardOptions { decoder_text: Some("x".into()), ..Default::default() }), "decoder_text")?;
    Ok(())
}
