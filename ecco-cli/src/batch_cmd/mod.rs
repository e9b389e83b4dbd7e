//! `ecco batch`: runs a corpus (JSONL or Parquet) through the model a document at a time
//! ([`ecco::batch::run_document`]) and writes the rows shard by shard (`docs/batch.md`):
//! memory holds one shard's rows, and a killed run resumes at its first unfinished shard.

mod input;
mod manifest;
mod neurons;
mod tables;
mod top_examples;

pub use top_examples::{TopExamplesArgs, top_examples};

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use ecco::batch::{BatchOptions, DocumentRows, SkipReason, run_document};
use ecco_attrib::parse_methods;
use ecco_core::F32Tensor;
use indicatif::{ProgressBar, ProgressStyle};

use self::input::{Input, Row};
use self::manifest::{FORMAT, MANIFEST, Manifest, Settings, ShardEntry};
use self::tables::{Column, ListLevels, bytes, u32_bits, write_table};
use crate::args::ModelArgs;

/// The table directories (each a directory of part files, one per shard) and the tensors'.
const DOCUMENTS: &str = "documents.parquet";
const ATTRIBUTIONS: &str = "attributions.parquet";
const SKIPPED: &str = "skipped.parquet";
const TENSORS: &str = "tensors";

/// Arguments of `ecco batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The documents: a JSON Lines file (one object per line) or a Parquet file.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The field (JSONL key, Parquet string column) holding each document's text.
    #[arg(long, default_value = "text", value_name = "NAME")]
    text_field: String,
    /// The field holding each document's id (a string or an integer); default: the row index.
    #[arg(long, value_name = "NAME")]
    id_field: Option<String>,
    /// Generate this many tokens after each document; without it, one forward pass.
    #[arg(long, value_name = "N")]
    max_new_tokens: Option<usize>,
    /// Attribution methods for every generated token, comma separated (as `ecco generate`).
    #[arg(long, value_name = "LIST")]
    attribution: Option<String>,
    /// Record FFN activations into `tensors/shard-NNNNN.safetensors`.
    #[arg(long)]
    activations: bool,
    /// Record these hook points too, keyed `{doc_id}/{hook name}` (comma separated; `*` for any
    /// block), e.g. `blocks.*.mlp.post`; see docs/hooks.md.
    #[arg(long, value_name = "PATTERNS")]
    capture: Option<String>,
    /// Per FFN neuron: count, mean, max and the top documents (`neuron_stats.parquet`,
    /// `top_examples.parquet`), from the captured activations (`--activations` or
    /// `--capture blocks.*.mlp.post`).
    #[arg(long)]
    neuron_stats: bool,
    /// How many top documents `--neuron-stats` keeps per neuron.
    #[arg(long, default_value_t = 20, value_name = "K", requires = "neuron_stats")]
    top_k: usize,
    /// Documents per shard: the unit of writing and of resuming.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    shard_size: usize,
    /// The output directory (absent, empty, or a run of this same command to resume).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// `ecco batch`.
pub fn batch(args: &BatchArgs) -> Result<()> {
    if args.shard_size == 0 {
        bail!("--shard-size must be at least 1");
    }
    if args.neuron_stats && args.top_k == 0 {
        bail!("--top-k must be at least 1");
    }
    if args.max_new_tokens == Some(0) {
        bail!("--max-new-tokens must be at least 1");
    }
    let attribution = match &args.attribution {
        Some(list) => parse_methods(list)?,
        None => Vec::new(),
    };
    let capture = match &args.capture {
        Some(list) => ecco_core::parse_hook_patterns(list)?,
        None => Vec::new(),
    };
    let tensors = args.activations || !capture.is_empty();
    if args.neuron_stats && !tensors {
        bail!("--neuron-stats reads the FFN activations: pass --activations (or --capture blocks.*.mlp.post)");
    }
    let input = Input::open(&args.input, &args.text_field, args.id_field.as_deref())?;
    let resumed = check_out_dir(&args.out)?;
    let lm = args.model.load()?;
    let options = BatchOptions { max_new_tokens: args.max_new_tokens, attribution, activations: args.activations, capture };
    let settings = Settings {
        model_hash: manifest::model_hash(&lm.loaded().dir, lm.name())?,
        input_sha256: manifest::sha256_file(&args.input)?,
        text_field: args.text_field.clone(),
        id_field: args.id_field.clone(),
        max_new_tokens: args.max_new_tokens,
        attribution: options.attribution.iter().map(|m| m.name().to_owned()).collect(),
        activations: args.activations,
        capture: options.capture.iter().map(ToString::to_string).collect(),
        shard_size: args.shard_size,
        ecco_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let mut manifest = match resumed {
        Some(manifest) => {
            manifest.check_same(&settings, &args.out)?;
            manifest
        }
        None => {
            let manifest = Manifest {
                format: FORMAT.to_owned(),
                version: 1,
                model: lm.name().to_owned(),
                family: lm.info().family.clone(),
                input: args.input.display().to_string(),
                settings,
                shards: Vec::new(),
                complete: false,
            };
            std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
            manifest.write(&args.out)?;
            manifest
        }
    };
    for dir in table_dirs(tensors) {
        prepare_dir(&args.out.join(dir))?;
    }
    if !manifest.complete {
        run(&lm, &input, &options, args, tensors, &mut manifest)?;
    }
    if args.neuron_stats {
        neurons::write(&args.out, &args.out.join(TENSORS), &manifest.shards, args.top_k)?;
    }
    let documents: u64 = manifest.shards.iter().map(|s| s.documents).sum();
    let skipped: u64 = manifest.shards.iter().map(|s| s.skipped).sum();
    outln!("{documents} documents, {skipped} skipped, {} shards in {}", manifest.shards.len(), args.out.display())?;
    Ok(())
}

/// The directories a run writes into.
fn table_dirs(tensors: bool) -> Vec<&'static str> {
    let mut dirs = vec![DOCUMENTS, ATTRIBUTIONS, SKIPPED];
    if tensors {
        dirs.push(TENSORS);
    }
    dirs
}

