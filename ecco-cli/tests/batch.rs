//! `ecco batch`: the tables hold what `ecco generate` writes, bad documents are skipped with
//! their reason, a killed run resumes to the same tables, and bad settings fail before any work.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use common::{fails, ok, read_json, s};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};

/// The rows of a table directory (every part file in name order) as JSON objects.
fn table(dir: &Path) -> Result<Vec<serde_json::Value>> {
    let mut parts: Vec<_> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    parts.retain(|p| p.extension().is_some_and(|e| e == "parquet"));
    parts.sort();
    let mut rows = Vec::new();
    for part in parts {
        let reader = SerializedFileReader::new(std::fs::File::open(&part)?)?;
        for row in reader.get_row_iter(None)? {
            rows.push(row_json(&row?));
        }
    }
    Ok(rows)
}

fn row_json(row: &Row) -> serde_json::Value {
    let map = row.get_column_iter().map(|(name, field)| (name.clone(), field_json(field))).collect();
    serde_json::Value::Object(map)
}

fn field_json(field: &Field) -> serde_json::Value {
    match field {
        Field::ListInternal(list) => list.elements().iter().map(field_json).collect(),
        // Scores compare exactly, as the f32 bits.
        Field::Float(v) => serde_json::json!(v.to_bits()),
        Field::Str(v) => serde_json::json!(v),
        Field::Int(v) => serde_json::json!(v),
        Field::UInt(v) => serde_json::json!(v),
        Field::Long(v) => serde_json::json!(v),
        Field::Double(v) => serde_json::json!(v),
        other => serde_json::json!(format!("unexpected {other:?}")),
    }
}

/// Writes a JSONL corpus of `lines` (raw bytes, one line each).
fn write_lines(path: &Path, lines: &[Vec<u8>]) -> Result<()> {
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    Ok(std::fs::write(path, bytes)?)
}

fn json_line(id: &str, text: &str) -> Vec<u8> {
    serde_json::json!({"id": id, "text": text}).to_string().into_bytes()
}

#[test]
fn tables_hold_what_generate_writes_and_bad_documents_are_skipped() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let corpus = tmp.path().join("corpus.jsonl");
    let long = "word ".repeat(80);
    write_lines(
        &corpus,
        &[
            json_line("france", "The capital of France is"),
            json_line("empty", ""),
            b"{\"id\": \"nofield\"}".to_vec(),
            b"{\"id\": \"latin1\", \"text\": \"caf\xe9\"}".to_vec(),
            b"".to_vec(),
            json_line("long", &long),
            b"not json".to_vec(),
            json_line("spain", "The capital of Spain is"),
            json_line("spain", "The capital of Italy is"),
        ],
    )?;
    let out = tmp.path().join("out");
    let args = ["batch", "--input", s(&corpus), "--id-field", "id", "--max-new-tokens", "2", "--attribution", "grad_x_input,ig"];
    ok(&[&args[..], &["--activations", "--shard-size", "3", "--out", s(&out)]].concat())?;

    let documents = table(&out.join("documents.parquet"))?;
    let ids: Vec<&str> = documents.iter().filter_map(|d| d["doc_id"].as_str()).collect();
    ensure!(ids == ["france", "spain"], "documents {ids:?}");
    let skipped = table(&out.join("skipped.parquet"))?;
    let reasons: Vec<(String, String)> =
        skipped.iter().map(|r| (r["doc_id"].as_str().unwrap_or("").to_owned(), r["reason"].as_str().unwrap_or("").to_owned())).collect();
    let expected = [
        ("empty", "empty_text"),
        ("nofield", "missing_field"),
        ("latin1", "invalid_utf8"),
        ("long", "too_long"),
        ("5", "invalid_row"),
        ("spain", "duplicate_id"),
    ];
    ensure!(reasons.iter().map(|(a, b)| (a.as_str(), b.as_str())).eq(expected), "skipped {reasons:?}");

    // The same numbers as `ecco generate`'s trace bundle.
    let trace_dir = tmp.path().join("trace");
    ok(&[
        "generate",
        "--prompt",
        "The capital of Spain is",
        "--max-new-tokens",
        "2",
        "--attribution",
        "grad_x_input,ig",
        "--activations",
        "--out",
        s(&trace_dir),
    ])?;
    let trace = read_json(&trace_dir.join("trace.json"))?;
    let spain = &documents[1];
    ensure!(spain["token_ids"] == trace["token_ids"] && spain["tokens"] == trace["tokens"], "tokens differ");
    ensure!(spain["n_input_tokens"] == trace["n_input_tokens"] && spain["output_text"] == trace["output_text"], "text differs");
    let attributions = table(&out.join("attributions.parquet"))?;
    for method in ["grad_x_input", "integrated_gradients"] {
        let rows = trace["attributions"][method].as_array().context("trace attributions")?;
        let mut expected = Vec::new();
        for (g, row) in rows.iter().enumerate() {
            for (src, score) in row.as_array().context("row")?.iter().enumerate() {
                let score = score.as_f64().context("score")? as f32;
                expected.push((g as i64, src as i64, score.to_bits()));
            }
        }
        let found: Vec<(i64, i64, u32)> = attributions
            .iter()
            .filter(|r| r["doc_id"] == "spain" && r["method"] == method)
            .map(|r| {
                (
                    r["generated_index"].as_i64().unwrap_or(-1),
                    r["source_index"].as_i64().unwrap_or(-1),
                    r["score"].as_u64().unwrap_or(0) as u32,
                )
            })
            .collect();
        ensure!(!expected.is_empty() && found == expected, "{method}: {found:?} vs {expected:?}");
    }
    let ours = ecco_core::SafetensorsReader::open(out.join("tensors").join("shard-00002.safetensors"))?;
    let theirs = ecco_core::SafetensorsReader::open(trace_dir.join("tensors.safetensors"))?;
    ensure!(ours.read_f32("spain/activations.decoder")? == theirs.read_f32("activations.decoder")?, "activations differ");
    let manifest = read_json(&out.join("manifest.json"))?;
    ensure!(manifest["complete"] == true && manifest["shards"].as_array().map(Vec::len) == Some(3), "{manifest}");
    Ok(())
}

