//! Hostile input (issue 24): malformed checkpoints, tokenizers and trace bundles, numbers near
//! `usize::MAX`, and output paths that hold someone else's files. Each case runs the real `ecco`
//! binary and asserts a one-line `error: …` on stderr, the exit code, no panic, a bounded time,
//! and that the directory the case works in is byte for byte as it was.

mod common;

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use common::{fixture, ok, s};
use ecco_core::{F32Tensor, TraceBundle, write_safetensors};

/// Every case must end within this (the slowest here takes well under a second).
const TIMEOUT: Duration = Duration::from_secs(60);

/// What a directory holds: per relative path, its kind and a hash of its bytes (or link target).
fn snapshot(root: &Path) -> Result<BTreeMap<PathBuf, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let rel = path.strip_prefix(root)?.to_path_buf();
            let kind = meta.file_type();
            let summary = if kind.is_symlink() {
                format!("link -> {}", std::fs::read_link(&path)?.display())
            } else if kind.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else if kind.is_file() {
                let mut h = DefaultHasher::new();
                std::fs::read(&path)?.hash(&mut h);
                format!("file {:016x}", h.finish())
            } else {
                "other".to_owned()
            };
            out.insert(rel, summary);
        }
    }
    Ok(out)
}

/// Runs `ecco args` (killed after [`TIMEOUT`]) and checks that it fails with exit code `code`,
/// one line on stderr starting `error: ` and containing `needle`, no panic, and that `watched`
/// is exactly as it was.
fn refuses(watched: &Path, args: &[&str], code: i32, needle: &str) -> Result<()> {
    let before = snapshot(watched)?;
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecco"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    while child.try_wait()?.is_none() {
        if start.elapsed() > TIMEOUT {
            child.kill()?;
            anyhow::bail!("ecco {args:?} ran for more than {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(code), "ecco {args:?}: exit code {:?}, expected {code}; stderr {err:?}", out.status.code());
    ensure!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "ecco {args:?}: not a one-line error: {err:?}");
    ensure!(!err.contains("panicked") && !err.contains("internal error"), "ecco {args:?} panicked: {err}");
    ensure!(err.contains(needle), "ecco {args:?}: error {err:?} does not mention {needle:?}");
    let after = snapshot(watched)?;
    ensure!(before == after, "ecco {args:?} changed {}: {before:#?} -> {after:#?}", watched.display());
    Ok(())
}

/// A copy of fixture `name` in `dir` (links to its weights, copies of its small files).
fn copy_fixture(name: &str, dir: &Path) -> Result<PathBuf> {
    let to = dir.join(name);
    std::fs::create_dir_all(&to)?;
    for entry in std::fs::read_dir(fixture(name))? {
        let from = entry?.path();
        let file = from.file_name().context("file name")?;
        std::fs::copy(&from, to.join(file))?;
    }
    Ok(to)
}

/// Edits `dir/tokenizer.json` with `edit`.
fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> Result<()> {
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    edit(&mut json);
    std::fs::write(path, serde_json::to_vec(&json)?)?;
    Ok(())
}

#[test]
fn output_paths_holding_other_files_are_never_changed() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    // The data-loss case: a directory with a `trace.json` that is not ours and the user's files.
    let m = root.join("m");
    std::fs::create_dir_all(m.join("sub"))?;
    std::fs::write(m.join("trace.json"), "x\n")?;
    std::fs::write(m.join("thesis.tex"), "w\n")?;
    let prompt = "The capital of France is";
    refuses(root, &["generate", "--prompt", prompt, "--max-new-tokens", "2", "--out", s(&m)], 1, "refusing")?;
    refuses(root, &["forward", "--text", prompt, "--out", s(&m.join("thesis.tex"))], 1, "not a directory")?;

    let trace = root.join("t");
    ok(&["generate", "--prompt", prompt, "--max-new-tokens", "2", "--activations", "--hidden-states", "--out", s(&trace)])?;
    // A planted symlink at the output is refused; the file it points to keeps its bytes.
    let victim = root.join("victim.txt");
    std::fs::write(&victim, "keep")?;
    let link = root.join("page.html");
    std::os::unix::fs::symlink(&victim, &link)?;
    refuses(root, &["report", "--trace", s(&trace), "--out", s(&link)], 1, "symbolic link")?;
    refuses(root, &["nmf", "--trace", s(&trace), "--components", "2", "--html", s(&link)], 1, "symbolic link")?;
    // A FIFO is not replaced by a regular file (nor opened, which would block).
    let fifo = root.join("fifo.svg");
    ensure!(Command::new("mkfifo").arg(&fifo).status()?.success(), "mkfifo");
    refuses(root, &["rankings", "--trace", s(&trace), "--svg", s(&fifo)], 1, "not a regular file")?;
    // All of a command's outputs or none: a failing second output leaves the first unwritten.
    let svgs = root.join("svgs");
    std::fs::create_dir(&svgs)?;
    let unwritable = "/proc/ecco-hostile-test.html";
    refuses(root, &["report", "--trace", s(&trace), "--svg-dir", s(&svgs), "--out", unwritable], 1, unwritable)?;
    let html = root.join("nmf.html");
    refuses(root, &["nmf", "--trace", s(&trace), "--components", "2", "--html", s(&html), "--svg", "/proc/ecco-hostile.svg"], 1, "/proc")?;
    refuses(root, &["rankings", "--trace", s(&trace), "--html", s(&html), "--svg", "/proc/ecco-hostile.svg"], 1, "/proc")?;
    Ok(())
}

