//! The `ecco` binary end to end: trace bundles on the fixture checkpoints, the logit-lens
//! commands, and one-line errors with no half-written output for bad input.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};

mod common;
use common::{ecco, fails, fixture, ok, read_json, s};

#[test]
fn generate_writes_the_bundle_and_the_lens_reads_it() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("trace");
    let model = fixture("gpt2-deep");
    ok(&[
        "generate",
        "--model",
        s(&model),
        "--prompt",
        "The capital of France is",
        "--max-new-tokens",
        "4",
        "--activations",
        "--hidden-states",
        "--attention",
        "--attribution",
        "grad_x_input,ig",
        "--ig-steps",
        "8",
        "--out",
        s(&out),
    ])?;
    let trace = read_json(&out.join("trace.json"))?;
    ensure!(trace["format"] == "ecco-trace" && trace["version"] == 1);
    ensure!(trace["model"]["family"] == "gpt2" && trace["model"]["model_type"] == "causal");
    ensure!(trace["backend"] == "flex");
    let n_input = trace["n_input_tokens"].as_u64().context("n_input_tokens")? as usize;
    let n_tokens = trace["tokens"].as_array().context("tokens")?.len();
    ensure!(n_tokens == n_input + 4 && trace["token_ids"].as_array().map(Vec::len) == Some(n_tokens));
    for method in ["grad_x_input", "integrated_gradients"] {
        let lists = trace["attributions"][method].as_array().with_context(|| method.to_owned())?;
        ensure!(lists.len() == 4);
        for (k, list) in lists.iter().enumerate() {
            let values: Vec<f64> = list.as_array().context("list")?.iter().filter_map(serde_json::Value::as_f64).collect();
            ensure!(values.len() == n_input + k && (values.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        }
    }
    let reader = ecco_core::SafetensorsReader::open(out.join("tensors.safetensors"))?;
    let layers = trace["model"]["n_layers"].as_u64().context("n_layers")? as usize;
    let hidden = trace["model"]["hidden_size"].as_u64().context("hidden")? as usize;
    let positions = n_tokens - 1;
    ensure!(reader.read_f32("hidden_states.decoder")?.shape == vec![layers + 1, positions, hidden]);
    ensure!(reader.read_f32("activations.decoder")?.shape == vec![layers, 4 * hidden, positions]);
    ensure!(reader.read_f32("attention.decoder")?.shape[..2] == [layers, 4]);

    let rankings: serde_json::Value = serde_json::from_str(&ok(&["rankings", "--model", s(&model), "--trace", s(&out), "--json"])?)?;
    let rows = rankings["rankings"].as_array().context("rankings")?;
    ensure!(rows.len() == layers && rows.iter().all(|r| r.as_array().map(Vec::len) == Some(4)));
    let position = n_input.to_string();
    let preds: serde_json::Value = serde_json::from_str(&ok(&[
        "layer-predictions",
        "--model",
        s(&model),
        "--trace",
        s(&out),
        "--position",
        &position,
        "--topk",
        "3",
        "--json",
    ])?)?;
    ensure!(preds.as_array().map(Vec::len) == Some(layers));
    ensure!(preds[0][0]["ranking"] == 1 && preds[0][0]["token"].is_string() && preds[0][0]["prob"].is_f64());
    let watch: serde_json::Value = serde_json::from_str(&ok(&[
        "rankings-watch",
        "--model",
        s(&model),
        "--trace",
        s(&out),
        "--watch",
        "5,6",
        "--position",
        &position,
        "--json",
    ])?)?;
    ensure!(watch["position"] == n_input as u64 && watch["watch"] == serde_json::json!([5, 6]));

    // Lens errors name the flag or the value.
    fails(&["rankings-watch", "--model", s(&model), "--trace", s(&out), "--watch", "99999999", "--position", "1", "--json"], "99999999")?;
    fails(&["layer-predictions", "--model", s(&model), "--trace", s(&out), "--position", "0", "--json"], "position 0")?;
    fails(&["rankings", "--model", s(&fixture("gpt2-bpe")), "--trace", s(&out), "--json"], "different model")?;
    let bare = tmp.path().join("bare");
    ok(&["forward", "--model", s(&model), "--text", "Hello there", "--activations", "--out", s(&bare)])?;
    fails(&["rankings", "--model", s(&model), "--trace", s(&bare), "--json"], "--hidden-states")?;
    Ok(())
}

#[test]
fn forward_with_layers_records_only_those() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("fwd");
    ok(&["forward", "--model", s(&fixture("gpt2-deep")), "--text", "one two three", "--activations", "--layers", "3,1", "--out", s(&out)])?;
    let trace = read_json(&out.join("trace.json"))?;
    ensure!(trace["activation_layers"] == serde_json::json!([1, 3]));
    let acts = ecco_core::SafetensorsReader::open(out.join("tensors.safetensors"))?.read_f32("activations.decoder")?;
    ensure!(acts.shape[0] == 2);
    Ok(())
}

