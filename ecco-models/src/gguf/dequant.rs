//! GGML tensor types and their dequantization to f32.
//!
//! Block layouts and arithmetic follow gguf-py's reference `dequantize` (`gguf/quants.py`, the
//! NumPy port of `dequantize_row_*` in llama.cpp's `ggml/src/ggml-quants.c`); the products are
//! taken in the same order in f32 (e.g. Q4_K's `(d * scale) * q - (dmin * min)`), so the results
//! are bit-identical (checked against fixtures made with gguf-py,
//! `scripts/fixtures/gguf_quants.py`). Blocks are independent, so a tensor is dequantized in
//! parallel chunks of whole blocks, written straight into the output.

use rayon::prelude::*;

/// Elements of a K-quant super-block.
const QK_K: usize = 256;

/// The element types GGML defines (`ggml_type` in `ggml.h`; `GGMLQuantizationType` in gguf-py).
/// Every one is known so that any file's tensor sizes can be checked; [`GgmlType::can_dequantize`]
/// tells which ones this module turns into f32.
#[allow(non_camel_case_types, missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
    NVFP4,
    Q1_0,
}

/// The types [`dequantize`] supports, for error messages.
pub const DEQUANTIZABLE: &str = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K";

impl GgmlType {
    /// The type with GGML id `id`, if GGML defines one.
    pub fn from_id(id: u32) -> Option<Self> {
        use GgmlType::*;
        Some(match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2_K,
            11 => Q3_K,
            12 => Q4_K,
            13 => Q5_K,
            14 => Q6_K,
            15 => Q8_K,
            16 => IQ2_XXS,
            17 => IQ2_XS,
            18 => IQ3_XXS,
            19 => IQ1_S,
            20 => IQ4_NL,
            21 => IQ3_S,
            22 => IQ2_S,
            23 => IQ4_XS,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            29 => IQ1_M,
            30 => BF16,
            34 => TQ1_0,
            35 => TQ2_0,
            39 => MXFP4,
            40 => NVFP4,
            41 => Q1_0,
            _ => return None,
        })
    }

    /// `(elements per block, bytes per block)`, as `GGML_QUANT_SIZES` in gguf-py.
    pub fn block_size_and_bytes(self) -> (usize, usize) {
        use GgmlType::*;
        match self {
            F32 | I32 => (1, 4),
            F16 | BF16 | I16 => (1, 2),
            I8 => (1, 1),
            I64 | F64 => (1, 8),
            Q4_0 | IQ4_NL => (32, 2 + 16),
            Q4_1 => (32, 2 + 2 + 16),
            Q5_0 => (32, 2 + 4 + 16),
            Q5_1 => (32, 2 + 2 + 4 + 16),
            Q8_0 => (32, 2 + 32),
            Q8_1 => (32, 4 + 4 + 32),
            Q2_K => (QK_K, 2 + 2 + QK_K / 16 + QK_K / 4),
            Q3_K => (QK_K, 2 + QK_K / 4 + QK_K / 8 + 12),
            Q4_K => (QK_K, 2 + 2 + QK_K / 2 + 12),
            Q5_K => (QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12),
            Q6_K => (QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16),
            Q8_K => (QK_K, 4 + QK_K + QK_K / 8),
            IQ2_XXS => (QK_K, 2 + QK_K / 4),
            IQ2_XS => (QK_K, 2 + QK_K / 4 + QK_K / 32),
            IQ3_XXS => (QK_K, 2 + QK_K / 4 + QK_K / 8),
            IQ1_S => (QK_K, 2 + QK_K / 8 + QK_K / 16),
            IQ3_S => (QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4),
            IQ2_S => (QK_K, 2 + QK_K / 4 + QK_K / 16),
            IQ4_XS => (QK_K, 2 + 2 + QK_K / 2 + QK_K / 64),
            IQ1_M => (QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),
            TQ1_0 => (QK_K, 2 + 4 * 13),
            TQ2_0 => (QK_K, 2 + 64),
            MXFP4 => (32, 1 + 16),
            NVFP4 => (64, 4 + 32),
            Q1_0 => (128, 2 + 16),
        }
    }

    /// The type's name as GGML spells it (`Q4_K`, `BF16`).
    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2_K => "Q2_K",
            Q3_K => "Q3_K",
            Q4_K => "Q4_K",
            Q5_K => "Q5_K",
            Q6_K => "Q6_K",
            Q8_K => "Q8_K",
            IQ2_XXS => "IQ2_XXS",
            IQ2_XS => "IQ2_XS",
            IQ3_XXS => "IQ3_XXS",
            IQ1_S => "IQ1_S",
            IQ4_NL => "IQ4_NL",
            IQ3_S => "IQ3_S",
            IQ2_S => "IQ2_S",
            IQ4_XS => "IQ4_XS",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            IQ1_M => "IQ1_M",
            BF16 => "BF16",
            TQ1_0 => "TQ1_0",
            TQ2_0 => "TQ2_0",
            MXFP4 => "MXFP4",
            NVFP4 => "NVFP4",
            Q1_0 => "Q1_0",
        }
    }

    /// Whether [`dequantize`] handles this type.
    pub fn can_dequantize(self) -> bool {
        use GgmlType::*;
        matches!(self, F32 | F16 | BF16 | Q8_0 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q4_K | Q5_K | Q6_K)
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Blocks per parallel task: 8K–16K elements of quantized types, enough work per task to
/// amortise scheduling.
const BLOCKS_PER_TASK: usize = 512;
/// Elements per parallel task of the one-element-per-block types (F32, F16, BF16), converted in
/// one call each.
const SCALARS_PER_TASK: usize = 16 * 1024;

/// Dequantizes `bytes`, whole blocks of type `t`, into `out` (`bytes.len() / bytes_per_block *
/// block_size` elements). Returns `None`, writing nothing, when the type is not supported or the
/// lengths disagree.
pub fn dequantize_into(t: GgmlType, bytes: &[u8], out: &mut [f32]) -> Option<()> {
    use GgmlType::*;
    if !t.can_dequantize() {
        return None;
    }
    let (block, block_bytes) = t.block_size_and_bytes();
    if !bytes.len().is_multiple_of(block_bytes) || bytes.len() / block_bytes * block != out.len() {
        return None;
    }
    // Each arm instantiates `run` with its block function, so the per-block call is inlined.
    match t {
        F32 => run(bytes, out, 1, 4, block_f32),
        F16 => run(bytes, out, 1, 2, block_f16),
        BF16 => run(bytes, out, 1, 2, block_bf16),
        Q8_0 => run(bytes, out, block, block_bytes, block_q8_0),
        Q4_0 => run(bytes, out, block, block_bytes, block_q4_0),
        Q4_1 => run(bytes, out, block, block_bytes, block_q4_1),
        Q5_0 => run(bytes, out, block, block_bytes, block_q5_0),
        Q5_1 => run(bytes, out, block, block_bytes, block_q5_1),
        Q4_K => run(bytes, out, block, block_bytes, block_q4_k),
        Q5_K => run(bytes, out, block, block_bytes, block_q5_k),
        Q6_K => run(bytes, out, block, block_bytes, block_q6_k),
        _ => return None,
    }
    Some(())
}

/// Runs `f` over every block in parallel tasks of whole blocks; `f` gets one block and its
/// elements (for the one-element types, a task's whole run).
fn run(bytes: &[u8], out: &mut [f32], block: usize, block_bytes: usize, f: impl Fn(&[u8], &mut [f32]) + Sync) {
    let task_blocks = if block == 1 { SCALARS_PER_TASK } else { BLOCKS_PER_TASK };
    out.par_chunks_mut(block * task_blocks).zip(bytes.par_chunks(block_bytes * task_blocks)).for_each(|(out, bytes)| {
        if block == 1 {
            f(bytes, out);
        } else {
            for (o, b) in out.chunks_exact_mut(block).zip(bytes.chunks_exact(block_bytes)) {
                f(b, o);
            }
        }
    });
}

/// Dequantizes `bytes`, whole blocks of type `t`, into a new vector; `None` when the type is not
/// supported or `bytes` is not a whole number of blocks.
pub fn dequantize(t: GgmlType, bytes: &[u8]) -> Option<Vec<f32>> {
    let (block, block_bytes) = t.block_size_and_bytes();
    if !bytes.len().is_multiple_of(block_bytes) {
        return None;
    }
    let mut out = vec![0.0; bytes.len() / block_bytes * block];
    dequantize_into(t, bytes, &mut out)?;
    Some(out)
}

/// IEEE 754 half to single precision, subnormals included (exact, as NumPy's `astype`).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise the mantissa.
            let shift = m.leading_zeros() - 21;
            let m = (m << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (m << 13)
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[inline]
fn half(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn block_f32(b: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(b.chunks_exact(4)) {
        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

fn block_f16(b: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
    }
}

fn block_bf16(b: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16);
    }
}

/// `d` (f16), 32 × i8: `x = q * d`.
fn block_q8_0(b: &[u8], out: &mut [f32]) {
    let d = half(b, 0);
    for (o, &q) in out.iter_mut().zip(&b[2..34]) {
        *o = f32::from(q as i8) * d;
    }
}

/// `d` (f16), 16 bytes of nibbles: `x = d * (q - 8)`; byte `j`'s low nibble is element `j`, its
/// high nibble element `j + 16`.
fn block_q4_0(b: &[u8], out: &mut [f32]) {
    let d = half(b, 0);
    let (lo, hi) = out.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi).zip(&b[2..18]) {
        *l = d * f32::from((q & 0x0f) as i8 - 8);
        *h = d * f32::from((q >> 4) as i8 - 8);
    }
}

/// `d`, `m` (f16), 16 bytes of nibbles (as Q4_0): `x = d * q + m`.
fn block_q4_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (half(b, 0), half(b, 2));
    let (lo, hi) = out.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi).zip(&b[4..20]) {
        *l = d * f32::from(q & 0x0f) + m;
        *h = d * f32::from(q >> 4) + m;
    }
}

