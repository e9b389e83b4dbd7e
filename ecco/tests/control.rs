//! [`ecco::Control`]: another thread follows long work's progress and stops it.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use ecco::{Control, GenerateOptions, Method};

/// Integrated gradients that take seconds on the demo model, followed by `control`.
fn long_attribution(control: &Control) -> GenerateOptions {
    GenerateOptions {
        max_new_tokens: 6,
        attribution: vec![Method::IntegratedGradients],
        ig_steps: 4000,
        progress: false,
        control: Some(control.clone()),
        ..Default::default()
    }
}

#[test]
fn a_watcher_sees_the_progress_and_cancels_within_a_step() -> Result<()> {
    let lm = ecco::demo()?;
    let control = Control::new();
    let options = long_attribution(&control);
    let watcher = {
        let control = control.clone();
        std::thread::spawn(move || {
            // Wait for the attribution to be under way, then stop it.
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Some(s) = control.snapshot()
                    && s.message == "integrated_gradients"
                    && s.position > 0
                {
                    control.cancel();
                    return Some((s, Instant::now()));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            None
        })
    };
    let result = lm.generate("The capital of France is", &options);
    let returned = Instant::now();
    let seen = watcher.join().map_err(|_| anyhow::anyhow!("the watcher panicked"))?;
    let Some((snapshot, cancelled_at)) = seen else { anyhow::bail!("the watcher never saw the attribution's progress") };
    ensure!(snapshot.length == 6 * 4000, "{snapshot:?}");
    ensure!(snapshot.position < snapshot.length, "{snapshot:?}");
    let err = match result {
        Ok(_) => anyhow::bail!("the attribution ran to its end"),
        Err(err) => err,
    };
    ensure!(ecco::is_cancelled(&err), "{err:#}");
    ensure!(returned - cancelled_at < Duration::from_secs(1), "stopped {:?} after the cancel", returned - cancelled_at);
    Ok(())
}

#[test]
fn a_cancelled_control_stops_generation_before_its_first_step() -> Result<()> {
    let lm = ecco::demo()?;
    let control = Control::new();
    control.cancel();
    let options = GenerateOptions { progress: false, control: Some(control), ..Default::default() };
    match lm.generate("The capital of France is", &options) {
        Ok(_) => anyhow::bail!("generation ran"),
        Err(err) => ensure!(ecco::is_cancelled(&err) && ecco::one_line(&err) == "cancelled", "{err:#}"),
    }
    // Without a control nothing changes.
    let output = lm.generate("The capital of France is", &GenerateOptions { max_new_tokens: 1, progress: false, ..Default::default() })?;
    ensure!(output.generated_tokens() == ["ĠParis"]);
    Ok(())
}
