//! What each fuzz target does with its input, shared by the targets (`fuzz_targets/`) and by
//! the workspace test that replays every kept crasher (`tests/tests/fuzz_regressions.rs`
//! includes this file). Each function must return, whatever the bytes: no panic, no abort, no
//! allocation beyond what the input's size explains.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Safetensors files (checkpoints and trace tensors): the header, the offsets it names and the
/// conversion of every tensor to f32.
pub fn safetensors(data: &[u8]) {
    if let Ok(reader) = ecco_core::SafetensorsReader::from_vec("fuzz.safetensors", data.to_vec()) {
        for name in reader.entries().keys() {
            let _ = reader.read_f32(name);
        }
    }
}

/// `tokenizer.json`: our single-pass BPE reader and the `tokenizers` fallback, then encoding and
/// decoding a few texts with whatever loaded.
pub fn tokenizer_json(data: &[u8]) {
    let Ok(tokenizer) = ecco_models::Tokenizer::from_bytes(Path::new("fuzz/tokenizer.json"), data) else { return };
    for text in ["The capital of France is [MASK].", " a  b\n\t<|endoftext|></s>", ""] {
        if let Ok(encoding) = tokenizer.encode(text, true) {
            let _ = tokenizer.decode(&encoding.ids);
            let _ = tokenizer.decode_skip_special(&encoding.ids);
            for &id in &encoding.ids {
                let _ = tokenizer.token(id);
            }
        }
    }
}

/// A scratch directory for the whole process: the readers below take paths.
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap_or_else(|e| panic!("scratch directory: {e}"))).path()
}

/// `pytorch_model.bin`: burn's pickle reader (ZIP, legacy and TAR layouts) and reading every
/// tensor it lists as f32.
pub fn pickle(data: &[u8]) {
    let path = scratch().join("pytorch_model.bin");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(file) = ecco_models::pytorch::PytorchFile::open(&path) {
        let names: Vec<String> = file.names().cloned().collect();
        for name in names {
            let _ = file.read_f32(&name);
        }
    }
}

/// The fixture whose weights and tokenizer go with each `model_type`.
const FIXTURES: &[(&str, &str)] = &[
    ("gpt2", "gpt2-deep"),
    ("bert", "bert-wordpiece"),
    ("roberta", "roberta-bpe"),
    ("distilbert", "distilbert-wordpiece"),
    ("t5", "t5-relu"),
];

/// Per fixture, a directory holding links to its weights and tokenizer (`config.json` is the
/// input's).
fn model_dirs() -> &'static [PathBuf] {
    static DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    DIRS.get_or_init(|| {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fixtures");
        FIXTURES
            .iter()
            .map(|(_, fixture)| {
                let dir = scratch().join(fixture);
                std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
                for file in ["model.safetensors", "tokenizer.json"] {
                    let (from, to) = (fixtures.join(fixture).join(file), dir.join(file));
                    if !to.exists() {
                        std::os::unix::fs::symlink(from, to).unwrap_or_else(|e| panic!("{e}"));
                    }
                }
                dir
            })
            .collect()
    })
}

/// `config.json` of every family: parsed and checked, then a whole model built from it with a
/// fixture's weights and tokenizer (a config may ask for any size; loading must refuse, not
/// allocate).
pub fn config_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("fuzz/config.json");
    let _ = ecco_models::gpt2::Gpt2Config::from_json(text, path);
    let _ = ecco_models::bert::BertConfig::from_json(text, path);
    let _ = ecco_models::t5::T5Config::from_json(text, path);
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else { return };
    let model_type = value.get("model_type").and_then(|t| t.as_str()).unwrap_or("gpt2");
    let Some(index) = FIXTURES.iter().position(|(t, _)| *t == model_type) else { return };
    let dir = &model_dirs()[index];
    if std::fs::write(dir.join("config.json"), data).is_ok() {
        let _ = ecco_models::load(dir, ecco_models::DeviceKind::Flex);
    }
}

/// A trace bundle as `ecco report` reads it (the input: a little-endian u32 length, that many
/// bytes of `trace.json`, then `tensors.safetensors`), loaded, checked, and rendered into every
/// view the trace supports without a model.
pub fn trace_bundle(data: &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<4>() else { return };
    let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
    let (json, tensors) = rest.split_at(len);
    let dir = scratch().join("trace");
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(dir.join("trace.json"), json).is_err()
        || std::fs::write(dir.join("tensors.safetensors"), tensors).is_err()
    {
        return;
    }
    let Ok(output) = ecco::Output::load(&dir) else { return };
    let options = ecco::ReportOptions { components: 2, progress: false, ..Default::default() };
    if let Ok(report) = output.report(&options) {
        let _ = ecco_viz::render_html(&report);
        let texts: Vec<String> = report.tokens.tokens.iter().map(|t| t.text.clone()).collect();
        if let Some(v) = &report.neurons {
            let _ = ecco_viz::neurons_svg(v, &texts);
        }
        if let Some(v) = &report.nmf {
            let _ = ecco_viz::nmf_svg(v, &report.tokens);
        }
    }
}