/// Element `j`'s five bits: the nibble as Q4_0 places it, and bit `j` of the little-endian
/// 32-bit mask `qh` as the fifth.
#[inline]
fn five_bits(qs: &[u8], qh: u32, j: usize) -> u8 {
    let nibble = if j < 16 { qs[j] & 0x0f } else { qs[j - 16] >> 4 };
    nibble | ((((qh >> j) & 1) as u8) << 4)
}

/// `d` (f16), `qh` (u32), 16 bytes of nibbles: `x = d * (q - 16)`.
fn block_q5_0(b: &[u8], out: &mut [f32]) {
    let d = half(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    for (j, o) in out.iter_mut().enumerate() {
        *o = d * f32::from(five_bits(qs, qh, j) as i8 - 16);
    }
}

/// `d`, `m` (f16), `qh` (u32), 16 bytes of nibbles: `x = d * q + m`.
fn block_q5_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (half(b, 0), half(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    for (j, o) in out.iter_mut().enumerate() {
        *o = d * f32::from(five_bits(qs, qh, j)) + m;
    }
}

/// The eight 6-bit scales and mins of a Q4_K / Q5_K super-block, packed in 12 bytes
/// (`get_scale_min_k4` in ggml-quants.c, `Q4_K.get_scale_min` in gguf-py).
fn scale_min_k4(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut mn) = ([0u8; 8], [0u8; 8]);
    for j in 0..4 {
        sc[j] = s[j] & 0x3f;
        mn[j] = s[j + 4] & 0x3f;
        sc[j + 4] = (s[j + 8] & 0x0f) | ((s[j] >> 2) & 0x30);
        mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30);
    }
    (sc, mn)
}

