//! Static SVG heatmaps for papers: rankings, rankings-watch, neuron activations.

use crate::colour::viridis;
use crate::views::{NeuronsView, NmfView, RankingsView, RankingsWatchView, TokensView};

/// How values map to colours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// Ranks: `1 - ln(rank) / ln(worst)`, so rank 1 is the brightest.
    LogRank {
        /// The worst possible rank (vocabulary size).
        worst: usize,
    },
    /// Each row scaled to its largest magnitude, 0 in the middle of the scale.
    RowSymmetric,
    /// Each row scaled from 0 to its largest value (non-negative data such as NMF factors).
    RowMax,
}

/// Escapes text for SVG (XML 1.0) element content and attribute values: markup characters as
/// entities, and characters XML forbids (controls other than tab, newline and carriage return,
/// U+FFFE, U+FFFF) as their visible stand-ins (U+2400 + c for C0 controls, U+FFFD otherwise), so
/// a token such as `\0` cannot make the file unreadable.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if u32::from(c) < 0x20 => out.push(char::from_u32(0x2400 + u32::from(c)).unwrap_or('\u{fffd}')),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const CELL_W: usize = 44;
const CELL_H: usize = 22;
const LEFT: usize = 80;
const TOP: usize = 110;

/// A heatmap of `values` (`[row][column]`) with labels, cell numbers when `numbers`, and a
/// title; a standalone SVG document.
pub fn heatmap(title: &str, rows: &[String], cols: &[String], values: &[Vec<f64>], scale: Scale, numbers: bool) -> String {
    let n_cols = cols.len();
    let width = LEFT + n_cols * CELL_W + 20;
    let height = TOP + rows.len() * CELL_H + 20;
    let mut s = String::with_capacity(256 + rows.len() * n_cols * 160);
    s.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    ));
    s.push_str(&format!("<title>{}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n", escape_xml(title)));
    s.push_str(&format!("<text x=\"4\" y=\"16\" font-size=\"13\">{}</text>\n", escape_xml(title)));
    for (c, label) in cols.iter().enumerate() {
        let x = LEFT + c * CELL_W + CELL_W / 2 + 4;
        s.push_str(&format!(
            "<text x=\"{x}\" y=\"{}\" transform=\"rotate(-60 {x} {})\" xml:space=\"preserve\">{}</text>\n",
            TOP - 6,
            TOP - 6,
            escape_xml(&label.replace('\n', "\u{21b5}"))
        ));
    }
    for (r, row) in values.iter().enumerate() {
        let y = TOP + r * CELL_H;
        let label = rows.get(r).map_or("", String::as_str);
        s.push_str(&format!("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", LEFT - 6, y + CELL_H / 2 + 4, escape_xml(label)));
        let row_max = row.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
        for (c, &v) in row.iter().enumerate().take(n_cols) {
            let t = match scale {
                Scale::LogRank { worst } => 1.0 - v.max(1.0).ln() / (worst.max(2) as f64).ln(),
                Scale::RowSymmetric => 0.5 + 0.5 * v / row_max,
                Scale::RowMax => v / row_max,
            };
            let (fill, ink) = (viridis(t), if t > 0.55 { "#111" } else { "#fff" });
            let x = LEFT + c * CELL_W;
            s.push_str(&format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{CELL_W}\" height=\"{CELL_H}\" fill=\"{fill}\"><title>{v}</title></rect>\n"
            ));
            if numbers {
                s.push_str(&format!(
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{ink}\">{}</text>\n",
                    x + CELL_W / 2,
                    y + CELL_H / 2 + 4,
                    format_number(v)
                ));
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 { format!("{v:.0}") } else { format!("{v:.2}") }
}

fn layer_labels(layers: &[usize]) -> Vec<String> {
    layers.iter().map(|l| format!("layer {l}")).collect()
}

fn as_f64(rows: &[Vec<usize>]) -> Vec<Vec<f64>> {
    rows.iter().map(|r| r.iter().map(|&v| v as f64).collect()).collect()
}

/// The rankings heatmap as SVG.
pub fn rankings_svg(v: &RankingsView) -> String {
    let title = format!("Rank of each generated token per layer ({} lens)", v.lens);
    heatmap(&title, &layer_labels(&v.layers), &v.tokens, &as_f64(&v.rankings), Scale::LogRank { worst: v.vocab_size }, true)
}

/// The rankings-watch heatmap as SVG.
pub fn rankings_watch_svg(v: &RankingsWatchView) -> String {
    let title = format!("Rank of the watched tokens at position {} ({} lens)", v.position, v.lens);
    heatmap(&title, &layer_labels(&v.layers), &v.tokens, &as_f64(&v.rankings), Scale::LogRank { worst: v.vocab_size }, true)
}

/// The neuron-activation heatmap as SVG; `tokens` label the columns.
pub fn neurons_svg(v: &NeuronsView, tokens: &[String]) -> String {
    let rows: Vec<String> = v.neurons.iter().map(|n| format!("L{} N{}", n.layer, n.neuron)).collect();
    let values: Vec<Vec<f64>> = v.values.iter().map(|r| r.iter().map(|&x| f64::from(x)).collect()).collect();
    let n = values.first().map_or(0, Vec::len);
    let cols: Vec<String> = tokens.iter().take(n).cloned().collect();
    heatmap("Neuron activations", &rows, &cols, &values, Scale::RowSymmetric, false)
}

/// The NMF factors x positions heatmap as SVG.
pub fn nmf_svg(v: &NmfView, tokens: &TokensView) -> String {
    let rows: Vec<String> = (0..v.components.len()).map(|k| format!("factor {k}")).collect();
    let values: Vec<Vec<f64>> = v.components.iter().map(|r| r.iter().map(|&x| f64::from(x)).collect()).collect();
    let n = values.first().map_or(0, Vec::len);
    let cols: Vec<String> = tokens.tokens.iter().take(n).map(|t| t.text.clone()).collect();
    heatmap("NMF factor strength per token", &rows, &cols, &values, Scale::RowMax, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_escapes_labels_and_prints_numbers() {
        let svg =
            heatmap("t", &["layer 0".into()], &["<a&b>".into(), "x".into()], &[vec![1.0, 50257.0]], Scale::LogRank { worst: 50257 }, true);
        assert!(svg.contains("&lt;a&amp;b&gt;") && !svg.contains("<a&b>"));
        assert!(svg.contains(">1</text>") && svg.contains(">50257</text>"));
        assert_eq!(svg.matches("<rect x=").count(), 2);
        // Rank 1 is the brightest (viridis yellow), the worst rank the darkest.
        assert!(svg.contains("fill=\"#fde725\"") && svg.contains("fill=\"#440154\""));
    }

    #[test]
    fn characters_xml_forbids_are_replaced() {
        let svg =
            heatmap("a\u{0}b", &["r\u{1b}".into()], &["\u{0}".into(), "\u{ffff}\u{85}\t".into()], &[vec![1.0, 2.0]], Scale::RowMax, false);
        let forbidden = |c: char| matches!(u32::from(c), 0..=8 | 0xb | 0xc | 0xe..=0x1f | 0xfffe | 0xffff);
        assert!(!svg.chars().any(forbidden), "{svg:?}");
        assert!(svg.contains("a\u{2400}b") && svg.contains("r\u{241b}") && svg.contains("\u{fffd}\u{85}\t"));
    }
}
