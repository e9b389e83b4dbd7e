//! Ecco's `run_nmf`: factorise the FFN activations of a generation into a few groups of
//! neurons that fire together, print where each is strongest, and write the report page:
//! `cargo run --release -p ecco --example nmf [MODEL] [OUT.html]`.

use ecco::{GenerateOptions, NmfOptions, ReportOptions};

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
    let html = args.next();

    let lm = ecco::from_pretrained(&model, &ecco::LoadOptions::default())?;
    let options = GenerateOptions { max_new_tokens: 8, activations: true, ..Default::default() };
    let output = lm.generate("one two three four", &options)?;
    println!("{}", output.output_text());

    let nmf = output.run_nmf(&NmfOptions { components: 4, ..Default::default() })?;
    println!("NMF of layers {:?}: error {:.4} after {} iterations", nmf.layers, nmf.reconstruction_error, nmf.n_iter);
    for (k, strengths) in nmf.components.iter().enumerate() {
        let best = (0..strengths.len()).max_by(|&a, &b| strengths[a].total_cmp(&strengths[b])).unwrap_or(0);
        let top: Vec<String> = nmf.loadings[k].iter().take(3).map(|n| format!("{}:{}", n.layer, n.neuron)).collect();
        println!("factor {k}: strongest at {:?}; top neurons {}", output.tokens()[best], top.join(", "));
    }

    if let Some(path) = html {
        // Written as the `ecco` command writes pages: whole or not at all, never through a link.
        let page = output.to_html(&ReportOptions { components: 4, ..Default::default() })?;
        ecco_viz::write_atomic(std::path::Path::new(&path), page.as_bytes())?;
        println!("wrote {path}");
    }
    Ok(())
}