/// `d`, `dmin` (f16), 12 bytes of scales, 128 bytes of nibbles: eight sub-blocks of 32, each
/// `x = (d * scale) * q - (dmin * min)`; each 32-byte run of `qs` holds two sub-blocks (low
/// nibbles, then high).
fn block_q4_k(b: &[u8], out: &mut [f32]) {
    let (d, dmin) = (half(b, 0), half(b, 2));
    let (sc, mn) = scale_min_k4(&b[4..16]);
    let qs = &b[16..144];
    for (s, o) in out.chunks_exact_mut(32).enumerate() {
        let (dl, ml) = (d * f32::from(sc[s]), dmin * f32::from(mn[s]));
        let run = &qs[(s / 2) * 32..(s / 2) * 32 + 32];
        let shift = 4 * (s % 2);
        for (o, &q) in o.iter_mut().zip(run) {
            *o = dl * f32::from((q >> shift) & 0x0f) - ml;
        }
    }
}

/// As Q4_K with a fifth bit per element: sub-block `s` takes bit `s` of `qh[l]` (32 bytes).
fn block_q5_k(b: &[u8], out: &mut [f32]) {
    let (d, dmin) = (half(b, 0), half(b, 2));
    let (sc, mn) = scale_min_k4(&b[4..16]);
    let qh = &b[16..48];
    let qs = &b[48..176];
    for (s, o) in out.chunks_exact_mut(32).enumerate() {
        let (dl, ml) = (d * f32::from(sc[s]), dmin * f32::from(mn[s]));
        let run = &qs[(s / 2) * 32..(s / 2) * 32 + 32];
        let shift = 4 * (s % 2);
        for (l, o) in o.iter_mut().enumerate() {
            let q = ((run[l] >> shift) & 0x0f) | (((qh[l] >> s) & 1) << 4);
            *o = dl * f32::from(q) - ml;
        }
    }
}

