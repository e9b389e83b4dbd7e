//! The `ecco` command: explains what a Transformer language model is doing.
//!
//! See `ecco --help` and the project README; the command line and the trace bundle follow
//! `shared/spec/cli-and-trace.md`. Every subcommand is a thin layer over the `ecco` library
//! (`ecco::from_pretrained`, `Lm::generate`, `Output`'s analyses): the flags become its
//! option structs, and the results are printed or written.

/// `println!` that returns an error instead of panicking when stdout is closed early
/// (`ecco nmf … --json | head`); `main` treats that error as success.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod args;
mod batch_cmd;
mod evaluate_cmd;
mod lens_cmd;
mod nmf_cmd;
mod patch_cmd;
mod report_cmd;
mod trace_cmd;
mod write;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tensor buffers are large and short-lived; mimalloc keeps them mapped between steps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Explain what a Transformer language model is doing: captures, attributions, logit lens, NMF.
#[derive(Debug, Parser)]
#[command(name = "ecco", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate tokens after a prompt and write a trace bundle (Ecco's `lm.generate`).
    Generate(trace_cmd::GenerateArgs),
    /// Run one forward pass over a text and write a trace bundle (Ecco's `lm(inputs)`).
    Forward(trace_cmd::ForwardArgs),
    /// Per layer, the top-k tokens each layer's hidden state predicts at a position (logit lens).
    LayerPredictions(lens_cmd::LayerPredictionsArgs),
    /// Per layer, the rank of every generated token (logit lens).
    Rankings(lens_cmd::RankingsArgs),
    /// Per layer, the ranks of chosen token ids at a position (logit lens).
    RankingsWatch(lens_cmd::RankingsWatchArgs),
    /// Non-negative matrix factorisation of a trace's FFN activations (Ecco's `run_nmf`).
    Nmf(nmf_cmd::NmfArgs),
    /// One self-contained HTML page with every view the trace supports.
    Report(report_cmd::ReportArgs),
    /// Faithfulness of a trace's attributions: deletion/insertion AUC, comprehensiveness and
    /// sufficiency of each method beside a random ranking.
    Evaluate(evaluate_cmd::EvaluateArgs),
    /// Run a corpus (JSONL or Parquet) through the model, writing Parquet tables and tensors
    /// shard by shard; rerun the same command to resume.
    Batch(batch_cmd::BatchArgs),
    /// A neuron's top documents from an `ecco batch --neuron-stats` run, tokens coloured by
    /// its activation.
    TopExamples(batch_cmd::TopExamplesArgs),
    /// Activation patching (or attribution patching) from a clean text into a corrupted one.
    Patch(patch_cmd::PatchArgs),
    /// A steering vector from prompt pairs (contrastive activation addition).
    SteeringVector(patch_cmd::SteeringVectorArgs),
}

fn main() -> ExitCode {
    one_line_panics();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    let run = std::panic::catch_unwind(|| match cli.command {
        Command::Generate(args) => trace_cmd::generate(&args),
        Command::Forward(args) => trace_cmd::forward(&args),
        Command::LayerPredictions(args) => lens_cmd::layer_predictions(&args),
        Command::Rankings(args) => lens_cmd::rankings(&args),
        Command::RankingsWatch(args) => lens_cmd::rankings_watch(&args),
        Command::Nmf(args) => nmf_cmd::nmf(&args),
        Command::Report(args) => report_cmd::report(&args),
        Command::Evaluate(args) => evaluate_cmd::evaluate(&args),
        Command::Batch(args) => batch_cmd::batch(&args),
        Command::TopExamples(args) => batch_cmd::top_examples(&args),
        Command::Patch(args) => patch_cmd::patch(&args),
        Command::SteeringVector(args) => patch_cmd::steering_vector(&args),
    });
    let Ok(result) = run else {
        let what = LAST_PANIC.lock().ok().and_then(|mut p| p.take()).unwrap_or_else(|| "a panic".to_owned());
        eprintln!("error: internal error (a bug in ecco; please report it): {what}");
        return ExitCode::from(101);
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`| head`): not an error of ours.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", ecco::one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// Clap's errors in our one-line form (`error: …`, exit code 2); `--help` and `--version` are
/// printed whole, as clap formats them.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = err.print();
        return if err.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
    }
    // Clap's message is `error: WHAT` (perhaps with indented lines, such as the missing
    // arguments), a blank line, then tips and the usage: WHAT is the first paragraph.
    let text = err.render().to_string();
    let paragraph: Vec<&str> = text.lines().map(str::trim).skip_while(|l| l.is_empty()).take_while(|l| !l.is_empty()).collect();
    let joined = paragraph.join(" ");
    let what = joined.strip_prefix("error:").unwrap_or(&joined).trim();
    eprintln!("error: {} (see `ecco --help`)", if what.is_empty() { "invalid arguments" } else { what });
    ExitCode::from(2)
}

/// The message of the last panic, recorded by the hook [`one_line_panics`] installs.
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// A panic is a bug of ours, never the answer to bad input; should one happen anyway, `main`
/// reports it on one line like every other error (exit code 101). The hook only records the
/// message: a panic the libraries catch and turn into an error (the tokenizer's) prints nothing.
/// `RUST_BACKTRACE` set keeps Rust's own report, with the backtrace.
fn one_line_panics() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".to_owned());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!("{}{at}", what.replace('\n', " ")));
        }
    }));
}

/// Whether `err` is a write to a closed pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().filter_map(|cause| cause.downcast_ref::<std::io::Error>()).any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
