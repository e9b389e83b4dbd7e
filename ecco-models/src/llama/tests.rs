//! The configuration read from the fixtures' `config.json` (written by `transformers` 5.23,
//! `scripts/fixtures/decoders.py`), from older and partial spellings, and from GGUF metadata.

use std::path::{Path, PathBuf};

use super::config::SUPPORTED;
use super::*;
use crate::activation::Activation;
use crate::gguf::tests::{Builder, parse, string_value};
use crate::nn::rotary::{RopeConfig, RopeScaling};

fn fixture(name: &str) -> DecoderConfig {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "fixtures", name, "config.json"].iter().collect();
    DecoderConfig::from_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn json(text: &str) -> crate::Result<DecoderConfig> {
    DecoderConfig::from_json(text, Path::new("config.json"))
}

const S: LayerAttention = LayerAttention::Sliding;
const F: LayerAttention = LayerAttention::Full;

#[test]
fn the_fixture_families_read_with_their_switches() {
    let llama = fixture("llama-tiny");
    assert_eq!((llama.family, llama.num_layers, llama.hidden_size, llama.intermediate_size), (Family::Llama, 3, 64, 128));
    assert_eq!((llama.num_heads, llama.num_kv_heads, llama.head_dim, llama.vocab_size), (4, 2, 16, 400));
    assert_eq!(llama.rope, RopeConfig { theta: 10_000.0, rotary_dim: 16, scaling: RopeScaling::None });
    assert_eq!(llama.activation, Activation::Silu);
    assert!(!llama.tie_word_embeddings && !llama.qkv_bias && !llama.qk_norm && !llama.norm_plus_one && !llama.sandwich_norms);
    assert_eq!((llama.layer_types.as_slice(), llama.sliding_window, llama.attention_scale), (&[F, F, F][..], None, 0.25));
    assert_eq!((llama.bos_token_id, llama.eos_token_ids.as_slice(), llama.embedding_scale()), (Some(0), &[0][..], 1.0));

    let llama3 = fixture("llama3-tiny");
    assert!(llama3.tie_word_embeddings);
    let scaling = RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 16.0 };
    assert_eq!(llama3.rope, RopeConfig { theta: 500_000.0, rotary_dim: 16, scaling });

    let mistral = fixture("mistral-tiny");
    assert_eq!((mistral.family, mistral.sliding_window, mistral.layer_types.as_slice()), (Family::Mistral, Some(4), &[S, S][..]));

    let qwen2 = fixture("qwen2-tiny");
    assert!(qwen2.qkv_bias && !qwen2.o_bias && !qwen2.qk_norm);
    assert_eq!((qwen2.sliding_window, qwen2.layer_types.as_slice()), (None, &[F, F][..]));
    assert!(matches!(
        qwen2.rope.scaling,
        RopeScaling::Yarn {
            factor: 4.0,
            original_max_position_embeddings: 16.0,
            beta_fast: 32.0,
            beta_slow: 1.0,
            attention_factor: None,
            truncate: true,
            ..
        }
    ));

    let qwen3 = fixture("qwen3-tiny");
    assert!(qwen3.qk_norm && !qwen3.qkv_bias && qwen3.tie_word_embeddings);
    assert_eq!((qwen3.head_dim, qwen3.num_heads * qwen3.head_dim, qwen3.hidden_size), (32, 128, 64));
    assert_eq!(qwen3.rope.scaling, RopeScaling::Linear { factor: 2.0 });

    let gemma2 = fixture("gemma2-tiny");
    assert!(gemma2.norm_plus_one && gemma2.sandwich_norms && gemma2.scale_embeddings && !gemma2.qk_norm);
    assert_eq!((gemma2.activation, gemma2.embedding_scale()), (Activation::GeluTanh, 8.0));
    assert_eq!((gemma2.attn_logit_softcapping, gemma2.final_logit_softcapping), (Some(5.0), Some(3.0)));
    assert_eq!(gemma2.attention_scale, 24f64.powf(-0.5));
    assert_eq!((gemma2.sliding_window, gemma2.layer_types.as_slice()), (Some(4), &[S, F, S][..]));
    assert_eq!(gemma2.rope_local, None);

    let gemma3 = fixture("gemma3-tiny");
    assert!(gemma3.qk_norm && gemma3.norm_plus_one && gemma3.sandwich_norms && gemma3.scale_embeddings);
    assert_eq!((gemma3.attn_logit_softcapping, gemma3.final_logit_softcapping), (None, None));
    assert_eq!(gemma3.layer_types, [S, S, F]);
    assert_eq!(gemma3.rope, RopeConfig { theta: 1_000_000.0, rotary_dim: 16, scaling: RopeScaling::Linear { factor: 2.0 } });
    let local = RopeConfig { theta: 10_000.0, rotary_dim: 16, scaling: RopeScaling::None };
    assert_eq!((gemma3.rope_for_layer(0), gemma3.rope_for_layer(2)), (&local, &gemma3.rope));
}

