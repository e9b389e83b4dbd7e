//! The real all-MiniLM-L6-v2 (`BertModel`, 6 layers, width 384) against numbers `transformers`
//! computed on it (`scripts/fixtures/bert.py minilm`, committed in `fixtures/minilm-l6/`).
//!
//! The checkpoint itself (90 MB) is not committed: `scripts/fetch_minilm.sh` puts it in
//! `$ECCO_MINILM_DIR` (default `~/.cache/ecco-rs/minilm`). Without it this test fails, naming the
//! script, unless `ECCO_SKIP_MINILM=1`.

mod common;

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use common::{assert_close_scaled, fixture_dir};
use ecco_core::{CaptureSpec, SafetensorsReader};
use ecco_models::{DeviceKind, capture_pass};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    text: String,
    input_ids: Vec<u32>,
    tokens: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

fn checkpoint_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ECCO_MINILM_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/ecco-rs/minilm"))
}

#[test]
fn minilm_matches_transformers() -> Result<()> {
    let dir = checkpoint_dir().context("neither ECCO_MINILM_DIR nor HOME is set")?;
    if !dir.join("model.safetensors").is_file() {
        if std::env::var("ECCO_SKIP_MINILM").as_deref() == Ok("1") {
            eprintln!("skipping: no MiniLM checkpoint in {} (ECCO_SKIP_MINILM=1)", dir.display());
            return Ok(());
        }
        bail!("no MiniLM checkpoint in {}: run scripts/fetch_minilm.sh (or set ECCO_SKIP_MINILM=1)", dir.display());
    }
    let m = ecco_models::load(&dir, DeviceKind::Flex)?;
    ensure!(!m.model.has_lm_head(), "all-MiniLM-L6-v2 is a bare encoder");
    let info = m.model.as_lm().info();
    ensure!(info.family == "bert" && info.n_layers == 6 && info.hidden_size == 384, "{info:?}");
    let refs = fixture_dir("minilm-l6");
    let reference: Reference = serde_json::from_str(&std::fs::read_to_string(refs.join("reference.json"))?)?;
    let tensors = SafetensorsReader::open(refs.join("reference.safetensors"))?.read_all()?;
    ensure!(reference.cases.len() == 2);
    for case in &reference.cases {
        let enc = m.tokenizer.encode(&case.text, true)?;
        ensure!(enc.ids == case.input_ids && enc.tokens == case.tokens, "{}: tokens {:?}", case.name, enc.tokens);
        let (ours, _) = capture_pass(m.model.as_lm(), &case.input_ids, &CaptureSpec::all())?;
        for what in ["hidden_states", "activations"] {
            let Some(theirs) = tensors.get(&format!("{}.{what}", case.name)) else { continue };
            let ours = ours.get(&format!("{what}.encoder")).with_context(|| format!("no {what}.encoder"))?;
            assert_close_scaled(&format!("{} {what}", case.name), ours, theirs, 1e-4)?;
        }
    }
    ensure!(tensors.contains_key("s0.activations") && tensors.contains_key("s1.hidden_states"));
    Ok(())
}
