//! `ecco evaluate` end to end: the spec's JSON shape on the demo model and on a masked LM, its
//! HTML view, seeded random baselines, and one-line errors with nothing written for bad input.

use anyhow::{Context, Result, ensure};

mod common;
use common::{fails, fixture, ok, s};

const METRICS: [&str; 4] = ["deletion_auc", "insertion_auc", "comprehensiveness", "sufficiency"];

fn metric(v: &serde_json::Value, name: &str) -> Result<f64> {
    v[name].as_f64().with_context(|| format!("{name} missing in {v}"))
}

#[test]
fn evaluate_scores_every_method_beside_a_seeded_random_ranking() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let trace = tmp.path().join("trace");
    ok(&[
        "generate",
        "--prompt",
        "The capital of France is",
        "--max-new-tokens",
        "1",
        "--attribution",
        "grad_x_input,ig,rollout",
        "--out",
        s(&trace),
    ])?;
    let html = tmp.path().join("eval.html");
    let out = ok(&["evaluate", "--trace", s(&trace), "--json", "--html", s(&html)])?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let methods = v["methods"].as_object().context("methods")?;
    ensure!(methods.len() == 3, "{:?}", methods.keys().collect::<Vec<_>>());
    for (name, m) in methods {
        for key in METRICS {
            let (ours, random) = (metric(m, key)?, metric(&m["random_baseline"], key)?);
            ensure!((-1.0..=1.0).contains(&ours) && (-1.0..=1.0).contains(&random), "{name} {key}: {ours} {random}");
        }
        ensure!(m["curves"][0]["deletion"].as_array().is_some_and(|c| c.len() == 6), "{name}: one point per prompt token and the start");
    }
    // " France" drives " Paris": grad x input's deletion curve falls faster than a random order's.
    let gxi = &methods["grad_x_input"];
    ensure!(metric(gxi, "deletion_auc")? < metric(&gxi["random_baseline"], "deletion_auc")?, "{gxi}");
    ensure!(v["baseline"] == "eos" && v["replacement"]["token"] == "<|endoftext|>", "{}", v["replacement"]);
    ensure!(v["predictions"][0]["token"] == "ĠParis", "{}", v["predictions"]);
    let page = std::fs::read_to_string(&html)?;
    ensure!(page.contains("\"evaluation\":{") && page.contains("default-src 'none'"));

    // The random ranking is seeded: the same seed gives the same numbers, another seed others.
    let random = |seed: &str| -> Result<f64> {
        let out = ok(&["evaluate", "--trace", s(&trace), "--method", "grad_x_input,ig", "--json", "--seed", seed, "--random-draws", "1"])?;
        let v: serde_json::Value = serde_json::from_str(&out)?;
        ensure!(v["methods"].as_object().is_some_and(|m| m.len() == 2), "--method keeps two");
        metric(&v["methods"]["grad_x_input"]["random_baseline"], "deletion_auc")
    };
    ensure!(random("3")? == random("3")?);
    ensure!((0..5).map(|i| random(&i.to_string())).collect::<Result<Vec<f64>>>()?.windows(2).any(|w| w[0] != w[1]));

    // Dropping instead of replacing, and the table.
    let table = ok(&["evaluate", "--trace", s(&trace), "--baseline", "drop"])?;
    ensure!(table.contains("dropped") && table.contains("random") && table.contains("grad_x_input"), "{table}");
    Ok(())
}

#[test]
fn evaluate_explains_a_masked_lm_per_mask_token() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let trace = tmp.path().join("mlm");
    let model = fixture("bert-wordpiece");
    let text = "The capital of France is [MASK].";
    ok(&["forward", "--model", s(&model), "--text", text, "--attribution", "grad_x_input", "--out", s(&trace)])?;
    let v: serde_json::Value = serde_json::from_str(&ok(&["evaluate", "--model", s(&model), "--trace", s(&trace), "--json"])?)?;
    ensure!(v["baseline"] == "mask" && v["replacement"]["token"] == "[MASK]", "{v}");
    ensure!(v["predictions"].as_array().is_some_and(|p| p.len() == 1), "one mask token");
    let m = &v["methods"]["grad_x_input"];
    for key in METRICS {
        metric(m, key)?;
    }
    // Every token but the mask is a candidate: the curve has one point per candidate and the start.
    let n_tokens = v["predictions"][0]["position"].as_u64().context("position")? as usize;
    ensure!(m["curves"][0]["removed"].as_array().is_some_and(|r| r.len() > n_tokens), "{}", m["curves"][0]);
    Ok(())
}

#[test]
fn evaluate_refuses_bad_input_in_one_line_and_writes_nothing() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let trace = tmp.path().join("trace");
    ok(&["generate", "--prompt", "The capital of Japan is", "--max-new-tokens", "1", "--attribution", "gradient", "--out", s(&trace)])?;
    let bare = tmp.path().join("bare");
    ok(&["generate", "--prompt", "The capital of Japan is", "--max-new-tokens", "1", "--out", s(&bare)])?;
    let html = tmp.path().join("never.html");
    let run = |args: &[&str], needle: &str| -> Result<()> {
        let mut all = vec!["evaluate", "--html", s(&html)];
        all.extend_from_slice(args);
        fails(&all, needle)?;
        ensure!(!html.exists(), "output written after a failure: {args:?}");
        Ok(())
    };
    run(&["--trace", s(&bare)], "no attributions")?;
    run(&["--trace", s(&trace), "--method", "deeplift"], "deeplift")?;
    run(&["--trace", s(&trace), "--method", "ig"], "no integrated_gradients attributions")?;
    run(&["--trace", s(&trace), "--model", s(&fixture("gpt2-deep"))], "different model")?;
    run(&["--trace", s(&trace), "--baseline", "pad"], "--baseline pad")?;
    run(&["--trace", s(&trace), "--baseline", "999999"], "outside the vocabulary")?;
    run(&["--trace", s(&trace), "--baseline", "zero"], "unknown baseline `zero`")?;
    run(&["--trace", s(&trace), "--random-draws", "0"], "--random-draws")?;
    run(&["--trace", s(&tmp.path().join("missing"))], "missing")?;
    Ok(())
}
