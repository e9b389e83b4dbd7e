//! `pytorch_model.bin` checkpoints (ecco-models' `pytorch` feature): the gpt2-deep fixture saved
//! with `torch.save(model.state_dict())` by `scripts/fixtures/pytorch.py` gives the logits
//! transformers computed, and exactly those of the safetensors checkpoint.

mod common;

use std::path::Path;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Int, Tensor, TensorData};
use common::{Fixture, assert_close_scaled, fixture_dir};
use ecco_core::{CaptureSpec, F32Tensor, Logits, ModelInputs};
use ecco_models::{DeviceKind, LoadedModel, to_f32};

/// Every position's logits for `ids`.
fn logits(m: &LoadedModel, ids: &[u32]) -> Result<F32Tensor> {
    let lm = m.model.as_lm();
    let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    let t = Tensor::<2, Int>::from_data(TensorData::new(data, [1, ids.len()]), lm.device());
    let out = lm.forward(ModelInputs::new(lm.embed(t)), &CaptureSpec::none().with_logits(Logits::All))?;
    let logits = to_f32(out.logits.context("logits")?)?;
    Ok(F32Tensor { shape: vec![ids.len(), lm.info().vocab_size], data: logits.data })
}

/// Checks `dir`'s model against transformers' logits and the safetensors checkpoint's.
fn matches_the_safetensors_checkpoint(dir: &Path) -> Result<()> {
    let fixture = Fixture::load("gpt2-deep")?;
    let from_bin = ecco_models::load(dir, DeviceKind::Flex)?;
    let from_safetensors = ecco_models::load(&fixture.dir, DeviceKind::Flex)?;
    for case in &fixture.cases {
        let ids = &case.token_ids[..case.token_ids.len() - 1];
        let ours = logits(&from_bin, ids)?;
        assert_close_scaled("logits", &ours, fixture.tensor(&case.name, "logits")?, 1e-4).context(case.name.clone())?;
        ensure!(ours.data == logits(&from_safetensors, ids)?.data, "{}: logits differ from the safetensors load", case.name);
    }
    Ok(())
}

#[test]
fn pytorch_model_bin_gives_transformers_logits() -> Result<()> {
    let dir = fixture_dir("gpt2-deep-pytorch");
    ensure!(!dir.join("model.safetensors").exists() && dir.join("pytorch_model.bin").is_file());
    matches_the_safetensors_checkpoint(&dir)
}

#[test]
fn sharded_pytorch_checkpoints_load_through_their_index() -> Result<()> {
    let src = fixture_dir("gpt2-deep-pytorch");
    let tmp = tempfile::tempdir()?;
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(file), tmp.path().join(file))?;
    }
    let shard = "pytorch_model-00001-of-00001.bin";
    std::fs::copy(src.join("pytorch_model.bin"), tmp.path().join(shard))?;
    let index = serde_json::json!({ "metadata": {}, "weight_map": { "transformer.wte.weight": shard, "lm_head.weight": shard } });
    std::fs::write(tmp.path().join("pytorch_model.bin.index.json"), index.to_string())?;
    matches_the_safetensors_checkpoint(tmp.path())
}

#[test]
fn a_corrupt_pytorch_file_is_a_one_line_error_and_safetensors_come_first() -> Result<()> {
    let src = fixture_dir("gpt2-deep");
    let tmp = tempfile::tempdir()?;
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(file), tmp.path().join(file))?;
    }
    std::fs::write(tmp.path().join("pytorch_model.bin"), b"not a pickle")?;
    let err = ecco_models::load(tmp.path(), DeviceKind::Flex).err().context("a corrupt file cannot load")?;
    let text = err.to_string();
    ensure!(text.contains("pytorch_model.bin") && !text.contains('\n'), "{text}");
    // With safetensors beside it, the .bin is not read.
    std::fs::copy(src.join("model.safetensors"), tmp.path().join("model.safetensors"))?;
    ensure!(ecco_models::load(tmp.path(), DeviceKind::Flex).is_ok());
    Ok(())
}