#[test]
fn bad_input_gives_one_line_errors_and_no_output() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let model = fixture("gpt2-deep");
    let out = tmp.path().join("never");
    let gen_args = |model: &str, prompt: &str, n: &str| -> Vec<String> {
        ["generate", "--model", model, "--prompt", prompt, "--max-new-tokens", n, "--out", s(&out)]
            .iter()
            .map(|x| (*x).to_owned())
            .collect()
    };
    let run = |args: Vec<String>, needle: &str| -> Result<()> {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&refs, needle)?;
        ensure!(!out.exists(), "output written after a failure: {args:?}");
        Ok(())
    };
    run(gen_args("/no/such/model", "hi", "2"), "/no/such/model")?;
    run(gen_args(s(&model), "", "2"), "empty")?;
    run(gen_args(s(&model), "hi", "0"), "--max-new-tokens")?;
    let long = "a b c d e f g h ".repeat(20);
    run(gen_args(s(&model), &long, "2"), "at most 64")?;
    let mut args = gen_args(s(&model), "hi", "2");
    args.extend(["--attribution".into(), "grad_x_input,deeplift".into()]);
    run(args, "deeplift")?;

    // Broken checkpoints: corrupt weights, a foreign architecture, a missing tokenizer.
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken)?;
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(model.join(f), broken.join(f))?;
    }
    let weights = std::fs::read(broken.join("model.safetensors"))?;
    std::fs::write(broken.join("model.safetensors"), &weights[..weights.len() / 2])?;
    run(gen_args(s(&broken), "hi", "2"), "model.safetensors")?;
    let config = std::fs::read_to_string(model.join("config.json"))?.replace("\"gpt2\"", "\"mamba\"");
    std::fs::write(broken.join("config.json"), config)?;
    run(gen_args(s(&broken), "hi", "2"), "unsupported architecture `mamba`")?;
    std::fs::copy(model.join("config.json"), broken.join("config.json"))?;
    std::fs::remove_file(broken.join("tokenizer.json"))?;
    run(gen_args(s(&broken), "hi", "2"), "tokenizer.json")?;

    // Output paths that cannot be written, or hold something else.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "keep")?;
    let under_file = file.join("trace");
    fails(&["forward", "--model", s(&model), "--text", "hi", "--out", s(&under_file)], "a-file")?;
    fails(&["forward", "--model", s(&model), "--text", "hi", "--out", s(&file)], "refusing to overwrite")?;
    ensure!(std::fs::read_to_string(&file)? == "keep");
    Ok(())
}

