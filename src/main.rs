//! `gradlab`: the desktop app by default, subcommands for headless work.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use gradlab::train::{Event, RunRequest, RunStatus, Trainer, WorkerOptions};
use gradlab::Preset;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "gradlab",
    version,
    about = "A desktop workbench for neural-network experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a preset headless, printing progress.
    Train {
        /// A preset TOML file.
        preset: Option<PathBuf>,
        /// A built-in preset by name instead of a file (e.g. mnist_cnn).
        #[arg(long, conflicts_with = "preset")]
        builtin: Option<String>,
        /// Override the preset's number of epochs.
        #[arg(long)]
        epochs: Option<usize>,
        /// Override the preset's compute threads.
        #[arg(long)]
        threads: Option<usize>,
        /// Where run directories are written.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Write no run directory.
        #[arg(long)]
        no_record: bool,
        /// Print one line per epoch only.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Presets: check a file, or list the built-in ones.
    Preset {
        #[command(subcommand)]
        action: PresetCmd,
    },
}

#[derive(Subcommand)]
enum PresetCmd {
    /// Validate a preset without training.
    Check { file: PathBuf },
    /// List the built-in presets.
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => open_gui(),
        Some(Cmd::Train {
            preset,
            builtin,
            epochs,
            threads,
            runs_dir,
            no_record,
            quiet,
        }) => load_preset(preset, builtin).and_then(|mut p| {
            if let Some(e) = epochs {
                p.train.epochs = e;
            }
            if let Some(t) = threads {
                p.train.threads = t;
            }
            p.validate("command line")?;
            train(p, (!no_record).then_some(runs_dir), quiet)
        }),
        Some(Cmd::Preset {
            action: PresetCmd::Check { file },
        }) => Preset::load(&file)
            .map(|p| {
                println!(
                    "{}: ok ({}, {} on {})",
                    file.display(),
                    p.title,
                    p.model.summary(),
                    p.data.set
                )
            })
            .map_err(Into::into),
        Some(Cmd::Preset {
            action: PresetCmd::List,
        }) => {
            for (name, _) in gradlab::config::BUILTIN {
                let p = Preset::builtin(name).expect("built-in presets are valid");
                println!("{name:20} {}", p.description);
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "gui")]
fn open_gui() -> anyhow::Result<()> {
    gradlab::gui::run_native().map_err(|e| anyhow::anyhow!("the window could not open: {e}"))
}

#[cfg(not(feature = "gui"))]
fn open_gui() -> anyhow::Result<()> {
    bail!("this gradlab was built without the `gui` feature; see `gradlab --help` for the headless commands")
}

fn load_preset(file: Option<PathBuf>, builtin: Option<String>) -> anyhow::Result<Preset> {
    Ok(match (file, builtin) {
        (Some(f), _) => Preset::load(&f)?,
        (None, Some(name)) => Preset::builtin(&name)?,
        (None, None) => bail!("give a preset file or --builtin <name> (see `gradlab preset list`)"),
    })
}

fn train(preset: Preset, runs_dir: Option<PathBuf>, quiet: bool) -> anyhow::Result<()> {
    let trainer = Trainer::spawn(WorkerOptions::headless(runs_dir));
    trainer.send(RunRequest::fresh(preset));
    let mut epochs = 0;
    let mut last_progress = std::time::Instant::now();
    while let Some(event) = trainer.recv() {
        match event {
            Event::Started { title, data, train_samples, validation_samples, params, epochs: e, threads, run_dir, .. } => {
                epochs = e;
                println!("{title}: {data}, {train_samples} train / {validation_samples} validation samples, {params} parameters, {threads} threads");
                if let Some(dir) = run_dir {
                    println!("recording to {}", dir.display());
                }
            }
            Event::Step { epoch, batch, loss, samples_per_s, .. } => {
                if !quiet && last_progress.elapsed().as_secs_f64() > 2.0 {
                    last_progress = std::time::Instant::now();
                    println!("  epoch {epoch} batch {batch}: loss {loss:.4}, {samples_per_s:.0} samples/s");
                }
            }
            Event::Epoch(m) => println!(
                "epoch {}/{epochs}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}% | {:.0} samples/s | {:.1}s",
                m.epoch,
                m.train_loss,
                100.0 * m.train_accuracy,
                m.validation.loss,
                100.0 * m.validation.accuracy,
                m.samples_per_s,
                m.elapsed_s
            ),
            Event::Finished(s) => {
                println!(
                    "{}: {} epochs in {:.1}s, {:.0} samples/s",
                    s.status.title(),
                    s.epochs_completed,
                    s.wall_time_s,
                    s.samples_per_s
                );
                if let (Some(best), Some(acc)) = (s.best_epoch, s.best_validation_accuracy) {
                    println!("best validation accuracy {:.2}% at epoch {best}", 100.0 * acc);
                }
                if let Some(v) = &s.final_validation {
                    println!("final validation: loss {:.4}, accuracy {:.2}%", v.loss, 100.0 * v.accuracy);
                }
                if let Some(t) = &s.test {
                    println!("test: loss {:.4}, accuracy {:.2}%", t.loss, 100.0 * t.accuracy);
                }
                if s.status != RunStatus::Completed {
                    bail!("the run ended {}", s.status.title());
                }
                return Ok(());
            }
            Event::Failed { error } => bail!("training failed: {error}"),
            Event::Paused { .. } | Event::Resumed => {}
        }
    }
    Err(anyhow::anyhow!("the training thread ended unexpectedly")).context("training")
}