#[test]
fn numbers_near_the_limits_are_refused_with_the_cap() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    let out = root.join("out");
    let out = s(&out);
    let max = "18446744073709551615";
    let prompt = "The capital of France is";
    let generate = |extra: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = ["generate", "--prompt", prompt, "--out", out].iter().map(|a| (*a).to_owned()).collect();
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    };
    let run = |args: Vec<String>, code: i32, needle: &str| -> Result<()> {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        refuses(root, &refs, code, needle)
    };
    run(generate(&["--max-new-tokens", "18446744073709551615"]), 1, "at most 60 new tokens")?;
    run(generate(&["--max-new-tokens", "1152921504606846976"]), 1, "at most 60 new tokens")?;
    run(generate(&["--max-new-tokens", "2", "--attribution", "ig", "--ig-steps", "18446744073709551615"]), 1, "1 to 10000 steps")?;
    run(generate(&["--max-new-tokens", "2", "--attribution", "ig", "--ig-steps", "100000"]), 1, "1 to 10000 steps")?;
    run(generate(&["--max-new-tokens", "18446744073709551616"]), 2, "--max-new-tokens")?;

    let t5 = fixture("t5-relu");
    let t5 = s(&t5);
    refuses(root, &["generate", "--model", t5, "--prompt", "hi", "--max-new-tokens", "1000000", "--out", out], 1, "at most 512")?;
    refuses(root, &["generate", "--model", t5, "--prompt", "hi", "--max-new-tokens", max, "--out", out], 1, "at most 512")?;
    // T5's relative positions set no limit of their own: 100k characters would take gigabytes.
    let long = "a ".repeat(50_000);
    refuses(root, &["generate", "--model", t5, "--prompt", &long, "--max-new-tokens", "2", "--out", out], 1, "at most 512")?;
    refuses(root, &["forward", "--model", t5, "--text", &long, "--out", out], 1, "at most 512")?;

    let trace = root.join("t");
    ok(&["generate", "--prompt", prompt, "--max-new-tokens", "2", "--activations", "--hidden-states", "--out", s(&trace)])?;
    let t = s(&trace);
    refuses(root, &["layer-predictions", "--trace", t, "--position", "5", "--layer", max], 1, "out of range")?;
    refuses(
        root,
        &["nmf", "--trace", t, "--components", "2", "--max-iter", "1000000000000", "--tol", "1e-300"],
        1,
        "1 to 10000 iterations",
    )?;
    refuses(root, &["rankings-watch", "--trace", t, "--position", "5", "--watch", "4294967295"], 1, "outside the vocabulary")?;
    refuses(root, &["report", "--trace", t, "--out", s(&root.join("r.html")), "--neurons", &format!("0:{max}")], 1, "out of range")?;
    Ok(())
}

