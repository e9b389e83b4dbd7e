//! The data of every view: one serde struct per view, the JSON shapes the crate docs list.

use serde::{Deserialize, Serialize};

/// Everything a report shows; absent views are `null` and their sections are left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Page title.
    pub title: String,
    /// The model that produced the trace.
    pub model: ModelSummary,
    /// The output sequence.
    pub tokens: TokensView,
    /// Primary attributions, one per method in the trace.
    #[serde(default)]
    pub attributions: Vec<AttributionView>,
    /// The logit lens's top-k tokens per layer at one position.
    #[serde(default)]
    pub layer_predictions: Option<LayerPredictionsView>,
    /// The rank of every generated token per layer.
    #[serde(default)]
    pub rankings: Option<RankingsView>,
    /// The ranks of chosen tokens per layer at one position.
    #[serde(default)]
    pub rankings_watch: Option<RankingsWatchView>,
    /// NMF factors of the FFN activations.
    #[serde(default)]
    pub nmf: Option<NmfView>,
    /// Attention weights per layer and head.
    #[serde(default)]
    pub attention: Option<AttentionView>,
    /// Activations of chosen neurons over the positions.
    #[serde(default)]
    pub neurons: Option<NeuronsView>,
    /// Faithfulness of the attributions: deletion and insertion curves and scores per method.
    #[serde(default)]
    pub evaluation: Option<EvaluationView>,
}

/// The model behind a report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Checkpoint directory or Hub id.
    pub name: String,
    /// Architecture family (`gpt2`, ...).
    pub family: String,
    /// Number of blocks.
    pub n_layers: usize,
}

/// The output sequence: input tokens, then generated ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TokensView {
    /// Number of input (prompt or encoder) tokens; the rest were generated.
    pub n_input: usize,
    /// The tokenizer's word-boundary convention.
    pub convention: Option<crate::tokens::PieceConvention>,
    /// One entry per token, in order.
    pub tokens: Vec<TokenEntry>,
}

/// One token of the output sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Token id.
    pub id: u32,
    /// The tokenizer's raw piece (`Ġworld`).
    pub raw: String,
    /// Display text (` world`); the texts concatenated read as the sentence.
    pub text: String,
    /// Whether the piece starts a word.
    pub word_start: bool,
    /// Whether the model generated it (false: it was part of the input).
    pub generated: bool,
}

/// One attribution method's scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributionView {
    /// Method name (`grad_x_input`, ...).
    pub method: String,
    /// Token index of the token `rows[0]` explains; row `k` explains token `first_target + k`.
    pub first_target: usize,
    /// Row `k`: the weight of every token read (token indices `0..len`), summing to 1.
    pub rows: Vec<Vec<f32>>,
}

/// One predicted token of one layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Token id.
    pub token_id: u32,
    /// Raw piece.
    pub token: String,
    /// Display text.
    pub text: String,
    /// Softmax probability under the layer's lens logits.
    pub prob: f32,
    /// 1-based rank in the vocabulary.
    pub ranking: usize,
}

/// Per layer, the top-k tokens predicted for one position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerPredictionsView {
    /// Position P (predictions come from the hidden state at P-1).
    pub position: usize,
    /// `raw` or `normed`.
    pub lens: String,
    /// Layer numbers of the rows.
    pub layers: Vec<usize>,
    /// `[layer][k]` predictions, best first.
    pub predictions: Vec<Vec<Prediction>>,
}

/// Per layer, the rank of every generated token at its own position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankingsView {
    /// `raw` or `normed`.
    pub lens: String,
    /// Layer numbers of the rows.
    pub layers: Vec<usize>,
    /// Token index of each column.
    pub positions: Vec<usize>,
    /// Display text of each column's token.
    pub tokens: Vec<String>,
    /// `[layer][column]` 1-based ranks.
    pub rankings: Vec<Vec<usize>>,
    /// Vocabulary size (the worst rank), for the colour scale.
    pub vocab_size: usize,
}

/// Per layer, the ranks of chosen token ids at one position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankingsWatchView {
    /// `raw` or `normed`.
    pub lens: String,
    /// Position P.
    pub position: usize,
    /// The watched ids.
    pub watch: Vec<u32>,
    /// Display text of each watched id.
    pub tokens: Vec<String>,
    /// Layer numbers of the rows.
    pub layers: Vec<usize>,
    /// `[layer][watched]` 1-based ranks.
    pub rankings: Vec<Vec<usize>>,
    /// Vocabulary size, for the colour scale.
    pub vocab_size: usize,
}

/// A neuron: its layer and index within the layer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronLoading {
    /// Layer number.
    pub layer: usize,
    /// Neuron index in the layer.
    pub neuron: usize,
    /// Its weight in the factor.
    pub weight: f32,
}

/// NMF of the FFN activations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NmfView {
    /// Layers factorised.
    pub layers: Vec<usize>,
    /// `[factor][position]` factor strengths (positions are token indices `0..n`).
    pub components: Vec<Vec<f32>>,
    /// Per factor, its top neurons.
    pub loadings: Vec<Vec<NeuronLoading>>,
    /// Frobenius norm of `X - W·H`.
    pub reconstruction_error: f64,
}

/// Attention weights, kept sparse: per query, the `top_k` keys it attends to most.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttentionView {
    /// Layer numbers.
    pub layers: Vec<usize>,
    /// Heads per layer.
    pub n_heads: usize,
    /// Number of query positions (token indices `0..n`).
    pub n_positions: usize,
    /// Keys kept per query.
    pub top_k: usize,
    /// `[layer][head][query]`: flat `[key, weight, key, weight, …]`, strongest first, weight
    /// as an integer `round(255 · w)` (0 to 255).
    pub heads: Vec<Vec<Vec<Vec<u32>>>>,
    /// `[layer][query]`: the same for the mean over heads.
    pub mean: Vec<Vec<Vec<u32>>>,
}

/// Activations of chosen neurons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronsView {
    /// The neurons, in the order of `values`.
    pub neurons: Vec<NeuronRef>,
    /// `[neuron][position]` activations (positions are token indices `0..n`).
    pub values: Vec<Vec<f32>>,
}

/// A neuron chosen for the activation heatmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeuronRef {
    /// Layer number.
    pub layer: usize,
    /// Neuron index in the layer.
    pub neuron: usize,
}

/// Faithfulness of the attributions (`ecco evaluate`): per method and for the random ranking,
/// the mean deletion and insertion curves and the four scores.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvaluationView {
    /// How removed tokens were replaced (`eos`, `mask`, `drop`, …).
    pub baseline: String,
    /// How many predictions the scores average over.
    pub n_predictions: usize,
    /// The fraction of tokens removed (deletion) or restored (insertion) at each curve point.
    pub grid: Vec<f64>,
    /// One row per method, the random ranking last.
    pub rows: Vec<EvaluationRow>,
}

/// One method's (or the random ranking's) curves and scores.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRow {
    /// Method name, or `random`.
    pub method: String,
    /// Whether this is the random ranking.
    pub random: bool,
    /// Area under the deletion curve (lower is better).
    pub deletion_auc: f64,
    /// Area under the insertion curve (higher is better).
    pub insertion_auc: f64,
    /// AOPC comprehensiveness (higher is better).
    pub comprehensiveness: f64,
    /// AOPC sufficiency (lower is better).
    pub sufficiency: f64,
    /// Mean target probability at each `grid` point as top-ranked tokens are removed.
    pub deletion: Vec<f64>,
    /// Mean target probability at each `grid` point as top-ranked tokens are restored.
    pub insertion: Vec<f64>,
}
