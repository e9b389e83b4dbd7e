//! Rotary position embeddings (RoPE): the inverse frequencies of every scaling the supported
//! checkpoints name, cos/sin tables built once, and their application to queries and keys.
//!
//! The frequencies follow `transformers`' `modeling_rope_utils.py` (`ROPE_INIT_FUNCTIONS` and each
//! model's `compute_default_rope_parameters`): `default`, `linear`, `llama3`, `yarn` (with its
//! attention factor, which scales cos and sin), plus llama.cpp's per-frequency divisors
//! (`rope_freqs.weight` in a GGUF, how Llama 3.1 files store their `llama3` scaling). The angle of
//! position `p` and pair `i` is the f32 product `p * inv_freq[i]`, as `transformers` takes it, so
//! long positions agree too.
//!
//! Two layouts pair the dimensions of a head differently:
//! - [`RopeLayout::HalfSplit`] (Hugging Face, `rotate_half`): dimension `i` turns with `i + d/2`.
//! - [`RopeLayout::Interleaved`] (GPT-J, GGUF's native order): dimension `2i` turns with `2i + 1`.
//!   llama.cpp's converter permutes Llama's q/k rows into this order; a model that undoes the
//!   permutation ([`crate::gguf::unpermute_rows`]) uses the half-split layout instead.
//!
//! With a partial rotary factor only the first `rotary_dim` dimensions of each head turn; the rest
//! pass through.

use burn::tensor::{Device, Tensor, TensorData};

/// How the inverse frequencies are scaled (`rope_type` in `config.json`).
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    /// `default`: `inv_freq[i] = theta^(-2i/d)`.
    None,
    /// `linear`: every frequency divided by `factor`.
    Linear {
        /// The divisor.
        factor: f64,
    },
    /// `llama3` (Llama 3.1+): long wavelengths divided by `factor`, short ones kept, a smooth
    /// blend between.
    Llama3 {
        /// `factor` (8 in Llama 3.1).
        factor: f64,
        /// `low_freq_factor` (1).
        low_freq_factor: f64,
        /// `high_freq_factor` (4).
        high_freq_factor: f64,
        /// `original_max_position_embeddings` (8192).
        original_max_position_embeddings: f64,
    },
    /// `yarn`: a ramp between interpolated and extrapolated frequencies, and cos/sin scaled by an
    /// attention factor.
    Yarn {
        /// `factor`.
        factor: f64,
        /// `original_max_position_embeddings`.
        original_max_position_embeddings: f64,
        /// `beta_fast` (default 32).
        beta_fast: f64,
        /// `beta_slow` (default 1).
        beta_slow: f64,
        /// `attention_factor`; `None`: derived from `factor` (and `mscale`, `mscale_all_dim`).
        attention_factor: Option<f64>,
        /// `mscale`, if given.
        mscale: Option<f64>,
        /// `mscale_all_dim`, if given.
        mscale_all_dim: Option<f64>,
        /// `truncate` (default true): round the correction range outwards to whole dimensions.
        truncate: bool,
    },
    /// llama.cpp's frequency factors (`rope_freqs.weight`): `inv_freq[i] / factors[i]`.
    Factors(Vec<f32>),
}

/// Which dimensions of a head turn together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeLayout {
    /// Dimension `i` with `i + rotary_dim / 2` (Hugging Face's `rotate_half`).
    HalfSplit,
    /// Dimension `2i` with `2i + 1` (GPT-J, llama.cpp).
    Interleaved,
}

/// What the frequencies are computed from.
#[derive(Clone, Debug, PartialEq)]
pub struct RopeConfig {
    /// The base (`rope_theta`).
    pub theta: f64,
    /// Dimensions of a head that turn (`head_dim * partial_rotary_factor`), even.
    pub rotary_dim: usize,
    /// The scaling.
    pub scaling: RopeScaling,
}