#[test]
fn empty_prompts_and_bad_arguments_are_one_line_errors() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    let out = root.join("out");
    let out = s(&out);
    let bert = fixture("bert-wordpiece");
    let t5 = fixture("t5-relu");
    refuses(root, &["forward", "--model", s(&bert), "--text", "", "--out", out], 1, "empty")?;
    refuses(root, &["generate", "--model", s(&t5), "--prompt", "", "--max-new-tokens", "1", "--out", out], 1, "empty")?;
    refuses(root, &["forward", "--model", s(&t5), "--text", "", "--out", out], 1, "empty")?;
    refuses(root, &["generate", "--prompt", "", "--max-new-tokens", "1", "--out", out], 1, "empty")?;
    // Clap's own errors, on one line too.
    refuses(root, &["generate", "--bogus"], 2, "--bogus")?;
    refuses(root, &["generate", "--prompt", "x"], 2, "--max-new-tokens")?;
    refuses(root, &["report", "--trace"], 2, "--trace")?;
    refuses(root, &["nope"], 2, "nope")?;
    Ok(())
}

#[test]
fn broken_tokenizers_and_checkpoints_are_refused() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let models = tmp.path().join("models");
    // The directory the commands write to, watched; the models (one with a 20 GB hole) are not.
    let root = &tmp.path().join("work");
    std::fs::create_dir(root)?;
    let out = root.join("out");
    let run = |model: &Path, needle: &str| -> Result<()> {
        refuses(root, &["generate", "--model", s(model), "--prompt", "The cat", "--max-new-tokens", "2", "--out", s(&out)], 1, needle)
    };
    // An id at or past the model's vocabulary (the count of entries still fits), and past 2^31.
    for (id, case) in [(400u64, "id400"), (3_000_000_000, "id3e9")] {
        let dir = copy_fixture("gpt2-deep", &models.join(case))?;
        edit_json(&dir.join("tokenizer.json"), |j| j["model"]["vocab"]["Ġthe"] = id.into())?;
        run(&dir, &format!("id {id}, outside the model's vocabulary of 400"))?;
    }
    let dir = copy_fixture("t5-relu", &models.join("t5"))?;
    edit_json(&dir.join("tokenizer.json"), |j| {
        let token = serde_json::json!({"id": 400, "content": "zqxjkv", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": false});
        if let Some(list) = j["added_tokens"].as_array_mut() {
            list.push(token);
        }
    })?;
    run(&dir, "the model's vocabulary has 400")?;

    // A syntax error inside the `decoder` section (tokenizers panicked on it).
    let dir = copy_fixture("gpt2-deep", &models.join("decoder"))?;
    let text = std::fs::read_to_string(dir.join("tokenizer.json"))?;
    let broken = text.replacen("\"decoder\":", "\"decoder\": [1, 2,], \"x\":", 1);
    ensure!(broken != text, "the fixture has a decoder section");
    std::fs::write(dir.join("tokenizer.json"), broken)?;
    run(&dir, "tokenizer error")?;
    // Parts the tokenizers crate panics on at load or decode time.
    let dir = copy_fixture("gpt2-deep", &models.join("strip"))?;
    edit_json(&dir.join("tokenizer.json"), |j| j["decoder"] = serde_json::json!({"type": "Strip", "content": " ", "start": 0, "stop": 3}))?;
    run(&dir, "Strip decoder")?;
    let dir = copy_fixture("gpt2-deep", &models.join("precompiled"))?;
    edit_json(&dir.join("tokenizer.json"), |j| j["normalizer"] = serde_json::json!({"type": "Precompiled", "precompiled_charsmap": "!!"}))?;
    run(&dir, "Precompiled")?;

    // A valid checkpoint padded with a 20 GB sparse hole: refused from its header, not read.
    let dir = copy_fixture("gpt2-deep", &models.join("padded"))?;
    let weights = std::fs::OpenOptions::new().write(true).open(dir.join("model.safetensors"))?;
    weights.set_len(weights.metadata()?.len() + 20_000_000_000)?;
    run(&dir, "the file holds")?;
    // Truncated weights, and a shape whose size overflows.
    let dir = copy_fixture("gpt2-deep", &models.join("truncated"))?;
    let bytes = std::fs::read(dir.join("model.safetensors"))?;
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() / 2])?;
    run(&dir, "not a valid safetensors file")?;
    let dir = copy_fixture("gpt2-deep", &models.join("config"))?;
    edit_json(&dir.join("config.json"), |j| j["n_layer"] = u64::MAX.into())?;
    run(&dir, "missing tensor `transformer.h.12.")?;
    Ok(())
}

