//! `ecco report` and the `--html` / `--svg` outputs of the analysis commands, end to end on the
//! GPT-2 BPE fixture: every view present, the page's JSON the same as `--json`, nothing fetched,
//! and one-line errors with no file written for bad input.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

mod common;
use common::{fails, fixture, ok, s};
use serde_json::Value;

/// A trace of the BPE fixture with everything recorded; 6 generated tokens.
fn full_trace(dir: &Path) -> Result<PathBuf> {
    let out = dir.join("trace");
    ok(&[
        "generate",
        "--model",
        s(&fixture("gpt2-bpe")),
        "--prompt",
        " Hello world, this is",
        "--max-new-tokens",
        "6",
        "--attribution",
        "grad_x_input",
        "--activations",
        "--hidden-states",
        "--attention",
        "--out",
        s(&out),
    ])?;
    Ok(out)
}

/// The JSON a page embeds, read back (the escapes are JSON escapes, so it parses as is).
fn embedded(page: &str) -> Result<Value> {
    let start = page.find("id=\"ecco-data\">").context("no data block")? + "id=\"ecco-data\">".len();
    let end = start + page[start..].find("</script>").context("unterminated data block")?;
    Ok(serde_json::from_str(&page[start..end])?)
}

fn check_self_contained(page: &str) -> Result<()> {
    ensure!(page.contains("http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"), "no CSP");
    for bad in ["src=\"http", "href=\"http", "@import", "url(http", "<link"] {
        ensure!(!page.contains(bad), "page refers to an external resource: {bad}");
    }
    Ok(())
}

#[test]
fn report_shows_every_view_and_embeds_what_json_prints() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let trace = full_trace(tmp.path())?;
    let html = tmp.path().join("report.html");
    let svgs = tmp.path().join("svg");
    std::fs::create_dir(&svgs)?;
    let model = fixture("gpt2-bpe");
    let json = ok(&[
        "report",
        "--trace",
        s(&trace),
        "--out",
        s(&html),
        "--model",
        s(&model),
        "--watch",
        "11,262",
        "--topk",
        "5",
        "--components",
        "3",
        "--neurons",
        "0:1,1:7",
        "--svg-dir",
        s(&svgs),
        "--json",
    ])?;
    let printed: Value = serde_json::from_str(&json)?;
    let page = std::fs::read_to_string(&html)?;
    check_self_contained(&page)?;
    let data = embedded(&page)?;
    ensure!(data == printed, "the page's JSON differs from --json");

    let trace_json: Value = serde_json::from_str(&std::fs::read_to_string(trace.join("trace.json"))?)?;
    let n = trace_json["tokens"].as_array().context("tokens")?.len();
    let n_input = trace_json["n_input_tokens"].as_u64().context("n_input")? as usize;
    let toks = data["tokens"]["tokens"].as_array().context("tokens view")?;
    ensure!(toks.len() == n && data["tokens"]["convention"] == "byte_level");
    // The prompt's pieces joined read as the prompt (generated pieces of this random model may
    // be fragments of a UTF-8 character, shown as U+FFFD one by one).
    let text: String = toks[..n_input].iter().filter_map(|t| t["text"].as_str()).collect();
    ensure!(text == " Hello world, this is", "display text {text:?} is not the prompt");
    ensure!(toks.iter().filter(|t| t["generated"] == true).count() == 6);

    let attr = &data["attributions"][0];
    ensure!(attr["method"] == "grad_x_input" && attr["first_target"] == n_input);
    ensure!(attr["rows"].as_array().map(Vec::len) == Some(6));
    let preds = data["layer_predictions"]["predictions"].as_array().context("predictions")?;
    ensure!(preds.len() == 2 && preds.iter().all(|l| l.as_array().map(Vec::len) == Some(5)));
    ensure!(data["layer_predictions"]["position"] == n_input);

    // The rankings are the ones `ecco rankings` computes.
    let ranks: Value = serde_json::from_str(&ok(&["rankings", "--model", s(&model), "--trace", s(&trace), "--json"])?)?;
    ensure!(data["rankings"]["rankings"] == ranks["rankings"], "rankings differ from `ecco rankings`");
    let watch: Value = serde_json::from_str(&ok(&[
        "rankings-watch",
        "--model",
        s(&model),
        "--trace",
        s(&trace),
        "--watch",
        "11,262",
        "--position",
        &n_input.to_string(),
        "--json",
    ])?)?;
    ensure!(data["rankings_watch"]["rankings"] == watch["rankings"]);
    ensure!(data["nmf"]["components"].as_array().map(Vec::len) == Some(3));
    ensure!(data["nmf"]["components"][0].as_array().map(Vec::len) == Some(n - 1));
    ensure!(data["neurons"]["neurons"] == serde_json::json!([{"layer": 0, "neuron": 1}, {"layer": 1, "neuron": 7}]));
    ensure!(data["attention"]["heads"].as_array().map(Vec::len) == Some(2) && data["attention"]["n_positions"] == n - 1);

    for name in ["rankings.svg", "rankings-watch.svg", "neurons.svg", "nmf.svg"] {
        let svg = std::fs::read_to_string(svgs.join(name)).with_context(|| name.to_owned())?;
        ensure!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.trim_end().ends_with("</svg>"), "{name} is not an SVG");
    }
    Ok(())
}

