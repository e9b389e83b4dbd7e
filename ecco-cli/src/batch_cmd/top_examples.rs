//! `ecco top-examples`: a neuron's top documents from a `--neuron-stats` batch run, each shown
//! around its strongest position with every token's activation (text, or a Neuroscope-style
//! HTML page of heatmaps drawn with `ecco-viz`, under the report's CSP).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use ecco_core::SafetensorsReader;
use ecco_viz::{PieceConvention, Scale, display_tokens, heatmap};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{ListAccessor, RowAccessor};

use super::manifest::Manifest;
use super::neurons::{STATS_FILE, TOP_FILE};
use super::{DOCUMENTS, TENSORS};

/// Arguments of `ecco top-examples`.
#[derive(Debug, Args)]
pub struct TopExamplesArgs {
    /// The output directory of `ecco batch … --activations --neuron-stats`.
    #[arg(long, value_name = "DIR")]
    batch: PathBuf,
    /// The neuron, as LAYER:NEURON (0-based), e.g. `3:1234`.
    #[arg(long, value_name = "L:N")]
    neuron: String,
    /// Tokens shown before each example's strongest position (a quarter as many after it).
    #[arg(long, default_value_t = 12, value_name = "N")]
    context: usize,
    /// Also write the examples as a self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

/// One top example with its context.
struct Shown {
    rank: i32,
    doc_id: String,
    position: usize,
    activation: f32,
    /// The context's display tokens and activations, and the strongest one's index among them.
    tokens: Vec<String>,
    values: Vec<f32>,
    at: usize,
}

/// `ecco top-examples`.
pub fn top_examples(args: &TopExamplesArgs) -> Result<()> {
    crate::write::check_writable(args.html.as_deref(), "--html")?;
    let (layer, neuron) = parse_neuron(&args.neuron)?;
    let Some(manifest) = Manifest::read(&args.batch) else {
        bail!("--batch {} is not an ecco batch output (no manifest.json)", args.batch.display());
    };
    let top_path = args.batch.join(TOP_FILE);
    if !top_path.is_file() {
        bail!("--batch {} has no neuron statistics: run `ecco batch` with --activations --neuron-stats", args.batch.display());
    }
    let (mean, max, count) = neuron_stats(&args.batch.join(STATS_FILE), layer, neuron)?;
    let convention = PieceConvention::detect(&manifest.family, &[]);
    let mut shown = Vec::new();
    for (rank, doc_id, shard, position, activation) in top_rows(&top_path, layer, neuron)? {
        let (tokens, values) = context_of(&args.batch, shard, &doc_id, layer, neuron)?;
        let start = position.saturating_sub(args.context);
        let end = (position + 1 + args.context.div_ceil(4)).min(values.len());
        let pieces = display_tokens(&tokens[start..end.min(tokens.len())], convention);
        shown.push(Shown {
            rank,
            doc_id,
            position,
            activation,
            tokens: pieces.into_iter().map(|p| p.text).collect(),
            values: values[start..end].to_vec(),
            at: position - start,
        });
    }
    outln!("neuron {layer}:{neuron}: mean {mean:.4}, max {max:.4} over {count} positions; top {} documents", shown.len())?;
    for s in &shown {
        let text: String = s.tokens.iter().enumerate().map(|(i, t)| if i == s.at { format!("[[{t}]]") } else { t.clone() }).collect();
        outln!("#{:<3} {:>9.4}  {} @{}: {}", s.rank, s.activation, s.doc_id, s.position, text.replace('\n', "\u{21b5}"))?;
    }
    if let Some(path) = &args.html {
        let page = html_page(layer, neuron, (mean, max, count), &shown, &manifest.model);
        ecco_viz::write_atomic(path, page.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// `L:N` as two indices.
fn parse_neuron(text: &str) -> Result<(usize, usize)> {
    let parsed = text.split_once(':').and_then(|(l, n)| Some((l.trim().parse().ok()?, n.trim().parse().ok()?)));
    parsed.with_context(|| format!("--neuron {text:?}: expected LAYER:NEURON, e.g. 3:1234"))
}

fn open(path: &Path) -> Result<SerializedFileReader<std::fs::File>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    SerializedFileReader::new(file).with_context(|| format!("cannot read {} as Parquet", path.display()))
}

/// The neuron's mean, max and position count; an unknown neuron is an error naming the range.
fn neuron_stats(path: &Path, layer: usize, neuron: usize) -> Result<(f64, f32, i64)> {
    let reader = open(path)?;
    let (mut layers, mut neurons) = (0usize, 0usize);
    for row in reader.get_row_iter(None)? {
        let row = row?;
        let (l, n) = (usize::try_from(row.get_int(0)?)?, usize::try_from(row.get_int(1)?)?);
        if (l, n) == (layer, neuron) {
            return Ok((row.get_double(3)?, row.get_float(4)?, row.get_long(2)?));
        }
        layers = layers.max(l + 1);
        neurons = neurons.max(n + 1);
    }
    bail!("--neuron {layer}:{neuron} is not in the statistics (layers 0..{layers}, neurons 0..{neurons})")
}

/// The neuron's top rows: rank, doc_id, shard, position, activation.
fn top_rows(path: &Path, layer: usize, neuron: usize) -> Result<Vec<(i32, String, usize, usize, f32)>> {
    let reader = open(path)?;
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None)? {
        let row = row?;
        if usize::try_from(row.get_int(0)?)? == layer && usize::try_from(row.get_int(1)?)? == neuron {
            let shard = usize::try_from(row.get_int(4)?)?;
            let position = usize::try_from(row.get_int(5)?)?;
            rows.push((row.get_int(2)?, row.get_string(3)?.clone(), shard, position, row.get_float(6)?));
        }
    }
    Ok(rows)
}

/// A document's raw tokens (from its shard's `documents` part) and the neuron's activation at
/// every position (from its shard's tensors).
fn context_of(dir: &Path, shard: usize, doc_id: &str, layer: usize, neuron: usize) -> Result<(Vec<String>, Vec<f32>)> {
    let part = dir.join(DOCUMENTS).join(format!("part-{shard:05}.parquet"));
    let mut tokens = None;
    for row in open(&part)?.get_row_iter(None)? {
        let row = row?;
        if row.get_string(0)? == doc_id {
            let list = row.get_list(2)?;
            tokens = Some((0..list.len()).map(|i| list.get_string(i).cloned()).collect::<Result<Vec<_>, _>>()?);
            break;
        }
    }
    let tokens = tokens.with_context(|| format!("{} has no document {doc_id}", part.display()))?;
    let path = dir.join(TENSORS).join(format!("shard-{shard:05}.safetensors"));
    let reader = SafetensorsReader::open(&path)?;
    let stacked = ["activations.decoder", "activations.encoder"].map(|n| format!("{doc_id}/{n}"));
    let values = if let Some(name) = stacked.iter().find(|n| reader.contains(n)) {
        let t = reader.read_f32(name)?;
        let &[_, neurons, positions] = t.shape.as_slice() else { bail!("{}: {name} is not [layers, neurons, positions]", path.display()) };
        let base = (layer * neurons + neuron) * positions;
        t.data.get(base..base + positions).context("neuron out of range")?.to_vec()
    } else {
        let name = format!("{doc_id}/blocks.{layer}.mlp.post");
        let t = reader.read_f32(&name)?;
        let &[positions, neurons] = t.shape.as_slice() else { bail!("{}: {name} is not [positions, neurons]", path.display()) };
        (0..positions).map(|p| t.data.get(p * neurons + neuron).copied().unwrap_or(0.0)).collect()
    };
    Ok((tokens, values))
}

/// The page: the report's stylesheet and CSP (no script: the heatmaps are inline SVG), one
/// heatmap per example, tokens coloured by the neuron's activation.
fn html_page(layer: usize, neuron: usize, (mean, max, count): (f64, f32, i64), shown: &[Shown], model: &str) -> String {
    let esc = ecco_viz::html::escape_html;
    let title = format!("ecco top examples: neuron {layer}:{neuron} of {model}");
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str(&format!("<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n", ecco_viz::content_security_policy()));
    page.push_str(&format!("<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n", esc(&title), ecco_viz::html::CSS));
    page.push_str(&format!("<h1>{}</h1>\n<main>\n", esc(&title)));
    page.push_str(&format!(
        "<p>Mean activation {mean:.4}, max {max:.4} over {count} positions. Each row is a document's context around its strongest position.</p>\n"
    ));
    for s in shown {
        page.push_str(&format!("<section>\n<h2>#{} · {} · position {} · {:.4}</h2>\n", s.rank, esc(&s.doc_id), s.position, s.activation));
        let values = vec![s.values.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>()];
        page.push_str(&heatmap(
            &format!("neuron {layer}:{neuron}"),
            &[format!("L{layer} N{neuron}")],
            &s.tokens,
            &values,
            Scale::RowSymmetric,
            true,
        ));
        page.push_str("</section>\n");
    }
    page.push_str("</main>\n</body>\n</html>\n");
    page
}