/// Writes `bundle`'s two files into `dir` as they are, without the writer's checks.
fn write_raw(dir: &Path, bundle: &TraceBundle) -> Result<()> {
    std::fs::write(dir.join("trace.json"), serde_json::to_vec(&bundle.trace)?)?;
    write_safetensors(&dir.join("tensors.safetensors"), &bundle.tensors)?;
    Ok(())
}

#[test]
fn inconsistent_traces_are_refused_on_load() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    let good = root.join("good");
    ok(&[
        "generate",
        "--prompt",
        "The capital of France is",
        "--max-new-tokens",
        "2",
        "--activations",
        "--hidden-states",
        "--out",
        s(&good),
    ])?;
    let bundle = TraceBundle::read(&good)?;
    let html = root.join("r.html");
    let case = |name: &str, edit: &dyn Fn(&mut TraceBundle) -> Result<()>| -> Result<PathBuf> {
        let dir = root.join(name);
        std::fs::create_dir(&dir)?;
        let mut b = bundle.clone();
        edit(&mut b)?;
        write_raw(&dir, &b)?;
        Ok(dir)
    };
    let report = |dir: &Path, needle: &str| refuses(root, &["report", "--trace", s(dir), "--out", s(&html)], 1, needle);

    let dir = case("ids", &|b| {
        b.trace.token_ids.pop();
        Ok(())
    })?;
    let n = bundle.trace.tokens.len();
    report(&dir, &format!("{n} tokens but {} token ids", n - 1))?;
    let dir = case("nan", &|b| {
        let h = b.tensors.get_mut("hidden_states.decoder").context("hidden states")?;
        h.data.iter_mut().for_each(|v| *v = f32::NAN);
        Ok(())
    })?;
    report(&dir, "NaN")?;
    refuses(root, &["rankings", "--trace", s(&dir)], 1, "NaN")?;
    let dir = case("swapped", &|b| {
        let a = b.tensors.get_mut("activations.decoder").context("activations")?;
        a.shape.swap(1, 2);
        Ok(())
    })?;
    refuses(root, &["nmf", "--trace", s(&dir), "--components", "2"], 1, "neurons but trace.json says 512")?;
    let dir = case("huge", &|b| {
        b.tensors.insert("attention.decoder".into(), F32Tensor::new("a", vec![4, 1_000_000_000_000, 0, 0], Vec::new())?);
        Ok(())
    })?;
    report(&dir, "`attention.decoder`")?;
    let dir = case("vocab", &|b| {
        b.trace.token_ids[0] = 1_000_000;
        Ok(())
    })?;
    report(&dir, "outside the model's vocabulary")?;
    Ok(())
}

#[test]
fn awkward_but_valid_traces_work() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    // The README's first command makes no hidden states; a report with the model attached
    // leaves the lens views out.
    let plain = root.join("plain");
    ok(&["generate", "--prompt", "The capital of France is", "--max-new-tokens", "2", "--activations", "--out", s(&plain)])?;
    ok(&["report", "--trace", s(&plain), "--out", s(&root.join("plain.html")), "--model", s(&fixture("demo"))])?;
    refuses(
        root,
        &["report", "--trace", s(&plain), "--out", s(&root.join("x.html")), "--model", s(&fixture("demo")), "--watch", "5"],
        1,
        "--hidden-states",
    )?;

    // A token holding U+0000 and other characters XML forbids: the SVGs stay well-formed.
    let mut bundle = TraceBundle::read(&plain)?;
    bundle.trace.tokens[1] = "a\u{0}b\u{1b}\u{ffff}".into();
    let odd = root.join("odd");
    std::fs::create_dir(&odd)?;
    write_raw(&odd, &bundle)?;
    let svgs = root.join("svgs");
    std::fs::create_dir(&svgs)?;
    ok(&["report", "--trace", s(&odd), "--out", s(&root.join("odd.html")), "--svg-dir", s(&svgs)])?;
    let mut n = 0;
    for entry in std::fs::read_dir(&svgs)? {
        let svg = std::fs::read_to_string(entry?.path())?;
        let forbidden = |c: char| matches!(u32::from(c), 0..=8 | 0xb | 0xc | 0xe..=0x1f | 0xfffe | 0xffff);
        ensure!(!svg.chars().any(forbidden), "an SVG holds a character XML forbids");
        n += 1;
    }
    ensure!(n >= 2, "the report wrote {n} SVGs");
    Ok(())
}