/// A small xorshift generator: the kill times are seeded, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Every part file and tensors file of a run, by relative path.
fn files(out: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut map = BTreeMap::new();
    for dir in ["documents.parquet", "attributions.parquet", "skipped.parquet", "tensors"] {
        let Ok(entries) = std::fs::read_dir(out.join(dir)) else { continue };
        for entry in entries {
            let path = entry?.path();
            let name = path.strip_prefix(out)?.display().to_string();
            map.insert(name, std::fs::read(&path)?);
        }
    }
    Ok(map)
}

#[test]
fn a_run_killed_at_random_points_resumes_to_the_same_tables() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let corpus = tmp.path().join("corpus.jsonl");
    let countries = ["France", "Spain", "Italy", "Germany", "Japan", "Egypt", "Peru", "Chile", "Kenya", "Cuba", "Iran", "Mali", "Fiji"];
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for (i, c) in countries.iter().cycle().take(39).enumerate() {
        lines.push(json_line(&format!("{c}-{i}"), &format!("The capital of {c} is")));
    }
    lines.insert(4, json_line("blank", " "));
    write_lines(&corpus, &lines)?;
    let run = |out: &Path| -> Vec<String> {
        [
            "batch",
            "--input",
            s(&corpus),
            "--id-field",
            "id",
            "--max-new-tokens",
            "3",
            "--attribution",
            "grad_x_input",
            "--activations",
            "--neuron-stats",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .chain(["--shard-size".into(), "2".into(), "--out".into(), s(out).to_owned()])
        .collect()
    };
    let whole = tmp.path().join("whole");
    ok(&run(&whole).iter().map(String::as_str).collect::<Vec<_>>())?;

    // Five kills, each once the run has finished a seeded random number of further shards
    // (20 in all), then a seeded random 0-15 ms later: mid-document, mid-write or between shards.
    let killed = tmp.path().join("killed");
    let shards_done = || std::fs::read_to_string(killed.join("manifest.json")).unwrap_or_default().matches("\"index\"").count();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut interrupted = 0;
    for _ in 0..5 {
        let target = shards_done() + 1 + usize::try_from(rng.next() % 3)?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecco")).args(run(&killed)).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let started = Instant::now();
        while shards_done() < target && child.try_wait()?.is_none() && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(rng.next() % 16));
        child.kill()?;
        child.wait()?;
        let manifest = std::fs::read_to_string(killed.join("manifest.json")).unwrap_or_default();
        interrupted += usize::from(manifest.contains("\"complete\": false"));
    }
    ensure!(interrupted >= 3, "only {interrupted} kills landed before the end of the run");
    ok(&run(&killed).iter().map(String::as_str).collect::<Vec<_>>())?;

    for table_dir in ["documents.parquet", "attributions.parquet", "skipped.parquet"] {
        ensure!(table(&whole.join(table_dir))? == table(&killed.join(table_dir))?, "{table_dir} differs after resuming");
    }
    ensure!(files(&whole)? == files(&killed)?, "the part files differ after resuming (or temporary files were left)");
    for merged in ["neuron_stats.parquet", "top_examples.parquet"] {
        ensure!(std::fs::read(whole.join(merged))? == std::fs::read(killed.join(merged))?, "{merged} differs after resuming");
    }
    ensure!(read_json(&whole.join("manifest.json"))?["shards"] == read_json(&killed.join("manifest.json"))?["shards"], "manifests differ");
    Ok(())
}