/// 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 i8 scales, `d` (f16): sixteen
/// sub-blocks of 16, `x = (d * scale) * (q - 32)`. Each half of the block (128 elements) takes 64
/// bytes of `ql` (low nibbles for elements 0..64, high for 64..128) and 32 bytes of `qh` (bits
/// `2k..2k+2` for elements `32k..32k+32`).
fn block_q6_k(b: &[u8], out: &mut [f32]) {
    let (ql, qh, scales) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = half(b, 208);
    // `dequantize_row_q6_K`'s loop: each of the 32 lanes of a half gives four elements.
    for (h, y) in out.chunks_exact_mut(128).enumerate() {
        let (ql, qh, sc) = (&ql[h * 64..h * 64 + 64], &qh[h * 32..h * 32 + 32], &scales[h * 8..h * 8 + 8]);
        let scale = |i: usize| d * f32::from(sc[i] as i8);
        let q = |low: u8, high: u8| f32::from((low | (high << 4)) as i8 - 32);
        for l in 0..32 {
            let is = l / 16;
            y[l] = scale(is) * q(ql[l] & 0x0f, qh[l] & 3);
            y[l + 32] = scale(is + 2) * q(ql[l + 32] & 0x0f, (qh[l] >> 2) & 3);
            y[l + 64] = scale(is + 4) * q(ql[l] >> 4, (qh[l] >> 4) & 3);
            y[l + 96] = scale(is + 6) * q(ql[l + 32] >> 4, (qh[l] >> 6) & 3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_round_trips_and_sizes_match_gguf_py() {
        let mut known = 0;
        for id in 0..64 {
            if let Some(t) = GgmlType::from_id(id) {
                known += 1;
                let (block, bytes) = t.block_size_and_bytes();
                assert!(block > 0 && bytes > 0, "{t}");
            }
        }
        assert_eq!(known, 34);
        assert_eq!(GgmlType::Q4_K.block_size_and_bytes(), (256, 144));
        assert_eq!(GgmlType::Q6_K.block_size_and_bytes(), (256, 210));
        assert_eq!(GgmlType::Q5_K.block_size_and_bytes(), (256, 176));
    }

    #[test]
    fn half_precision_edge_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x03ff), 2f32.powi(-14) * (1023.0 / 1024.0));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
    }

    #[test]
    fn lengths_that_are_not_whole_blocks_are_refused() {
        assert!(dequantize(GgmlType::Q8_0, &[0u8; 35]).is_none());
        assert!(dequantize(GgmlType::IQ2_XXS, &[0u8; 66]).is_none());
        let mut out = vec![0.0; 31];
        assert!(dequantize_into(GgmlType::Q8_0, &[0u8; 34], &mut out).is_none());
        assert_eq!(dequantize(GgmlType::F32, &1.5f32.to_le_bytes()), Some(vec![1.5]));
    }
}
