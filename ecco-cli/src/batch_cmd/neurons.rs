//! `--neuron-stats`: per FFN neuron, the count, mean and max of its activations over every
//! position of every document, and its top-k documents (at each document's strongest
//! position). Computed after the run from the finished shards' tensors, one shard at a time,
//! in shard order: the same numbers however often the run was interrupted.
//!
//! The activation tensors are recognised by name and shape, not by the flag that made them:
//! `activations.decoder` / `activations.encoder` (`[layers, neurons, positions]`) and
//! `blocks.{i}.mlp.post` (`[positions, neurons]`, the hook name).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use ecco_core::SafetensorsReader;

use super::manifest::ShardEntry;
use super::tables::{Column, bytes, write_table};

/// The per-neuron statistics table.
pub const STATS_FILE: &str = "neuron_stats.parquet";
/// The top-examples table.
pub const TOP_FILE: &str = "top_examples.parquet";

const STATS_SCHEMA: &str = "message neuron_stats {
  required int32 layer;
  required int32 neuron;
  required int64 count;
  required double mean;
  required float max;
}";

const TOP_SCHEMA: &str = "message top_examples {
  required int32 layer;
  required int32 neuron;
  required int32 rank;
  required binary doc_id (STRING);
  required int32 shard;
  required int32 position;
  required float activation;
}";

/// One document's strongest position for a neuron.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The activation there.
    pub value: f32,
    /// The shard holding the document's tensors.
    pub shard: usize,
    /// The document.
    pub doc_id: String,
    /// The position (token index).
    pub position: usize,
}

/// The order of the top lists: stronger first, then by shard, document and position, so that
/// ties resolve the same way every time.
fn before(a: &Example, b: &Example) -> Ordering {
    b.value.total_cmp(&a.value).then(a.shard.cmp(&b.shard)).then_with(|| a.doc_id.cmp(&b.doc_id)).then(a.position.cmp(&b.position))
}

/// One layer's running statistics.
struct Layer {
    count: u64,
    sum: Vec<f64>,
    max: Vec<f32>,
    top: Vec<Vec<Example>>,
}

/// The running statistics of every layer seen, and the top-k size.
pub struct NeuronStats {
    k: usize,
    layers: BTreeMap<usize, Layer>,
}

impl NeuronStats {
    /// Empty statistics keeping the top `k` documents per neuron.
    pub fn new(k: usize) -> Self {
        Self { k, layers: BTreeMap::new() }
    }

    /// Adds one document's activations of `layer`: `value(neuron, position)` over
    /// `neurons × positions`.
    fn add(&mut self, layer: usize, neurons: usize, positions: usize, value: impl Fn(usize, usize) -> f32, shard: usize, doc_id: &str) {
        let k = self.k;
        let entry = self.layers.entry(layer).or_insert_with(|| Layer {
            count: 0,
            sum: vec![0.0; neurons],
            max: vec![f32::NEG_INFINITY; neurons],
            top: vec![Vec::new(); neurons],
        });
        if entry.sum.len() != neurons || positions == 0 {
            return;
        }
        entry.count += positions as u64;
        for n in 0..neurons {
            let (mut best, mut at, mut sum) = (f32::NEG_INFINITY, 0, 0.0f64);
            for p in 0..positions {
                let v = value(n, p);
                sum += f64::from(v);
                if v > best {
                    (best, at) = (v, p);
                }
            }
            entry.sum[n] += sum;
            entry.max[n] = entry.max[n].max(best);
            let example = Example { value: best, shard, doc_id: doc_id.to_owned(), position: at };
            let top = &mut entry.top[n];
            if top.len() < k || top.last().is_some_and(|worst| before(&example, worst) == Ordering::Less) {
                let i = top.partition_point(|e| before(e, &example) == Ordering::Less);
                top.insert(i, example);
                top.truncate(k);
            }
        }
    }

    /// Adds every activation tensor of one shard's tensors file.
    pub fn add_shard(&mut self, path: &Path, shard: usize) -> Result<()> {
        let reader = SafetensorsReader::open(path)?;
        for name in reader.entries().keys() {
            let Some((doc_id, tensor)) = name.rsplit_once('/') else { continue };
            if tensor == "activations.decoder" || tensor == "activations.encoder" {
                let t = reader.read_f32(name)?;
                let &[layers, neurons, positions] = t.shape.as_slice() else {
                    bail!("{}: {name} is not [layers, neurons, positions]", path.display())
                };
                for l in 0..layers {
                    let base = l * neurons * positions;
                    self.add(l, neurons, positions, |n, p| t.data[base + n * positions + p], shard, doc_id);
                }
            } else if let Some(layer) =
                tensor.strip_prefix("blocks.").and_then(|r| r.strip_suffix(".mlp.post")).and_then(|l| l.parse().ok())
            {
                let t = reader.read_f32(name)?;
                let &[positions, neurons] = t.shape.as_slice() else { bail!("{}: {name} is not [positions, neurons]", path.display()) };
                self.add(layer, neurons, positions, |n, p| t.data[p * neurons + n], shard, doc_id);
            }
        }
        Ok(())
    }