#[test]
fn nmf_factorises_the_captured_layers() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("t");
    let model = fixture("gpt2-deep");
    ok(&[
        "generate",
        "--model",
        s(&model),
        "--prompt",
        "one two three four",
        "--max-new-tokens",
        "5",
        "--activations",
        "--layers",
        "2,5,7",
        "--out",
        s(&out),
    ])?;
    let trace = read_json(&out.join("trace.json"))?;
    let positions = trace["tokens"].as_array().context("tokens")?.len() - 1;
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["nmf", "--trace", s(&out), "--components", "3", "--from-layer", "5", "--json"])?)?;
    ensure!(v["n_components"] == 3 && v["layers"] == serde_json::json!([5, 7]));
    let comps = v["components"].as_array().context("components")?;
    ensure!(comps.len() == 3 && comps.iter().all(|c| c.as_array().map(Vec::len) == Some(positions)));
    ensure!(v["reconstruction_error"].as_f64().is_some_and(|e| e > 0.0) && v["n_iter"].as_u64().is_some());
    ensure!(v["loadings"][0][0]["layer"].as_u64().is_some_and(|l| l == 5 || l == 7));
    // More components than positions: clamped, as Ecco does, and said on stderr.
    let clamped = ecco(&["nmf", "--trace", s(&out), "--components", "99", "--json"])?;
    ensure!(clamped.status.success() && String::from_utf8_lossy(&clamped.stderr).contains("using"));
    fails(&["nmf", "--trace", s(&out), "--components", "2", "--layers", "4"], "layer 4 is not in the trace")?;
    fails(&["nmf", "--trace", s(&out), "--components", "2", "--from-layer", "8", "--to-layer", "9"], "empty")?;
    let no_acts = tmp.path().join("h");
    ok(&["forward", "--model", s(&model), "--text", "one two", "--hidden-states", "--out", s(&no_acts)])?;
    fails(&["nmf", "--trace", s(&no_acts), "--components", "2"], "--activations")
}

/// Runs `ecco` with extra environment variables; expects success.
fn ok_env(args: &[&str], env: &[(&str, &Path)]) -> Result<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecco"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    ensure!(out.status.success(), "ecco {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn without_model_the_embedded_demo_runs_fast_and_names_paris() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("trace");
    let args = [
        "generate",
        "--prompt",
        "The capital of France is",
        "--max-new-tokens",
        "4",
        "--attribution",
        "grad_x_input",
        "--activations",
        "--hidden-states",
        "--out",
        s(&out),
    ];
    let started = std::time::Instant::now();
    ok(&args)?;
    let elapsed = started.elapsed();
    eprintln!("ecco generate on the demo model: {elapsed:?}");
    // Well under a second on an idle machine; generous here for a loaded CI runner.
    ensure!(elapsed.as_secs_f64() < 3.0, "took {elapsed:?}");
    let trace = read_json(&out.join("trace.json"))?;
    ensure!(trace["model"]["name"] == "ecco-demo", "{}", trace["model"]);
    let n_input = trace["n_input_tokens"].as_u64().context("n_input_tokens")? as usize;
    ensure!(trace["tokens"][n_input] == "ĠParis", "{}", trace["tokens"]);
    ensure!(trace["tokens"][n_input - 2] == "ĠFrance");
    // The first generated token's attribution is largest on " France".
    let first: Vec<f64> =
        trace["attributions"]["grad_x_input"][0].as_array().context("attributions")?.iter().filter_map(serde_json::Value::as_f64).collect();
    let argmax = (0..first.len()).max_by(|&a, &b| first[a].total_cmp(&first[b])).context("empty")?;
    ensure!(argmax == n_input - 2, "largest weight at {argmax}: {first:?}");
    // The lens commands default to the demo model too.
    let rankings: serde_json::Value = serde_json::from_str(&ok(&["rankings", "--trace", s(&out), "--json"])?)?;
    let rows = rankings["rankings"].as_array().context("rankings")?;
    ensure!(rows.last().and_then(|r| r[0].as_u64()) == Some(1), "{rankings}");
    // A trace of the demo model read with another model is refused.
    fails(&["rankings", "--model", s(&fixture("gpt2-deep")), "--trace", s(&out), "--json"], "different model")
}

