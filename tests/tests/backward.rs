//! Hand-written backward passes against burn's autodiff: the BERT family's (built from the
//! layer library's backward pieces) with respect to the word embeddings, and its MLM head's.

mod common;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Distribution, Tensor};
use common::fixture_dir;
use ecco_core::{CaptureSpec, Logits, ModelInputs};
use ecco_models::DeviceKind;

fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data().try_into_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn close(what: &str, ours: Tensor<3>, theirs: Tensor<3>) -> Result<()> {
    let (ours, theirs) = (values(ours)?, values(theirs)?);
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = ours.iter().zip(&theirs).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    ensure!(scale > 0.0 && worst <= 1e-4 * scale, "{what}: max |diff| {worst:e}, scale {scale:e}");
    Ok(())
}

#[test]
fn masked_lm_backward_matches_autodiff() -> Result<()> {
    for name in ["bert-wordpiece", "roberta-bpe", "distilbert-wordpiece"] {
        let loaded = ecco_models::load(&fixture_dir(name), DeviceKind::Flex)?;
        let lm = loaded.model.as_lm();
        let ids = loaded.tokenizer.encode("The capital of France is Paris.", true)?.ids;
        let n = ids.len();
        let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let embeds = lm.embed(Tensor::from_data(burn::tensor::TensorData::new(data, [1, n]), lm.device()));
        // Two input copies (as integrated gradients scales them); rows read copies 1, 0, 1.
        let copies = Tensor::cat(vec![embeds.clone() * 0.5, embeds.clone()], 0);
        let tape = lm.input_gradients(copies.clone()).context("no hand-written backward pass")??;
        let hidden = lm.info().hidden_size;
        let cot = Tensor::<3>::random([3, n, hidden], Distribution::Default, lm.device());
        let ours = tape.backward(&[1, 0, 1], cot.clone())?;
        for (row, copy) in [(0, 1), (1, 0), (2, 1)] {
            let x = copies.clone().slice_dim(0, copy..copy + 1).autodiff().require_grad();
            let out = lm.forward(ModelInputs::new(x.clone()), &CaptureSpec::none().with_logits(Logits::Skip))?;
            let grads = (out.last_hidden * cot.clone().slice_dim(0, row..row + 1)).sum().backward();
            let theirs = x.grad(&grads).context("no gradient")?;
            close(&format!("{name} row {row}"), ours.clone().slice_dim(0, row..row + 1), theirs)?;
        }
        // The MLM head at two hidden states.
        let h = tape.last_hidden().slice_dim(1, 1..3).slice_dim(0, 0..1).reshape([2, 1, hidden]);
        let vocab = lm.info().vocab_size;
        let dlogits = Tensor::<3>::random([2, 1, vocab], Distribution::Default, lm.device());
        let ours = tape.head_backward_at(h.clone(), dlogits.clone())?;
        let ha = h.autodiff().require_grad();
        let grads = (lm.lm_head(ha.clone()).context("no head")? * dlogits).sum().backward();
        close(&format!("{name} head"), ours, ha.grad(&grads).context("no head gradient")?)?;
    }
    Ok(())
}