    /// The two tables' bytes: `neuron_stats` and `top_examples`.
    pub fn tables(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        let i32_of = |v: usize| i32::try_from(v).context("index too large for the table");
        let (mut layer, mut neuron, mut count, mut mean, mut max) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut t_layer, mut t_neuron, mut rank, mut doc, mut shard, mut pos, mut act) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (&l, stats) in &self.layers {
            for n in 0..stats.sum.len() {
                layer.push(i32_of(l)?);
                neuron.push(i32_of(n)?);
                count.push(i64::try_from(stats.count).context("count too large")?);
                mean.push(if stats.count == 0 { 0.0 } else { stats.sum[n] / stats.count as f64 });
                max.push(stats.max[n]);
                for (r, e) in stats.top[n].iter().enumerate() {
                    t_layer.push(i32_of(l)?);
                    t_neuron.push(i32_of(n)?);
                    rank.push(i32_of(r + 1)?);
                    doc.push(bytes(&e.doc_id));
                    shard.push(i32_of(e.shard)?);
                    pos.push(i32_of(e.position)?);
                    act.push(e.value);
                }
            }
        }
        let stats = write_table(
            STATS_SCHEMA,
            vec![Column::I32(layer), Column::I32(neuron), Column::I64(count), Column::F64(mean), Column::F32(max)],
        )?;
        let top = write_table(
            TOP_SCHEMA,
            vec![
                Column::I32(t_layer),
                Column::I32(t_neuron),
                Column::I32(rank),
                Column::Str(doc),
                Column::I32(shard),
                Column::I32(pos),
                Column::F32(act),
            ],
        )?;
        Ok((stats, top))
    }
}

/// Computes the statistics from the finished shards' tensors and writes both tables into `out`.
pub fn write(out: &Path, tensors_dir: &Path, shards: &[ShardEntry], k: usize) -> Result<()> {
    let mut stats = NeuronStats::new(k);
    for shard in shards {
        let path = tensors_dir.join(format!("shard-{:05}.safetensors", shard.index));
        stats.add_shard(&path, shard.index).with_context(|| format!("neuron statistics: cannot read {}", path.display()))?;
    }
    if stats.layers.is_empty() {
        bail!("--neuron-stats: the run's tensors hold no FFN activations");
    }
    let (table, top) = stats.tables()?;
    let mut outputs = crate::write::Outputs::default();
    outputs.stage(&out.join(STATS_FILE), &table)?;
    outputs.stage(&out.join(TOP_FILE), &top)?;
    outputs.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_lists_keep_the_strongest_documents_in_a_fixed_order() {
        let mut stats = NeuronStats::new(2);
        // One layer of two neurons over three positions, for four documents.
        let docs = [
            ("a", [1.0, 5.0, 2.0, 0.0, 0.0, 0.0]),
            ("b", [3.0, 0.0, 0.0, 0.0, -1.0, 0.0]),
            ("c", [5.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            ("d", [0.0; 6]),
        ];
        for (i, (id, values)) in docs.iter().enumerate() {
            stats.add(0, 2, 3, |n, p| values[n * 3 + p], i / 2, id);
        }
        let layer = &stats.layers[&0];
        assert_eq!(layer.count, 12);
        assert_eq!(layer.sum, vec![16.0, -1.0]);
        assert_eq!(layer.max, vec![5.0, 0.0]);
        // Neuron 0: a (5 at position 1) and c (5 at 0) tie; a's shard comes first.
        let top0: Vec<(&str, usize)> = layer.top[0].iter().map(|e| (e.doc_id.as_str(), e.position)).collect();
        assert_eq!(top0, [("a", 1), ("c", 0)]);
        // Neuron 1: every document's best is 0, so the shard, then the id, decide.
        let top1: Vec<&str> = layer.top[1].iter().map(|e| e.doc_id.as_str()).collect();
        assert_eq!(top1, ["a", "b"]);
    }
}
