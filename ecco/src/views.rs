//! Analysis results (`ecco-attrib`'s logit lens, `ecco-factor`'s NMF) turned into `ecco-viz`
//! views: what [`Output::to_html`](crate::Output::to_html) and the `ecco` command's `--html`
//! and `--svg` outputs show.

use anyhow::Result;
use ecco_attrib::{LayerPrediction, Lens};
use ecco_core::Trace;
use ecco_viz::{
    LayerPredictionsView, NeuronLoading, NmfView, PieceConvention, Prediction, RankingsView, RankingsWatchView, Report, display_tokens,
};

/// `raw` or `normed`, as the views spell it.
pub fn lens_name(lens: Lens) -> String {
    match lens {
        Lens::Raw => "raw".into(),
        Lens::Normed => "normed".into(),
    }
}

/// Display text of one raw piece under the trace's convention.
pub fn piece_text(trace: &Trace, raw: &str) -> String {
    let convention = PieceConvention::detect(&trace.model.family, &trace.tokens);
    // A lone piece that continues a word shows without the word separator the view adds.
    display_tokens(&[String::new(), raw.to_owned()], convention).pop().map_or_else(|| raw.to_owned(), |d| d.text)
}

/// The layer-predictions view; `only_layer` is the `--layer` the predictions were made for.
pub fn predictions_view(
    trace: &Trace,
    preds: &[Vec<LayerPrediction>],
    position: usize,
    lens: Lens,
    only_layer: Option<usize>,
) -> LayerPredictionsView {
    LayerPredictionsView {
        position,
        lens: lens_name(lens),
        layers: match only_layer {
            Some(l) => vec![l],
            None => (0..preds.len()).collect(),
        },
        predictions: preds
            .iter()
            .map(|row| {
                row.iter()
                    .map(|p| Prediction {
                        token_id: p.token_id,
                        token: p.token.clone(),
                        text: piece_text(trace, &p.token),
                        prob: ecco_viz::round_sig(p.prob),
                        ranking: p.ranking,
                    })
                    .collect()
            })
            .collect(),
    }
}

/// The rankings view of `[layers][generated]` ranks.
pub fn rankings_view(trace: &Trace, ranks: Vec<Vec<usize>>, lens: Lens) -> RankingsView {
    // An encoder-decoder's first generated token follows the decoder's start token.
    let first = trace.first_generated();
    let tokens = ecco_viz::TokensView::from_trace(trace);
    RankingsView {
        lens: lens_name(lens),
        layers: (0..ranks.len()).collect(),
        positions: (first..trace.tokens.len()).collect(),
        tokens: tokens.tokens[first.min(tokens.tokens.len())..].iter().map(|t| t.text.clone()).collect(),
        rankings: ranks,
        vocab_size: trace.model.vocab_size,
    }
}

/// The rankings-watch view; `raw` are the watched ids' raw pieces.
pub fn watch_view(trace: &Trace, ranks: Vec<Vec<usize>>, lens: Lens, position: usize, watch: &[u32], raw: &[String]) -> RankingsWatchView {
    RankingsWatchView {
        lens: lens_name(lens),
        position,
        watch: watch.to_vec(),
        tokens: raw.iter().map(|r| piece_text(trace, r)).collect(),
        layers: (0..ranks.len()).collect(),
        rankings: ranks,
        vocab_size: trace.model.vocab_size,
    }
}

/// The NMF view.
pub fn nmf_view(layers: Vec<usize>, components: &[Vec<f32>], loadings: Vec<Vec<NeuronLoading>>, error: f64) -> NmfView {
    NmfView {
        layers,
        components: components.iter().map(|c| c.iter().copied().map(ecco_viz::round_sig).collect()).collect(),
        loadings,
        reconstruction_error: error,
    }
}

/// The report holding the output sequence plus what `fill` adds (one command's view).
pub fn single_view_report(trace: &Trace, title: &str, fill: impl FnOnce(&mut Report)) -> Result<Report> {
    let mut report = Report::from_trace(trace)?;
    report.attributions.clear();
    report.title = format!("{title}: {}", trace.model.name);
    fill(&mut report);
    Ok(report)
}

/// The faithfulness view of an evaluation: each method's mean curves and scores, then the
/// random ranking's.
pub fn evaluation_view(evaluation: &crate::Evaluation) -> ecco_viz::EvaluationView {
    let row = |method: &str, random: bool, scores: &ecco_attrib::Scores, curves: &crate::evaluate::MeanCurves| ecco_viz::EvaluationRow {
        method: method.to_owned(),
        random,
        deletion_auc: scores.deletion_auc,
        insertion_auc: scores.insertion_auc,
        comprehensiveness: scores.comprehensiveness,
        sufficiency: scores.sufficiency,
        deletion: curves.deletion.clone(),
        insertion: curves.insertion.clone(),
    };
    let mut rows: Vec<ecco_viz::EvaluationRow> =
        evaluation.methods.iter().map(|(name, m)| row(name, false, &m.scores, &m.mean_curves)).collect();
    if let Some(m) = evaluation.methods.values().next() {
        rows.push(row("random", true, &m.random_baseline.scores, &m.random_baseline.mean_curves));
    }
    let n = crate::evaluate::MEAN_GRID;
    ecco_viz::EvaluationView {
        baseline: evaluation.baseline.clone(),
        n_predictions: evaluation.predictions.len(),
        grid: (0..n).map(|i| i as f64 / (n - 1) as f64).collect(),
        rows,
    }
}
