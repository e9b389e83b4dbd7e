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
    /// Activation patching (or attribution patching) from a clean text into a corrupted one.
    Patch(patch_cmd::PatchArgs),
    /// A steering vector from prompt pairs (contrastive activation addition).
    SteeringVector(patch_cmd::SteeringVectorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => trace_cmd::generate(&args),
        Command::Forward(args) => trace_cmd::forward(&args),
        Command::LayerPredictions(args) => lens_cmd::layer_predictions(&args),
        Command::Rankings(args) => lens_cmd::rankings(&args),
        Command::RankingsWatch(args) => lens_cmd::rankings_watch(&args),
        Command::Nmf(args) => nmf_cmd::nmf(&args),
        Command::Report(args) => report_cmd::report(&args),
        Command::Patch(args) => patch_cmd::patch(&args),
        Command::SteeringVector(args) => patch_cmd::steering_vector(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`| head`): not an error of ours.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// Whether `err` is a write to a closed pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().filter_map(|cause| cause.downcast_ref::<std::io::Error>()).any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// The error and its causes on one line, without repeating a cause its parent already quotes.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line.replace('\n', " ")
}