#[test]
fn older_and_partial_configs_take_transformers_defaults() {
    // Before transformers 5: `rope_theta` + `rope_scaling` with the legacy `type` key.
    let c = json(
        r#"{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 96,
        "vocab_size": 100, "rope_theta": 500000.0, "rope_scaling": {"type": "linear", "factor": 4.0}, "eos_token_id": [7, 8, 9],
        "attention_bias": true, "mlp_bias": true}"#,
    )
    .expect("valid");
    assert_eq!((c.rope.theta, &c.rope.scaling), (500_000.0, &RopeScaling::Linear { factor: 4.0 }));
    assert_eq!((c.num_kv_heads, c.eos_token_ids.as_slice(), c.bos_token_id), (4, &[7, 8, 9][..], Some(1)));
    assert!(c.qkv_bias && c.o_bias && c.mlp_bias);
    // Gemma 3 as the Hub writes it: a multimodal wrapper whose text_config holds only what
    // differs from Gemma3TextConfig's defaults.
    let g = json(r#"{"model_type": "gemma3", "eos_token_id": [1, 106], "text_config": {"hidden_size": 2560, "intermediate_size": 10240,
        "model_type": "gemma3_text", "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024}}"#)
    .expect("valid");
    assert_eq!((g.family, g.vocab_size, g.num_heads, g.num_kv_heads, g.head_dim), (Family::Gemma3, 262_208, 8, 4, 256));
    assert_eq!((g.eos_token_ids.as_slice(), g.bos_token_id, g.sliding_window), (&[1, 106][..], Some(2), Some(1024)));
    assert_eq!(g.rope, RopeConfig { theta: 1_000_000.0, rotary_dim: 256, scaling: RopeScaling::Linear { factor: 8.0 } });
    assert_eq!(g.rope_local.as_ref().map(|r| r.theta), Some(10_000.0));
    assert_eq!(g.layer_types.iter().filter(|&&t| t == F).count(), 5, "every 6th of 34 layers is global");
    assert!(!g.is_sliding(5) && g.is_sliding(6) && g.tie_word_embeddings && (g.attention_scale - 1.0 / 16.0).abs() < 1e-15);
    // Qwen with its window switched on slides from max_window_layers on.
    let q = json(
        r#"{"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 4, "use_sliding_window": true,
        "sliding_window": 8, "max_window_layers": 2}"#,
    )
    .expect("valid");
    assert_eq!((q.sliding_window, q.layer_types.as_slice()), (Some(8), &[F, F, S, S][..]));
    // Gemma 2 alternates, starting with a sliding layer, and caps by default.
    let g2 = json(r#"{"model_type": "gemma2", "num_hidden_layers": 4}"#).expect("valid");
    assert_eq!(
        (g2.layer_types.as_slice(), g2.attn_logit_softcapping, g2.final_logit_softcapping),
        (&[S, F, S, F][..], Some(50.0), Some(30.0))
    );
    // A yarn factor of null is max_position_embeddings / original_max_position_embeddings.
    let y = json(
        r#"{"model_type": "qwen2", "max_position_embeddings": 131072, "rope_scaling": {"type": "yarn", "factor": null,
        "original_max_position_embeddings": 32768}}"#,
    )
    .expect("valid");
    assert!(matches!(y.rope.scaling, RopeScaling::Yarn { factor: 4.0, .. }));
}