/// Why a [`RopeConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RopeError {
    /// `rotary_dim` is zero or odd.
    #[error("the rotary dimension must be even and positive, found {0}")]
    BadDim(usize),
    /// A parameter that must be positive and finite is not.
    #[error("rope parameter `{name}` must be positive and finite, found {value}")]
    BadParameter {
        /// The parameter's `config.json` name.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// llama3's `high_freq_factor` must exceed `low_freq_factor`.
    #[error("llama3 rope scaling needs high_freq_factor ({high}) > low_freq_factor ({low})")]
    Llama3Factors {
        /// `low_freq_factor`.
        low: f64,
        /// `high_freq_factor`.
        high: f64,
    },
    /// The frequency factors do not match the rotary dimension.
    #[error("{found} rope frequency factors for a rotary dimension of {rotary_dim} (want {})", rotary_dim / 2)]
    FactorCount {
        /// How many the file has.
        found: usize,
        /// The rotary dimension.
        rotary_dim: usize,
    },
}

fn positive(name: &'static str, value: f64) -> Result<(), RopeError> {
    if value.is_finite() && value > 0.0 { Ok(()) } else { Err(RopeError::BadParameter { name, value }) }
}

impl RopeConfig {
    /// Checks the parameters (what `rope_config_validation` checks, and what would divide by zero).
    ///
    /// # Errors
    /// [`RopeError`].
    pub fn validate(&self) -> Result<(), RopeError> {
        if self.rotary_dim == 0 || !self.rotary_dim.is_multiple_of(2) {
            return Err(RopeError::BadDim(self.rotary_dim));
        }
        positive("rope_theta", self.theta)?;
        match &self.scaling {
            RopeScaling::None => {}
            RopeScaling::Linear { factor } => positive("factor", *factor)?,
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                positive("factor", *factor)?;
                positive("low_freq_factor", *low_freq_factor)?;
                positive("high_freq_factor", *high_freq_factor)?;
                positive("original_max_position_embeddings", *original_max_position_embeddings)?;
                if high_freq_factor <= low_freq_factor {
                    return Err(RopeError::Llama3Factors { low: *low_freq_factor, high: *high_freq_factor });
                }
            }
            RopeScaling::Yarn { factor, original_max_position_embeddings, beta_fast, beta_slow, attention_factor, .. } => {
                positive("factor", *factor)?;
                positive("original_max_position_embeddings", *original_max_position_embeddings)?;
                positive("beta_fast", *beta_fast)?;
                positive("beta_slow", *beta_slow)?;
                if let Some(a) = attention_factor {
                    positive("attention_factor", *a)?;
                }
            }
            RopeScaling::Factors(f) => {
                if f.len() != self.rotary_dim / 2 {
                    return Err(RopeError::FactorCount { found: f.len(), rotary_dim: self.rotary_dim });
                }
                for &x in f {
                    positive("rope_freqs", f64::from(x))?;
                }
            }
        }
        Ok(())
    }

    /// The inverse frequencies (`rotary_dim / 2` of them) and the factor cos and sin are scaled by
    /// (1 except for yarn), as `ROPE_INIT_FUNCTIONS[rope_type](config)` returns them.
    ///
    /// # Errors
    /// [`RopeError`] when the configuration is invalid.
    pub fn inv_freq(&self) -> Result<(Vec<f32>, f32), RopeError> {
        self.validate()?;
        let d = self.rotary_dim;
        // transformers: `1 / base ** (arange(0, d, 2).float() / d)` in f32; the exponent is an f32
        // quotient, the power rounded once to f32.
        let pos_freq: Vec<f32> = (0..d / 2).map(|i| self.theta.powf(f64::from((2 * i) as f32 / d as f32)) as f32).collect();
        let base: Vec<f32> = pos_freq.iter().map(|&p| 1.0 / p).collect();
        Ok(match &self.scaling {
            RopeScaling::None => (base, 1.0),
            RopeScaling::Linear { factor } => (base.iter().map(|&f| f / *factor as f32).collect(), 1.0),
            RopeScaling::Factors(factors) => (base.iter().zip(factors).map(|(&f, &s)| f / s).collect(), 1.0),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings: old } => {
                // `_compute_llama3_parameters`: the wavelength is an f32 tensor, the thresholds
                // Python floats.
                let factor = *factor as f32;
                let low_wavelen = old / low_freq_factor;
                let high_wavelen = old / high_freq_factor;
                let freqs = base
                    .iter()
                    .map(|&f| {
                        let wavelen = (2.0 * std::f64::consts::PI) as f32 / f;
                        let w = f64::from(wavelen);
                        let scaled = if w > low_wavelen { f / factor } else { f };
                        if w < high_wavelen || w > low_wavelen {
                            scaled
                        } else {
                            let smooth = (*old as f32 / wavelen - *low_freq_factor as f32) / (*high_freq_factor - *low_freq_factor) as f32;
                            (1.0 - smooth) * scaled / factor + smooth * scaled
                        }
                    })
                    .collect();
                (freqs, 1.0)
            }
            RopeScaling::Yarn {
                factor,
                original_max_position_embeddings: orig,
                beta_fast,
                beta_slow,
                attention_factor,
                mscale,
                mscale_all_dim,
                truncate,
            } => {
                let get_mscale = |scale: f64, m: f64| if scale <= 1.0 { 1.0 } else { 0.1 * m * scale.ln() + 1.0 };
                let attention = match (attention_factor, mscale, mscale_all_dim) {
                    (Some(a), _, _) => *a,
                    (None, Some(m), Some(all)) if *m != 0.0 && *all != 0.0 => get_mscale(*factor, *m) / get_mscale(*factor, *all),
                    _ => get_mscale(*factor, 1.0),
                };
                let dim = d as f64;
                let correction_dim =
                    |rotations: f64| (dim * (orig / (rotations * 2.0 * std::f64::consts::PI)).ln()) / (2.0 * self.theta.ln());
                let (mut low, mut high) = (correction_dim(*beta_fast), correction_dim(*beta_slow));
                if *truncate {
                    low = low.floor();
                    high = high.ceil();
                }
                let (low, mut high) = (low.max(0.0), high.min(dim - 1.0));
                if low == high {
                    high += 0.001;
                }
                let (low32, span32) = (low as f32, (high - low) as f32);
                let freqs = pos_freq
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| {
                        let extrapolation = 1.0 / p;
                        let interpolation = 1.0 / (*factor as f32 * p);
                        let ramp = ((i as f32 - low32) / span32).clamp(0.0, 1.0);
                        let extrapolation_factor = 1.0 - ramp;
                        interpolation * (1.0 - extrapolation_factor) + extrapolation * extrapolation_factor
                    })
                    .collect();
                (freqs, attention as f32)
            }
        })
    }
}