/// Writes a Parquet corpus: an int64 `id` column and an optional string `body` column.
fn write_parquet(path: &Path, ids: &[i64], texts: &[Option<&[u8]>]) -> Result<()> {
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    let schema = Arc::new(parquet::schema::parser::parse_message_type(
        "message corpus { required int64 id; optional binary body (STRING); required int32 other; }",
    )?);
    let file = std::fs::File::create(path)?;
    let mut writer = parquet::file::writer::SerializedFileWriter::new(file, schema, Arc::default())?;
    // Two row groups, so that reading crosses a group boundary.
    for range in [0..2, 2..ids.len()] {
        let mut group = writer.next_row_group()?;
        let mut col = group.next_column()?.context("id")?;
        col.typed::<Int64Type>().write_batch(&ids[range.clone()], None, None)?;
        col.close()?;
        let mut col = group.next_column()?.context("body")?;
        let values: Vec<ByteArray> = texts[range.clone()].iter().flatten().map(|t| ByteArray::from(t.to_vec())).collect();
        let defs: Vec<i16> = texts[range.clone()].iter().map(|t| i16::from(t.is_some())).collect();
        col.typed::<ByteArrayType>().write_batch(&values, Some(&defs), None)?;
        col.close()?;
        let mut col = group.next_column()?.context("other")?;
        col.typed::<parquet::data_type::Int32Type>().write_batch(&vec![0; range.len()], None, None)?;
        col.close()?;
        group.close()?;
    }
    writer.close()?;
    Ok(())
}

#[test]
fn parquet_input_streams_rows_with_nulls_and_bad_bytes() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let input = tmp.path().join("corpus.parquet");
    let texts: [Option<&[u8]>; 5] =
        [Some(b"The capital of France is"), None, Some(b"caf\xe9"), Some(b"The capital of Spain is"), Some(b"The capital of Italy is")];
    write_parquet(&input, &[10, 11, 12, 13, 14], &texts)?;
    let out = tmp.path().join("out");
    ok(&["batch", "--input", s(&input), "--text-field", "body", "--id-field", "id", "--out", s(&out)])?;
    let documents = table(&out.join("documents.parquet"))?;
    let ids: Vec<&str> = documents.iter().filter_map(|d| d["doc_id"].as_str()).collect();
    ensure!(ids == ["10", "13", "14"], "documents {ids:?}");
    // A forward pass: the input tokens alone, no attributions.
    ensure!(documents.iter().all(|d| d["n_input_tokens"].as_u64() == d["token_ids"].as_array().map(|a| a.len() as u64)), "{documents:?}");
    ensure!(table(&out.join("attributions.parquet"))?.is_empty(), "attributions without --attribution");
    let skipped = table(&out.join("skipped.parquet"))?;
    let reasons: Vec<&str> = skipped.iter().filter_map(|r| r["reason"].as_str()).collect();
    ensure!(reasons == ["missing_field", "invalid_utf8"], "skipped {reasons:?}");

    // The same documents from JSONL give the same rows.
    let jsonl = tmp.path().join("corpus.jsonl");
    write_lines(
        &jsonl,
        &[
            json_line("10", "The capital of France is"),
            json_line("13", "The capital of Spain is"),
            json_line("14", "The capital of Italy is"),
        ],
    )?;
    let out_jsonl = tmp.path().join("out-jsonl");
    ok(&["batch", "--input", s(&jsonl), "--id-field", "id", "--out", s(&out_jsonl)])?;
    ensure!(table(&out_jsonl.join("documents.parquet"))? == documents, "Parquet and JSONL inputs disagree");

    fails(
        &["batch", "--input", s(&input), "--out", s(&tmp.path().join("o2"))],
        "no `text` column (--text-field); its columns: id, body, other",
    )?;
    fails(&["batch", "--input", s(&input), "--text-field", "other", "--out", s(&tmp.path().join("o2"))], "is not a string")?;
    ensure!(!tmp.path().join("o2").exists(), "an output directory was made before the error");
    Ok(())
}