#[test]
fn impossible_configs_are_one_line_errors() {
    let base = r#""model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 50"#;
    let err = |extra: &str| json(&format!("{{{base}{extra}}}")).expect_err("invalid").to_string();
    for (extra, want) in [
        (r#", "num_key_value_heads": 3"#, "not a multiple of num_key_value_heads"),
        (r#", "hidden_size": 0"#, "must be positive"),
        (r#", "hidden_act": "swishy""#, "unsupported activation `swishy`"),
        (r#", "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}"#, "unsupported rope type `dynamic`"),
        (r#", "rope_scaling": {"rope_type": "linear"}"#, "needs `factor`"),
        (r#", "rope_scaling": {"rope_type": "linear", "factor": -1}"#, "positive"),
        (r#", "rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1}"#, "high_freq_factor"),
        (r#", "layer_types": ["full_attention"]"#, "layer_types has 1 entries for 2 layers"),
        (r#", "layer_types": ["full_attention", "chunked_attention"]"#, "unsupported layer type"),
        (r#", "head_dim": 16, "partial_rotary_factor": 1.5"#, "partial_rotary_factor"),
        (r#", "eos_token_id": 50"#, "outside the vocabulary"),
        (r#", "rms_norm_eps": "small""#, "invalid type"),
    ] {
        let e = err(extra);
        assert!(e.contains(want) && !e.contains('\n'), "{extra}: {e}");
    }
    assert!(err(r#", "hidden_size": 66, "head_dim": null"#).contains("not a multiple of num_attention_heads"));
    let mistral = json(r#"{"model_type": "mistral", "num_hidden_layers": 2, "sliding_window": 0}"#).expect_err("zero window").to_string();
    assert!(mistral.contains("positive sliding_window"), "{mistral}");
    let other = json(r#"{"model_type": "phi3"}"#).expect_err("unsupported").to_string();
    assert!(other.contains("`phi3`") && SUPPORTED.iter().all(|t| other.contains(t)), "{other}");
    assert!(json("not json").is_err());
}

fn u32v(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn f32v(v: f32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// A GGUF with `arch`'s hyper-parameters (width 64, 4 heads, 2 key/value heads, 2 layers), with
/// `overrides` (key without the architecture, type, value) in place of or in addition to them.
fn gguf_with(arch: &str, overrides: &[(&str, u32, Vec<u8>)]) -> Builder {
    let base: Vec<(&str, u32, Vec<u8>)> = vec![
        ("block_count", 4, u32v(2)),
        ("embedding_length", 4, u32v(64)),
        ("feed_forward_length", 4, u32v(128)),
        ("attention.head_count", 4, u32v(4)),
        ("attention.head_count_kv", 4, u32v(2)),
        ("context_length", 4, u32v(256)),
        ("vocab_size", 4, u32v(100)),
        ("attention.layer_norm_rms_epsilon", 6, f32v(1e-5)),
    ];
    let mut b = Builder::default().kv("general.architecture", 8, &string_value(arch)).kv("tokenizer.ggml.eos_token_id", 4, &u32v(2)).kv(
        "tokenizer.ggml.eot_token_id",
        4,
        &u32v(7),
    );
    for (key, type_id, value) in base.iter().filter(|(k, ..)| !overrides.iter().any(|(o, ..)| o == k)).chain(overrides) {
        b = b.kv(&format!("{arch}.{key}"), *type_id, value);
    }
    b
}

fn from_gguf(b: Builder) -> Result<DecoderConfig, crate::gguf::GgufError> {
    DecoderConfig::from_gguf(&parse(b.build()).expect("parses"))
}

#[test]
fn gguf_metadata_and_tensors_give_the_switches() {
    let f32s = |n: usize| vec![0u8; 4 * n];
    // Qwen2: a q bias tensor means qkv biases; an output.weight means an untied head.
    let qwen = from_gguf(
        gguf_with("qwen2", &[("rope.freq_base", 6, f32v(1e6))])
            .tensor("blk.0.attn_q.bias", &[64], 0, 0)
            .tensor("output.weight", &[64, 100], 0, 256)
            .data(&f32s(64 + 6400)),
    )
    .expect("valid");
    assert!(qwen.qkv_bias && !qwen.tie_word_embeddings && !qwen.qk_norm);
    assert_eq!((qwen.family, qwen.head_dim, qwen.max_position_embeddings, qwen.rope.theta), (Family::Qwen2, 16, 256, 1e6));
    assert_eq!((qwen.rms_norm_eps as f32, qwen.eos_token_ids.as_slice()), (1e-5, &[2, 7][..]));
    // Gemma 3: norms already hold the 1 (no `1 + w`), sliding layers at base 10 000, q/k norm.
    let gemma = from_gguf(
        gguf_with("gemma3", &[("attention.key_length", 4, u32v(32)), ("attention.sliding_window", 4, u32v(512))])
            .tensor("blk.0.attn_q_norm.weight", &[32], 0, 0)
            .data(&f32s(32)),
    )
    .expect("valid");
    assert!(gemma.qk_norm && !gemma.norm_plus_one && gemma.sandwich_norms && gemma.scale_embeddings && gemma.tie_word_embeddings);
    assert_eq!((gemma.head_dim, gemma.sliding_window, gemma.layer_types.as_slice()), (32, Some(512), &[S, S][..]));
    assert_eq!((gemma.rope.theta, gemma.rope_local.as_ref().map(|r| r.theta)), (1e6, Some(10_000.0)));
    // Yarn from the scaling keys; Llama 3.1's scaling from rope_freqs.weight.
    let yarn = from_gguf(gguf_with(
        "llama",
        &[
            ("rope.scaling.type", 8, string_value("yarn")),
            ("rope.scaling.factor", 6, f32v(4.0)),
            ("rope.scaling.original_context_length", 4, u32v(64)),
        ],
    ))
    .expect("valid");
    assert!(matches!(yarn.rope.scaling, RopeScaling::Yarn { factor: 4.0, original_max_position_embeddings: 64.0, .. }));
    let factors: Vec<u8> = [1.0f32, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let llama31 = from_gguf(gguf_with("llama", &[]).tensor("rope_freqs.weight", &[8], 0, 0).data(&factors)).expect("valid");
    assert_eq!(llama31.rope.scaling, RopeScaling::Factors(vec![1.0, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]));
    // Errors.
    let e = |b: Builder| from_gguf(b).expect_err("invalid").to_string();
    assert!(e(gguf_with("phi2", &[])).contains("`phi2` is not supported"));
    assert!(e(Builder::default().kv("general.architecture", 8, &string_value("llama"))).contains("llama.embedding_length"));
    assert!(e(gguf_with("llama", &[("rope.scaling.type", 8, string_value("longrope"))])).contains("`longrope`"));
    assert!(e(gguf_with("llama", &[]).tensor("rope_freqs.weight", &[3], 0, 0).data(&[0; 12])).contains("frequency factors"));
    let kv3 = e(gguf_with("qwen3", &[("attention.head_count_kv", 4, u32v(3))]));
    assert!(kv3.contains("not a multiple"), "{kv3}");
    assert!(e(gguf_with("llama", &[("attention.head_count", 8, string_value("four"))])).contains("non-negative integer"));
}

/// `fixtures/llama-tiny` converted as llama.cpp converts a Llama (`scripts/fixtures/decoders.py`):
/// the same configuration, every weight bit for bit once the q/k rows are un-permuted, and the
/// same tokenizer.
#[test]
fn a_converted_llama_gguf_reads_back_to_the_safetensors_checkpoint() {
    let root: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "fixtures"].iter().collect();
    let file = crate::gguf::open(&root.join("gguf/llama-tiny.gguf")).expect("llama-tiny.gguf");
    let ours = DecoderConfig::from_gguf(&file).expect("config");
    let theirs = fixture("llama-tiny");
    assert!((ours.rms_norm_eps - theirs.rms_norm_eps).abs() < 1e-12, "the file holds an f32 epsilon");
    assert_eq!(DecoderConfig { rms_norm_eps: theirs.rms_norm_eps, ..ours.clone() }, theirs);

    let weights = ecco_core::SafetensorsReader::open(root.join("llama-tiny/model.safetensors")).expect("weights");
    assert_eq!(weights.entries().len(), file.tensors().len());
    for name in weights.entries().keys() {
        let gguf_name = gguf_tensor_name(Family::Llama, name).unwrap_or_else(|| panic!("no GGUF name for {name}"));
        let info = file.tensor(&gguf_name).unwrap_or_else(|| panic!("{gguf_name} missing"));
        let want = weights.read_f32(name).expect("tensor");
        assert_eq!(info.shape(), want.shape, "{name}");
        let mut got = file.dequantize_info(info).expect("f32");
        let heads = match &*gguf_name {
            n if n.ends_with("attn_q.weight") => Some(ours.num_heads),
            n if n.ends_with("attn_k.weight") => Some(ours.num_kv_heads),
            _ => None,
        };
        if let Some(heads) = heads {
            assert_ne!(got, want.data, "{name} is stored permuted");
            got = crate::gguf::unpermute_rows(&got, want.shape[0], want.shape[1], heads).expect("whole heads");
        }
        assert_eq!(got, want.data, "{name}");
    }

    let gguf_tok = crate::gguf::GgufTokenizer::from_gguf(&file).expect("tokenizer");
    let json_tok = crate::Tokenizer::from_file(&root.join("llama-tiny/tokenizer.json")).expect("tokenizer.json");
    assert!(!gguf_tok.add_bos && gguf_tok.eos_token_ids == theirs.eos_token_ids);
    for text in ["The capital of France is", " two  spaces\tand é<|endoftext|>x", ""] {
        let a = gguf_tok.tokenizer.encode(text, true).expect("encode");
        let b = json_tok.encode(text, true).expect("encode");
        assert_eq!((a.get_ids(), a.get_tokens()), (b.ids.as_slice(), b.tokens.as_slice()), "{text:?}");
    }
    assert_eq!(
        gguf_tensor_name(Family::Gemma2, "model.layers.0.post_attention_layernorm.weight").as_deref(),
        Some("blk.0.post_attention_norm.weight")
    );
    assert_eq!(gguf_tensor_name(Family::Llama, "model.layers.x.mlp.up_proj.weight"), None);
}