/// Cos/sin tables for positions `0..max_positions`, built once, and their application to
/// `[batch, heads, seq, head_dim]` queries or keys.
#[derive(Clone, Debug)]
pub struct Rotary {
    /// `[max_positions, rotary_dim / 2]`, row-major, scaled by the attention factor.
    cos: Vec<f32>,
    /// As `cos`.
    sin: Vec<f32>,
    cos_t: Tensor<2>,
    sin_t: Tensor<2>,
    rotary_dim: usize,
    max_positions: usize,
    layout: RopeLayout,
    attention_factor: f32,
}

impl Rotary {
    /// The tables of `config` for positions `0..max_positions`, on `device`. They take
    /// `2 * max_positions * rotary_dim / 2` floats on the host and as much on the device, so
    /// `max_positions` is the longest sequence the model will run, not necessarily its context
    /// length (131 072 for Gemma 3).
    ///
    /// # Errors
    /// [`RopeError`] when the configuration is invalid.
    pub fn new(config: &RopeConfig, layout: RopeLayout, max_positions: usize, device: &Device) -> Result<Self, RopeError> {
        let (inv_freq, attention_factor) = config.inv_freq()?;
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(max_positions * half);
        let mut sin = Vec::with_capacity(max_positions * half);
        for p in 0..max_positions {
            for &f in &inv_freq {
                // The angle as transformers forms it (`inv_freq @ position_ids` in f32), then cos
                // and sin of that f32 angle.
                let angle = f64::from(p as f32 * f);
                cos.push(angle.cos() as f32 * attention_factor);
                sin.push(angle.sin() as f32 * attention_factor);
            }
        }
        let table = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [max_positions, half]), device);
        Ok(Self {
            cos_t: table(&cos),
            sin_t: table(&sin),
            cos,
            sin,
            rotary_dim: config.rotary_dim,
            max_positions,
            layout,
            attention_factor,
        })
    }

    /// Dimensions of a head that turn.
    pub fn rotary_dim(&self) -> usize {
        self.rotary_dim
    }

    /// Positions the tables cover.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// The pairing of dimensions.
    pub fn layout(&self) -> RopeLayout {
        self.layout
    }

    /// The factor cos and sin are scaled by (yarn's attention factor; else 1).
    pub fn attention_factor(&self) -> f32 {
        self.attention_factor
    }

    /// Cos and sin of position `position`, `rotary_dim / 2` each (scaled by the attention
    /// factor), or `None` past the tables.
    pub fn cos_sin(&self, position: usize) -> Option<(&[f32], &[f32])> {
        let half = self.rotary_dim / 2;
        (position < self.max_positions)
            .then(|| (&self.cos[position * half..(position + 1) * half], &self.sin[position * half..(position + 1) * half]))
    }

    /// Turns `x` `[batch, heads, seq, head_dim]` whose first row is position `start` (the length
    /// of the cached prefix).
    ///
    /// # Panics
    /// When `start + seq` exceeds [`Rotary::max_positions`] or `head_dim` is smaller than the
    /// rotary dimension: the model checks lengths against its context before running.
    pub fn apply(&self, x: Tensor<4>, start: usize) -> Tensor<4> {
        self.rotate(x, start, false)
    }

    /// The transpose of [`Rotary::apply`] (the turn by minus the angle, same scale): the
    /// gradient with respect to the input, given the gradient with respect to the output.
    ///
    /// # Panics
    /// As [`Rotary::apply`].
    pub fn apply_transposed(&self, dy: Tensor<4>, start: usize) -> Tensor<4> {
        self.rotate(dy, start, true)
    }

    fn rotate(&self, x: Tensor<4>, start: usize, transposed: bool) -> Tensor<4> {
        let [batch, heads, seq, head_dim] = x.dims();
        let (rd, half) = (self.rotary_dim, self.rotary_dim / 2);
        assert!(
            start + seq <= self.max_positions && rd <= head_dim,
            "rotary: positions {start}..{} or head_dim {head_dim} out of range",
            start + seq
        );
        let table = |t: &Tensor<2>| t.clone().narrow(0, start, seq).reshape([1, 1, seq, half]);
        let (cos, sin) = (table(&self.cos_t), table(&self.sin_t));
        let sin = if transposed { sin.neg() } else { sin };
        let rot = if rd == head_dim { x.clone() } else { x.clone().narrow(3, 0, rd) };
        let turned = match self.layout {
            RopeLayout::HalfSplit => {
                let (x1, x2) = (rot.clone().narrow(3, 0, half), rot.narrow(3, half, half));
                let o1 = x1.clone() * cos.clone() - x2.clone() * sin.clone();
                let o2 = x2 * cos + x1 * sin;
                Tensor::cat(vec![o1, o2], 3)
            }
            RopeLayout::Interleaved => {
                let pairs = rot.reshape([batch, heads, seq, half, 2]);
                let x1 = pairs.clone().narrow(4, 0, 1).reshape([batch, heads, seq, half]);
                let x2 = pairs.narrow(4, 1, 1).reshape([batch, heads, seq, half]);
                let o1 = x1.clone() * cos.clone() - x2.clone() * sin.clone();
                let o2 = x2 * cos + x1 * sin;
                Tensor::stack::<5>(vec![o1, o2], 4).reshape([batch, heads, seq, rd])
            }
        };
        if rd == head_dim { turned } else { Tensor::cat(vec![turned, x.narrow(3, rd, head_dim - rd)], 3) }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};
    use serde::Deserialize;

    use super::*;
    use crate::readback::to_f32;

    #[derive(Deserialize)]
    struct Case {
        name: String,
        params: serde_json::Value,
        inv_freq: Vec<f32>,
        attention_factor: f32,
        cos: Vec<Vec<f32>>,
        sin: Vec<Vec<f32>>,
        q_rotated: Vec<Vec<Vec<f32>>>,
    }

    #[derive(Deserialize)]
    struct Reference {
        head_dim: usize,
        positions: Vec<usize>,
        q: Vec<Vec<Vec<f32>>>,
        cases: Vec<Case>,
    }

    fn reference() -> Reference {
        let path: std::path::PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "fixtures", "rotary", "reference.json"].iter().collect();
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixtures/rotary/reference.json")).expect("reference")
    }

    /// The config a case's `rope_parameters` describe, through the same parser `config.json` uses.
    fn config(case: &Case, head_dim: usize) -> RopeConfig {
        crate::llama::config::rope_from_json(Some(&case.params), 10_000.0, head_dim, 4096).expect("valid rope parameters")
    }

    fn close(what: &str, ours: &[f32], theirs: &[f32], tol: f32) {
        assert_eq!(ours.len(), theirs.len(), "{what}");
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            assert!((a - b).abs() <= tol, "{what}[{i}]: ours {a}, transformers {b}");
        }
    }

    #[test]
    fn frequencies_and_tables_match_transformers() {
        let r = reference();
        let device = Device::flex();
        for case in &r.cases {
            let config = config(case, r.head_dim);
            let (inv_freq, factor) = config.inv_freq().expect("inv_freq");
            close(&format!("{} inv_freq", case.name), &inv_freq, &case.inv_freq, 1e-6);
            assert!((factor - case.attention_factor).abs() < 1e-6, "{}: attention factor {factor}", case.name);
            let rotary = Rotary::new(&config, RopeLayout::HalfSplit, 4096, &device).expect("tables");
            for (j, &p) in r.positions.iter().enumerate() {
                let (cos, sin) = rotary.cos_sin(p).expect("in range");
                close(&format!("{} cos at {p}", case.name), cos, &case.cos[j], 1e-6);
                close(&format!("{} sin at {p}", case.name), sin, &case.sin[j], 1e-6);
            }
            assert!(rotary.cos_sin(4096).is_none());
        }
    }

    /// `[1, heads, positions, head_dim]` from nested lists.
    fn tensor(rows: &[Vec<Vec<f32>>], device: &Device) -> Tensor<4> {
        let (heads, seq, d) = (rows.len(), rows[0].len(), rows[0][0].len());
        let flat: Vec<f32> = rows.iter().flatten().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [1, heads, seq, d]), device)
    }

    /// Hugging Face's half-split order to GGUF's interleaved one within each head (what llama.cpp's
    /// `permute` does to q/k rows), and back.
    fn interleave(x: &[f32], d: usize, back: bool) -> Vec<f32> {
        let half = d / 2;
        let mut out = x.to_vec();
        for (o, h) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
            for i in 0..half {
                for j in 0..2 {
                    if back {
                        o[j * half + i] = h[2 * i + j];
                    } else {
                        o[2 * i + j] = h[j * half + i];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn applying_matches_apply_rotary_pos_emb_in_both_layouts() {
        let r = reference();
        let device = Device::flex();
        let q = tensor(&r.q, &device);
        let heads = r.q.len();
        for case in &r.cases {
            let config = config(case, r.head_dim);
            let want: Vec<f32> = case.q_rotated.iter().flatten().flatten().copied().collect();
            for layout in [RopeLayout::HalfSplit, RopeLayout::Interleaved] {
                let rotary = Rotary::new(&config, layout, 4096, &device).expect("tables");
                // One position at a time: the reference's positions are not contiguous.
                let mut rows = vec![Vec::new(); heads];
                for (j, &p) in r.positions.iter().enumerate() {
                    let x = q.clone().narrow(2, j, 1);
                    let x = match layout {
                        RopeLayout::HalfSplit => x,
                        RopeLayout::Interleaved => {
                            let data = interleave(&to_f32(x).expect("readback").data, r.head_dim, false);
                            Tensor::from_data(TensorData::new(data, [1, heads, 1, r.head_dim]), &device)
                        }
                    };
                    let mut y = to_f32(rotary.apply(x, p)).expect("readback").data;
                    if layout == RopeLayout::Interleaved {
                        y = interleave(&y, r.head_dim, true);
                    }
                    for (h, row) in rows.iter_mut().enumerate() {
                        row.push(y[h * r.head_dim..(h + 1) * r.head_dim].to_vec());
                    }
                }
                let ours: Vec<f32> = rows.into_iter().flatten().flatten().collect();
                close(&format!("{} {layout:?}", case.name), &ours, &want, 1e-5);
            }
        }
    }

    #[test]
    fn the_transpose_undoes_the_turn_and_partial_rotary_passes_the_rest() {
        let device = Device::flex();
        let x = Tensor::<4>::random([1, 2, 5, 12], burn::tensor::Distribution::Default, &device);
        let full = RopeConfig { theta: 10_000.0, rotary_dim: 12, scaling: RopeScaling::None };
        let partial = RopeConfig { rotary_dim: 8, ..full.clone() };
        for (config, layout) in [(full, RopeLayout::HalfSplit), (partial, RopeLayout::Interleaved)] {
            let rotary = Rotary::new(&config, layout, 16, &device).expect("tables");
            let turned = rotary.apply(x.clone(), 3);
            let back = to_f32(rotary.apply_transposed(turned.clone(), 3)).expect("readback").data;
            close("round trip", &back, &to_f32(x.clone()).expect("readback").data, 1e-5);
            if config.rotary_dim < 12 {
                let kept = to_f32(turned.narrow(3, 8, 4)).expect("readback").data;
                close("pass-through", &kept, &to_f32(x.clone().narrow(3, 8, 4)).expect("readback").data, 0.0);
            }
        }
    }

    #[test]
    fn invalid_parameters_are_errors() {
        let base = RopeConfig { theta: 10_000.0, rotary_dim: 8, scaling: RopeScaling::None };
        assert_eq!(RopeConfig { rotary_dim: 7, ..base.clone() }.validate(), Err(RopeError::BadDim(7)));
        assert!(RopeConfig { theta: 0.0, ..base.clone() }.validate().is_err());
        assert!(RopeConfig { scaling: RopeScaling::Linear { factor: f64::NAN }, ..base.clone() }.validate().is_err());
        let llama3 =
            RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 4.0, high_freq_factor: 1.0, original_max_position_embeddings: 8192.0 };
        assert!(matches!(RopeConfig { scaling: llama3, ..base.clone() }.validate(), Err(RopeError::Llama3Factors { .. })));
        assert!(matches!(
            RopeConfig { scaling: RopeScaling::Factors(vec![1.0; 3]), ..base.clone() }.validate(),
            Err(RopeError::FactorCount { .. })
        ));
        let factors = RopeConfig { scaling: RopeScaling::Factors(vec![1.0, 2.0, 4.0, 8.0]), ..base.clone() };
        let (plain, _) = base.inv_freq().expect("valid");
        let (scaled, _) = factors.inv_freq().expect("valid");
        assert_eq!(scaled, vec![plain[0], plain[1] / 2.0, plain[2] / 4.0, plain[3] / 8.0]);
    }
}
