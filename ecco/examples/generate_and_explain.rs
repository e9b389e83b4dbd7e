//! Generate after a prompt and explain the result, as Ecco's notebook does:
//! `cargo run --release -p ecco --example generate_and_explain [MODEL] [PROMPT]`.
//!
//! Without arguments it runs the demo model built into the crate on "The capital of France
//! is": the model continues with " Paris", `grad_x_input` puts the largest weight on
//! " France", and the last layer ranks " Paris" first.

use ecco::{GenerateOptions, Lens, Method};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> ecco::Result<()> {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| ecco::DEMO_NAME.to_owned());
    let prompt = args.next().unwrap_or_else(|| "The capital of France is".to_owned());

    let lm = ecco::from_pretrained(&model, &ecco::LoadOptions::default())?;
    let options =
        GenerateOptions { max_new_tokens: 4, attribution: vec![Method::GradXInput, Method::IntegratedGradients], ..Default::default() };
    let output = lm.generate(&prompt, &options)?;
    println!("{}", output.output_text());

    // Primary attributions: for each generated token, the weight of every earlier token.
    let n_input = output.trace().n_input_tokens;
    for method in &options.attribution {
        println!("\n{} attributions:", method.name());
        for (k, row) in output.primary_attributions(*method)?.iter().enumerate() {
            let cells: Vec<String> = row.iter().zip(output.tokens()).map(|(w, t)| format!("{t:?} {w:.2}")).collect();
            println!("  {:>12?} <- {}", output.tokens()[n_input + k], cells.join("  "));
        }
    }

    // The logit lens: the rank of every generated token at every layer.
    println!("\nrankings (normed lens), layers x generated tokens:");
    for (layer, row) in output.rankings(Lens::Normed)?.iter().enumerate() {
        println!("  layer {layer}: {row:?}");
    }
    // What each layer predicts for the first generated token.
    println!("\nlayer predictions at position {n_input}:");
    for (layer, preds) in output.layer_predictions(n_input, 3, None, Lens::Normed)?.iter().enumerate() {
        let cells: Vec<String> = preds.iter().map(|p| format!("{:?} {:.3}", p.token, p.prob)).collect();
        println!("  layer {layer}: {}", cells.join("  "));
    }
    Ok(())
}