#[test]
fn bad_settings_fail_before_any_work_and_foreign_directories_are_kept() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let corpus = tmp.path().join("corpus.jsonl");
    write_lines(&corpus, &[json_line("a", "The capital of France is")])?;
    let out = tmp.path().join("out");
    fails(&["batch", "--input", s(&corpus), "--text-field", "body", "--out", s(&out)], "the first row has no `body` field (--text-field)")?;
    fails(&["batch", "--input", s(&tmp.path().join("missing.jsonl")), "--out", s(&out)], "cannot read --input")?;
    fails(&["batch", "--input", s(&corpus), "--shard-size", "0", "--out", s(&out)], "--shard-size")?;
    ensure!(!out.exists(), "an output directory was made before the error");

    ok(&["batch", "--input", s(&corpus), "--max-new-tokens", "1", "--out", s(&out)])?;
    // The same command again: nothing to do, same tables.
    let before = files(&out)?;
    ok(&["batch", "--input", s(&corpus), "--max-new-tokens", "1", "--out", s(&out)])?;
    ensure!(files(&out)? == before, "a finished run was redone differently");
    fails(&["batch", "--input", s(&corpus), "--max-new-tokens", "2", "--out", s(&out)], "other settings (max_new_tokens was 1, now 2)")?;
    let other_model = common::fixture("gpt2-bpe");
    fails(&["batch", "--model", s(&other_model), "--input", s(&corpus), "--max-new-tokens", "1", "--out", s(&out)], "model_hash was")?;

    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign)?;
    std::fs::write(foreign.join("notes.txt"), "keep")?;
    fails(&["batch", "--input", s(&corpus), "--out", s(&foreign)], "holds no ecco batch run")?;
    ensure!(std::fs::read_to_string(foreign.join("notes.txt"))? == "keep", "a foreign file was touched");
    Ok(())
}

#[test]
fn neuron_statistics_and_top_examples_follow_the_tensors() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let corpus = tmp.path().join("corpus.jsonl");
    let countries = ["France", "Spain", "Italy", "Germany", "Japan", "Egypt", "Peru"];
    let lines: Vec<Vec<u8>> = countries.iter().map(|c| json_line(c, &format!("The capital of {c} is"))).collect();
    write_lines(&corpus, &lines)?;
    let out = tmp.path().join("out");
    let args = ["batch", "--input", s(&corpus), "--id-field", "id", "--max-new-tokens", "2", "--activations", "--neuron-stats"];
    ok(&[&args[..], &["--top-k", "3", "--shard-size", "3", "--out", s(&out)]].concat())?;

    // Every activation of layer 1, neuron 7, straight from the tensors.
    let (layer, neuron) = (1usize, 7usize);
    let mut all = Vec::new();
    let mut best: Vec<(f32, usize, String, usize)> = Vec::new();
    for shard in 0..3 {
        let reader = ecco_core::SafetensorsReader::open(out.join("tensors").join(format!("shard-{shard:05}.safetensors")))?;
        for name in reader.entries().keys() {
            let t = reader.read_f32(name)?;
            let (neurons, positions) = (t.shape[1], t.shape[2]);
            let row = &t.data[(layer * neurons + neuron) * positions..][..positions];
            all.extend_from_slice(row);
            let (at, &v) = row.iter().enumerate().fold((0, &f32::NEG_INFINITY), |b, (i, v)| if v > b.1 { (i, v) } else { b });
            best.push((v, shard, name.trim_end_matches("/activations.decoder").to_owned(), at));
        }
    }
    best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then_with(|| a.2.cmp(&b.2)));
    let read_file = |name: &str| -> Result<Vec<serde_json::Value>> {
        let reader = SerializedFileReader::new(std::fs::File::open(out.join(name))?)?;
        reader.get_row_iter(None)?.map(|r| Ok(row_json(&r?))).collect()
    };
    let stats = read_file("neuron_stats.parquet")?;
    let row = stats.iter().find(|r| r["layer"] == layer && r["neuron"] == neuron).context("no stats row")?;
    let mean = all.iter().map(|&v| f64::from(v)).sum::<f64>() / all.len() as f64;
    let max = all.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    ensure!(row["count"] == all.len() && row["max"] == max.to_bits(), "{row}");
    ensure!((row["mean"].as_f64().unwrap_or(f64::NAN) - mean).abs() < 1e-9, "mean {row} vs {mean}");
    let top = read_file("top_examples.parquet")?;
    let ours: Vec<(String, i64)> = top
        .iter()
        .filter(|r| r["layer"] == layer && r["neuron"] == neuron)
        .map(|r| (r["doc_id"].as_str().unwrap_or("").to_owned(), r["position"].as_i64().unwrap_or(-1)))
        .collect();
    let expected: Vec<(String, i64)> = best.iter().take(3).map(|b| (b.2.clone(), b.3 as i64)).collect();
    ensure!(ours == expected, "top examples {ours:?} vs {expected:?}");

    let html = tmp.path().join("neuron.html");
    let printed = ok(&["top-examples", "--batch", s(&out), "--neuron", "1:7", "--html", s(&html)])?;
    let lines: Vec<&str> = printed.lines().collect();
    ensure!(lines.len() == 4 && lines[0].starts_with("neuron 1:7: mean"), "{printed}");
    ensure!(lines[1].starts_with("#1") && lines[1].contains(&expected[0].0) && lines[1].contains("[["), "{printed}");
    let page = std::fs::read_to_string(&html)?;
    ensure!(page.contains("default-src 'none'") && !page.contains("<script") && page.matches("<svg").count() == 3, "page");
    fails(&["top-examples", "--batch", s(&out), "--neuron", "9:0"], "not in the statistics (layers 0..4")?;
    fails(&["top-examples", "--batch", s(&tmp.path().join("nope")), "--neuron", "1:7"], "not an ecco batch output")?;

    Ok(())
}