#[test]
fn analysis_commands_write_their_own_view() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let trace = full_trace(tmp.path())?;
    let model = fixture("gpt2-bpe");
    let p = |name: &str| tmp.path().join(name);
    let (m, t) = (s(&model), s(&trace));
    ok(&["rankings", "--model", m, "--trace", t, "--html", s(&p("r.html")), "--svg", s(&p("r.svg"))])?;
    ok(&[
        "rankings-watch",
        "--model",
        m,
        "--trace",
        t,
        "--watch",
        "11",
        "--position",
        "3",
        "--html",
        s(&p("w.html")),
        "--svg",
        s(&p("w.svg")),
    ])?;
    ok(&["layer-predictions", "--model", m, "--trace", t, "--position", "3", "--topk", "4", "--html", s(&p("l.html"))])?;
    ok(&["nmf", "--trace", t, "--components", "2", "--html", s(&p("n.html")), "--svg", s(&p("n.svg"))])?;
    for (file, view) in [("r.html", "rankings"), ("w.html", "rankings_watch"), ("l.html", "layer_predictions"), ("n.html", "nmf")] {
        let page = std::fs::read_to_string(p(file))?;
        check_self_contained(&page)?;
        let data = embedded(&page)?;
        ensure!(!data[view].is_null(), "{file} has no {view} view");
        ensure!(data["tokens"]["tokens"].as_array().is_some_and(|t| !t.is_empty()));
    }
    for file in ["r.svg", "w.svg", "n.svg"] {
        ensure!(std::fs::read_to_string(p(file))?.starts_with("<svg"), "{file}");
    }
    Ok(())
}

#[test]
fn bad_report_input_gives_one_line_errors_and_no_file() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let trace = full_trace(tmp.path())?;
    let t = s(&trace);
    let out = tmp.path().join("r.html");
    let o = s(&out);
    fails(&["report", "--trace", t, "--out", s(&tmp.path().join("missing").join("r.html"))], "does not exist")?;
    fails(&["report", "--trace", t, "--out", o, "--neurons", "3"], "LAYER:NEURON")?;
    fails(&["report", "--trace", t, "--out", o, "--neurons", "9:0"], "layer 9")?;
    fails(&["report", "--trace", t, "--out", o, "--neurons", "0:99999"], "neuron 99999")?;
    fails(&["report", "--trace", t, "--out", o, "--watch", "11"], "--watch needs --model")?;
    fails(&["report", "--trace", t, "--out", o, "--model", s(&fixture("gpt2-bpe")), "--position", "999"], "999")?;
    fails(&["report", "--trace", s(&tmp.path().join("nope")), "--out", o], "nope")?;
    fails(
        &["rankings", "--model", s(&fixture("gpt2-bpe")), "--trace", t, "--svg", s(&tmp.path().join("missing").join("r.svg"))],
        "does not exist",
    )?;
    ensure!(!out.exists(), "a failed run wrote {}", out.display());
    let left: Vec<String> =
        std::fs::read_dir(tmp.path())?.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    ensure!(left == ["trace"], "stray files: {left:?}");

    // A trace from `forward` (nothing generated, no activations) still gets a report.
    let fwd = tmp.path().join("fwd");
    ok(&["forward", "--model", s(&fixture("gpt2-bpe")), "--text", "a <b> & \"c\"", "--out", s(&fwd)])?;
    ok(&["report", "--trace", s(&fwd), "--out", o])?;
    let data = embedded(&std::fs::read_to_string(&out)?)?;
    ensure!(data["attributions"] == serde_json::json!([]) && data["nmf"].is_null());
    Ok(())
}