/// `--out` must be absent, empty, or hold a batch manifest (then the run resumes; it is
/// returned). Anything else is refused before any work, and left untouched.
fn check_out_dir(dir: &Path) -> Result<Option<Manifest>> {
    let refuse = |why: &str| bail!("refusing to write into --out {}: {why}", dir.display());
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read --out {}", dir.display())),
        Ok(m) if !m.is_dir() => return refuse("it is not a directory"),
        Ok(_) => {}
    }
    let mut entries = std::fs::read_dir(dir).with_context(|| format!("cannot read --out {}", dir.display()))?;
    if entries.next().is_none() {
        return Ok(None);
    }
    match Manifest::read(dir) {
        Some(manifest) => Ok(Some(manifest)),
        None => refuse(&format!("it is not empty and holds no ecco batch run (no {MANIFEST} of format {FORMAT})")),
    }
}

/// Creates a table directory, or checks it is a real one; removes the temporary files a killed
/// run left there (ours: `.part-…` or `.shard-…` with `.tmp-`, see [`ecco_viz::stage`]).
fn prepare_dir(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        Ok(m) if !m.is_dir() => bail!("refusing to write into {}: it is not a directory", dir.display()),
        Ok(_) => {
            for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
                let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = (name.starts_with(".part-") || name.starts_with(".shard-")) && name.contains(".tmp-");
                if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
                    std::fs::remove_file(entry.path()).with_context(|| format!("cannot remove {}", entry.path().display()))?;
                }
            }
        }
    }
    Ok(())
}

/// The rows of the shard being filled.
#[derive(Default)]
struct Shard {
    index: usize,
    first_row: u64,
    rows: u64,
    doc_ids: Vec<String>,
    token_levels: ListLevels,
    token_ids: Vec<i32>,
    tokens_levels: ListLevels,
    tokens: Vec<parquet::data_type::ByteArray>,
    n_input: Vec<i32>,
    output_text: Vec<parquet::data_type::ByteArray>,
    attr: AttributionColumns,
    skipped: Vec<(String, SkipReason)>,
    tensors: BTreeMap<String, F32Tensor>,
    /// Ids seen in this shard: a duplicate would collide in the tensors file.
    seen: HashSet<String>,
}

#[derive(Default)]
struct AttributionColumns {
    doc_id: Vec<parquet::data_type::ByteArray>,
    generated: Vec<i32>,
    source: Vec<i32>,
    method: Vec<parquet::data_type::ByteArray>,
    score: Vec<f32>,
}

impl Shard {
    fn new(index: usize, first_row: u64) -> Self {
        Self { index, first_row, ..Default::default() }
    }

    fn add(&mut self, doc_id: String, rows: DocumentRows) -> Result<()> {
        let id = bytes(&doc_id);
        self.token_levels.push_row(rows.token_ids.len());
        self.token_ids.extend(rows.token_ids.iter().map(|&t| u32_bits(t)));
        self.tokens_levels.push_row(rows.tokens.len());
        self.tokens.extend(rows.tokens.iter().map(|t| bytes(t)));
        self.n_input.push(i32::try_from(rows.n_input_tokens).context("too many tokens")?);
        self.output_text.push(bytes(&rows.output_text));
        for a in rows.attributions {
            self.attr.doc_id.push(id.clone());
            self.attr.generated.push(i32::try_from(a.generated_index).context("too many tokens")?);
            self.attr.source.push(i32::try_from(a.source_index).context("too many tokens")?);
            self.attr.method.push(bytes(&a.method));
            self.attr.score.push(a.score);
        }
        for (name, tensor) in rows.tensors {
            self.tensors.insert(format!("{doc_id}/{name}"), tensor);
        }
        self.doc_ids.push(doc_id);
        Ok(())
    }

