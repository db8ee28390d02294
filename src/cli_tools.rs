//! The headless commands that measure or read a trained model: `bench`, `export`, `eval`.

use std::path::PathBuf;

use gradlab::data::DataSpec;
use gradlab::export::Which;

pub fn bench(
    batches: usize,
    threads: Option<usize>,
    models: &str,
    python: Option<PathBuf>,
    no_reference: bool,
    device: gradlab::device::DeviceChoice,
) -> anyhow::Result<()> {
    use gradlab::bench::{self, BenchConfig};
    let cfg = BenchConfig {
        batches,
        threads: threads.unwrap_or_else(gradlab::train::cores).clamp(1, gradlab::train::cores()),
        models: if models.trim() == "all" {
            // the text models need Debian's fortunes and word lists: skipped (and said) without them
            let (found, missing): (Vec<&str>, Vec<&str>) =
                bench::ALL_MODELS.iter().partition(|m| bench::data_installed(m));
            if !missing.is_empty() {
                eprintln!(
                    "skipping {} (their data is not installed: apt-get install fortunes fortunes-min wamerican wngerman ...)",
                    missing.join(", ")
                );
            }
            found.iter().map(|m| m.to_string()).collect()
        } else {
            models.split(',').map(|m| m.trim().to_string()).collect()
        },
        device,
        ..BenchConfig::default()
    };
    for m in &cfg.models {
        bench::model_preset(m)?;
    }
    eprintln!("benchmarking {} on {} threads, device {}…", cfg.models.join(", "), cfg.threads, cfg.device);
    let ours = bench::run(&cfg)?;
    let reference = if no_reference {
        None
    } else {
        let python = python.unwrap_or_else(|| {
            let venv = PathBuf::from("bench/.venv/bin/python");
            if venv.exists() {
                venv
            } else {
                PathBuf::from("python3")
            }
        });
        eprintln!("running the PyTorch reference with {}…", python.display());
        match bench::run_reference(&python, std::path::Path::new("bench/reference.py"), &cfg) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("warning: no reference figures: {e}");
                None
            }
        }
    };
    print!("{}", bench::format_report(&ours, reference.as_ref()));
    Ok(())
}

pub fn export(run_dir: &std::path::Path, out_dir: &std::path::Path, epoch: &str, format: &str) -> anyhow::Result<()> {
    let which: Which = epoch.parse().map_err(anyhow::Error::msg)?;
    let format: gradlab::export::ExportFormat = format.parse().map_err(|e: String| anyhow::anyhow!("--format: {e}"))?;
    let card = gradlab::export::export_run_as(run_dir, which, out_dir, format)?;
    println!(
        "exported {} (epoch {}, validation accuracy {:.2}%) to {}",
        card.title,
        card.epoch,
        100.0 * card.validation_accuracy.unwrap_or(0.0),
        out_dir.display()
    );
    for (name, shape) in &card.tensors {
        println!("  {name:16} {shape:?}");
    }
    println!("  files: config.json, {}", card.files.join(", "));
    Ok(())
}

pub fn eval(model_dir: &std::path::Path, data: Option<String>, path: Option<PathBuf>) -> anyhow::Result<()> {
    let card = gradlab::export::load_model(model_dir)?.card;
    if card.split.is_none() && data.is_none() {
        eprintln!(
            "warning: {} was exported before Gradlab recorded data splits; the held-out samples are split \
             again with the same seed but cannot be checked against the run's",
            model_dir.display()
        );
    }
    let spec = data.map(|set| DataSpec { set, path: path.clone(), ..card.data.clone() });
    // evaluate_model checks the split whenever the data is the model's own
    let data_given_is_own = spec.as_ref().is_none_or(|s| *s == card.data);
    let (split, e) = gradlab::export::evaluate_model(model_dir, spec)?;
    println!(
        "{} on the {split} split: accuracy {:.2}% ({}/{}), loss {:.4}",
        card.title,
        100.0 * e.accuracy,
        e.confusion.correct(),
        e.confusion.total(),
        e.loss
    );
    if let (Some(recorded), true) = (&card.split, data_given_is_own) {
        println!(
            "held out exactly the run's samples: {} validation{} (split hash {})",
            recorded.validation,
            recorded.test.map_or_else(String::new, |t| format!(", {t} test")),
            recorded.validation_indices
        );
    }
    println!("confusion matrix (rows: true class, columns: predicted):");
    let width = card.class_names.iter().map(String::len).max().unwrap_or(1).min(12);
    for t in 0..e.confusion.classes {
        let row: Vec<String> = (0..e.confusion.classes).map(|p| format!("{:5}", e.confusion.get(t, p))).collect();
        let name: String = card.class_names.get(t).map_or("?", String::as_str).chars().take(width).collect();
        println!("  {name:>width$} {}", row.join(""));
    }
    Ok(())
}