#[test]
fn hub_ids_resolve_through_the_cache_and_fail_cleanly_offline() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let cache = tmp.path().join("hub");
    let snapshot = cache.join("models--org--deep").join("snapshots").join("abc123");
    std::fs::create_dir_all(&snapshot)?;
    std::fs::create_dir_all(cache.join("models--org--deep").join("refs"))?;
    std::fs::write(cache.join("models--org--deep").join("refs").join("main"), "abc123")?;
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(fixture("gpt2-deep").join(f), snapshot.join(f))?;
    }
    let env: [(&str, &Path); 2] = [("HF_HUB_CACHE", &cache), ("HF_HUB_OFFLINE", Path::new("1"))];
    let out = tmp.path().join("t");
    ok_env(&["forward", "--model", "org/deep", "--text", "one two", "--out", s(&out)], &env)?;
    ensure!(read_json(&out.join("trace.json"))?["model"]["name"] == "org/deep");
    // HF_HOME/hub is the cache when HF_HUB_CACHE is not set.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home)?;
    std::fs::rename(&cache, home.join("hub"))?;
    let out = tmp.path().join("t2");
    ok_env(
        &["forward", "--model", "org/deep", "--text", "one", "--out", s(&out)],
        &[("HF_HOME", &home), ("HF_HUB_OFFLINE", Path::new("1"))],
    )?;
    // Not cached and offline: a one-line error naming the variable.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecco"));
    cmd.args(["generate", "--model", "distilgpt2", "--prompt", "hi", "--max-new-tokens", "1", "--out", s(&tmp.path().join("n"))]);
    let out = cmd.env("HF_HUB_CACHE", &home).env("HF_HUB_OFFLINE", "1").output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success() && err.trim_end().lines().count() == 1, "{err}");
    ensure!(err.starts_with("error: ") && err.contains("distilgpt2") && err.contains("HF_HUB_OFFLINE"), "{err}");
    Ok(())
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let trace = tmp.path().join("t");
    ok(&[
        "generate",
        "--prompt",
        "The capital of France is",
        "--max-new-tokens",
        "3",
        "--activations",
        "--hidden-states",
        "--out",
        s(&trace),
    ])?;
    for args in [vec!["nmf", "--trace", s(&trace), "--components", "2", "--json"], vec!["rankings", "--trace", s(&trace)]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecco"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        // Close the read end before ecco writes: its output goes to a closed pipe (`| head -0`).
        drop(child.stdout.take());
        let out = child.wait_with_output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.success() && err.is_empty(), "ecco {args:?}: {:?} {err}", out.status);
    }
    Ok(())
}

#[test]
fn progress_bars_draw_on_a_terminal_and_stay_quiet_when_piped() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("trace");
    let gen_args = |out: &Path| -> Vec<String> {
        [
            "generate",
            "--prompt",
            "The capital of France is",
            "--max-new-tokens",
            "6",
            "--attribution",
            "ig",
            "--ig-steps",
            "64",
            "--activations",
            "--out",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([s(out).to_owned()])
        .collect()
    };
    // Piped (as here): long work writes nothing on stderr.
    let args = gen_args(&out);
    let piped = ecco(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    ensure!(piped.status.success() && piped.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&piped.stderr));
    let nmf = ecco(&["nmf", "--trace", s(&out), "--components", "3"])?;
    ensure!(nmf.status.success() && nmf.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&nmf.stderr));
    // On a terminal (a pseudo-terminal from util-linux's `script`, where installed): the
    // generation and the integrated-gradients bars are drawn.
    let Ok(script) = Command::new("script").arg("--version").output() else {
        eprintln!("note: no `script` command: the terminal half of this test is skipped");
        return Ok(());
    };
    ensure!(script.status.success());
    let line = std::iter::once(env!("CARGO_BIN_EXE_ecco").to_owned())
        .chain(gen_args(&tmp.path().join("tty")))
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let tty = Command::new("script").args(["-qec", &line, "/dev/null"]).output()?;
    let shown = String::from_utf8_lossy(&tty.stdout);
    ensure!(tty.status.success(), "{shown}");
    ensure!(shown.contains("generating [") && shown.contains("integrated_gradients ["), "no progress bars on a terminal: {shown:?}");
    Ok(())
}