    /// Writes the shard's part files (staged, then renamed into place) and returns its entry.
    fn write(self, out: &Path, tensors: bool) -> Result<ShardEntry> {
        let name = format!("part-{:05}.parquet", self.index);
        let n_attr = self.attr.score.len() as u64;
        let entry = ShardEntry {
            index: self.index,
            first_row: self.first_row,
            rows: self.rows,
            documents: self.doc_ids.len() as u64,
            skipped: self.skipped.len() as u64,
            attribution_rows: n_attr,
        };
        let documents = write_table(
            tables::DOCUMENTS_SCHEMA,
            vec![
                Column::Str(self.doc_ids.iter().map(|d| bytes(d)).collect()),
                Column::ListI32(self.token_levels, self.token_ids),
                Column::ListStr(self.tokens_levels, self.tokens),
                Column::I32(self.n_input),
                Column::Str(self.output_text),
            ],
        )?;
        let attributions = write_table(
            tables::ATTRIBUTIONS_SCHEMA,
            vec![
                Column::Str(self.attr.doc_id),
                Column::I32(self.attr.generated),
                Column::I32(self.attr.source),
                Column::Str(self.attr.method),
                Column::F32(self.attr.score),
            ],
        )?;
        let skipped = write_table(
            tables::SKIPPED_SCHEMA,
            vec![
                Column::Str(self.skipped.iter().map(|(d, _)| bytes(d)).collect()),
                Column::Str(self.skipped.iter().map(|(_, r)| bytes(r.code())).collect()),
                Column::Str(self.skipped.iter().map(|(_, r)| bytes(&r.detail())).collect()),
            ],
        )?;
        let mut outputs = crate::write::Outputs::default();
        outputs.stage(&out.join(DOCUMENTS).join(&name), &documents)?;
        outputs.stage(&out.join(ATTRIBUTIONS).join(&name), &attributions)?;
        outputs.stage(&out.join(SKIPPED).join(&name), &skipped)?;
        if tensors {
            let path = out.join(TENSORS).join(format!("shard-{:05}.safetensors", self.index));
            outputs.stage_with(&path, |tmp| Ok(ecco_core::write_safetensors(tmp, &self.tensors)?))?;
        }
        outputs.commit()?;
        Ok(entry)
    }
}

/// Runs every row after the finished shards, writing each shard as it fills.
fn run(lm: &ecco::Lm, input: &Input, options: &BatchOptions, args: &BatchArgs, tensors: bool, manifest: &mut Manifest) -> Result<()> {
    let total = input.count()?;
    let done = manifest.rows_done();
    let bar = progress_bar(total, done);
    let started = Instant::now();
    let mut tokens_seen = 0u64;
    let mut shard = Shard::new(manifest.shards.len(), done);
    input.for_each(done, |Row { index, doc_id, text }| {
        let result = match text {
            Err(reason) => Err(reason),
            Ok(_) if shard.seen.contains(&doc_id) => Err(SkipReason::DuplicateId),
            Ok(text) => run_document(lm, &text, options).with_context(|| format!("document {doc_id} (row {index})"))?,
        };
        shard.seen.insert(doc_id.clone());
        match result {
            Ok(rows) => {
                tokens_seen += rows.token_ids.len() as u64;
                shard.add(doc_id, rows)?;
            }
            Err(reason) => shard.skipped.push((doc_id, reason)),
        }
        shard.rows += 1;
        bar.inc(1);
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{:.0} tokens/s", tokens_seen as f64 / secs));
        if shard.rows == args.shard_size as u64 {
            let next = Shard::new(shard.index + 1, index + 1);
            let entry = std::mem::replace(&mut shard, next).write(&args.out, tensors)?;
            manifest.shards.push(entry);
            manifest.write(&args.out)?;
        }
        Ok(())
    })?;
    if shard.rows > 0 {
        manifest.shards.push(shard.write(&args.out, tensors)?);
    }
    manifest.complete = true;
    manifest.write(&args.out)?;
    bar.finish_and_clear();
    Ok(())
}

/// Documents/s, tokens/s and the ETA; drawn only when stderr is a terminal.
fn progress_bar(total: u64, done: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} docs, {per_sec}, {msg}, ETA {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix("batch");
    bar.set_position(done);
    bar.reset_eta();
    bar
}