#[test]
fn the_progress_bar_shows_rates_on_a_terminal_and_stays_quiet_when_piped() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let corpus = tmp.path().join("corpus.jsonl");
    let lines: Vec<Vec<u8>> = (0..12).map(|i| json_line(&i.to_string(), "The capital of France is")).collect();
    write_lines(&corpus, &lines)?;
    let args = |out: &Path| -> Vec<String> {
        ["batch", "--input", s(&corpus), "--max-new-tokens", "4", "--attribution", "ig", "--shard-size", "5", "--out", s(out)]
            .iter()
            .map(|a| (*a).to_owned())
            .collect()
    };
    let piped = common::ecco(&args(&tmp.path().join("piped")).iter().map(String::as_str).collect::<Vec<_>>())?;
    ensure!(piped.status.success() && piped.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&piped.stderr));
    // On a pseudo-terminal from util-linux's `script`, where installed.
    let Ok(script) = Command::new("script").arg("--version").output() else {
        eprintln!("note: no `script` command: the terminal half of this test is skipped");
        return Ok(());
    };
    ensure!(script.status.success());
    let line = std::iter::once(env!("CARGO_BIN_EXE_ecco").to_owned())
        .chain(args(&tmp.path().join("tty")))
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let tty = Command::new("script").args(["-qec", &line, "/dev/null"]).output()?;
    let shown = String::from_utf8_lossy(&tty.stdout);
    ensure!(tty.status.success(), "{shown}");
    ensure!(
        shown.contains("/12 docs, ") && shown.contains("/s, ") && shown.contains("tokens/s, ETA"),
        "no progress bar on a terminal: {shown:?}"
    );
    Ok(())
}

#[test]
fn captured_mlp_hooks_give_the_same_neuron_statistics_as_activations() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let corpus = tmp.path().join("corpus.jsonl");
    let lines: Vec<Vec<u8>> = ["France", "Spain", "Peru"].iter().map(|c| json_line(c, &format!("The capital of {c} is"))).collect();
    write_lines(&corpus, &lines)?;
    let run = |out: &Path, capture: &[&str]| -> Result<String> {
        let base = ["batch", "--input", s(&corpus), "--id-field", "id", "--max-new-tokens", "2", "--neuron-stats", "--top-k", "2"];
        ok(&[&base[..], capture, &["--shard-size", "2", "--out", s(out)]].concat())
    };
    let (by_activations, by_hooks) = (tmp.path().join("activations"), tmp.path().join("hooks"));
    run(&by_activations, &["--activations"])?;
    run(&by_hooks, &["--capture", "blocks.*.mlp.post"])?;
    let hooks = ecco_core::SafetensorsReader::open(by_hooks.join("tensors").join("shard-00000.safetensors"))?;
    ensure!(hooks.contains("France/blocks.3.mlp.post") && !hooks.contains("France/activations.decoder"), "hook tensors");
    for merged in ["neuron_stats.parquet", "top_examples.parquet"] {
        ensure!(std::fs::read(by_activations.join(merged))? == std::fs::read(by_hooks.join(merged))?, "{merged} differs");
    }
    let shown = |dir: &Path| ok(&["top-examples", "--batch", s(dir), "--neuron", "2:9"]);
    ensure!(shown(&by_activations)? == shown(&by_hooks)?, "top-examples differ");
    fails(&["batch", "--input", s(&corpus), "--neuron-stats", "--out", s(&tmp.path().join("o"))], "pass --activations")?;
    Ok(())
}
