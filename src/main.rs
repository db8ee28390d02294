//! `gradlab`: the desktop app by default, subcommands for headless work.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use gradlab::train::{Command, Event, RunOrigin, RunRequest, RunStatus, Trainer, WorkerOptions};
use gradlab::Preset;

mod cli_tools;
mod sweep_cli;
mod sweep_cmd;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "gradlab", version, about = "A desktop workbench for neural-network experiments")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Open the app (what `gradlab` alone does), optionally with a preset, started at once.
    Gui {
        /// A preset TOML file to load.
        preset: Option<PathBuf>,
        /// A built-in preset by name instead of a file.
        #[arg(long, conflicts_with = "preset")]
        builtin: Option<String>,
        /// Start training as soon as the window opens.
        #[arg(long)]
        start: bool,
        /// Close the window when that run ends.
        #[arg(long, requires = "start")]
        quit_when_done: bool,
        /// Where run directories are written (default: the folder chosen last time, else
        /// ~/.local/share/gradlab/runs; the headless commands keep ./runs).
        #[arg(long)]
        runs_dir: Option<PathBuf>,
    },
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
        /// Override the preset's train.device (auto, cpu, cpu-portable, cuda, cuda:N, metal).
        #[arg(long)]
        device: Option<gradlab::device::DeviceChoice>,
        /// Where run directories are written.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Write no run directory.
        #[arg(long)]
        no_record: bool,
        /// Print one line per epoch only.
        #[arg(long, short)]
        quiet: bool,
        /// Memory the run may take (e.g. 8G, 512M; a plain number is GiB), instead of what the
        /// machine has available; sets the preset's train.max_memory_gb.
        #[arg(long, value_parser = parse_memory)]
        max_memory: Option<f64>,
        /// Run as trial N of sweep ID (`ID/N`): a new run tagged so, or the trial's run resumed,
        /// or nothing when it has completed (what a Slurm job runs).
        #[arg(long, value_name = "ID/N", conflicts_with = "no_record")]
        sweep_trial: Option<String>,
        /// Stop at the end of this epoch (a halving rung), `stopped` with its checkpoint.
        #[arg(long, value_name = "E", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        until_epoch: Option<usize>,
    },
    /// Sweeps: `gradlab sweep FILE` prints the plan; `run`, `resume` and the Slurm commands.
    #[command(args_conflicts_with_subcommands = true)]
    Sweep {
        #[command(subcommand)]
        action: Option<sweep_cmd::SweepCmd>,
        /// A sweep file: print its trials, rungs, thread split and memory estimate.
        file: Option<PathBuf>,
        /// Trials at once, for the thread split shown.
        #[arg(long, short = 'j')]
        parallel: Option<usize>,
    },
    /// Presets: check a file, or list the built-in ones.
    Preset {
        #[command(subcommand)]
        action: PresetCmd,
    },
    /// List recorded runs, newest first.
    Runs {
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
    },
    /// Continue a stopped or killed run from its last checkpoint, in its own directory.
    Resume {
        run_dir: PathBuf,
        #[arg(long, short)]
        quiet: bool,
        /// Memory the run may take (e.g. 8G, 512M; a plain number is GiB), instead of what the
        /// machine has available; sets the preset's train.max_memory_gb.
        #[arg(long, value_parser = parse_memory)]
        max_memory: Option<f64>,
    },
    /// Start a new run from a checkpoint of another, with changed hyper-parameters.
    Fork {
        /// A run directory (with --epoch) or a checkpoint file (checkpoints/epoch-N.json).
        from: PathBuf,
        /// Which checkpoint of the run: last, best or an epoch number.
        #[arg(long, default_value = "last")]
        epoch: String,
        /// The changed preset (default: the run's own).
        #[arg(long)]
        preset: Option<PathBuf>,
        /// Train up to this many epochs in all.
        #[arg(long)]
        epochs: Option<usize>,
        #[arg(long)]
        learning_rate: Option<f64>,
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        #[arg(long, short)]
        quiet: bool,
        /// Memory the run may take (e.g. 8G, 512M; a plain number is GiB), instead of what the
        /// machine has available; sets the preset's train.max_memory_gb.
        #[arg(long, value_parser = parse_memory)]
        max_memory: Option<f64>,
    },
    /// Export a run's trained model (safetensors and/or ONNX, + JSON) into a folder, weights in
    /// the layout PyTorch would hold.
    Export {
        run_dir: PathBuf,
        out_dir: PathBuf,
        /// Which checkpoint: last, best or an epoch number.
        #[arg(long, default_value = "last")]
        epoch: String,
        /// What to write: safetensors, onnx or all (both).
        #[arg(long, default_value = "safetensors")]
        format: String,
    },
    /// Training throughput of the presets' models, against PyTorch when it is installed.
    Bench {
        /// Timed batches per model.
        #[arg(long, default_value_t = 60)]
        batches: usize,
        /// Compute threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Models: mlp, cnn (Fashion-MNIST), cifar (a CIFAR-format fixture), rnn, lstm, gru,
        /// char-lstm, transformer (the text presets), vae, gan, dcgan (MNIST 5k), or `all`.
        #[arg(long, default_value = "all")]
        models: String,
        /// Python with PyTorch for the reference (default: bench/.venv/bin/python, else python3).
        #[arg(long)]
        python: Option<PathBuf>,
        /// Skip the PyTorch reference.
        #[arg(long)]
        no_reference: bool,
        /// Where to train: cpu, cpu-portable (the GPU path's ops on the CPU), cuda[:N], metal[:N]
        /// or auto; the reference runs on PyTorch's CUDA build for cuda, else on the CPU.
        #[arg(long, default_value = "cpu")]
        device: gradlab::device::DeviceChoice,
    },
    /// Reload an exported model and report its accuracy and confusion matrix.
    Eval {
        model_dir: PathBuf,
        /// A data set (default: the one it was trained on), e.g. fashion-mnist or idx.
        #[arg(long)]
        data: Option<String>,
        /// Folder for `idx` data.
        #[arg(long)]
        path: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PresetCmd {
    /// Validate a preset without training, and estimate the memory its run will take.
    Check {
        file: PathBuf,
        /// Memory the run may take (e.g. 8G, 512M; a plain number is GiB), instead of what the
        /// machine has available; sets the preset's train.max_memory_gb.
        #[arg(long, value_parser = parse_memory)]
        max_memory: Option<f64>,
    },
    /// List the built-in presets.
    List,
}

fn main() -> ExitCode {
    gradlab::train::tune_candle_pool();
    let cli = Cli::parse();
    let result = match cli.command {
        None => open_gui(None, false, false, None),
        Some(Cmd::Gui { preset, builtin, start, quit_when_done, runs_dir }) => {
            let preset = if preset.is_some() || builtin.is_some() { Some(load_preset(preset, builtin)) } else { None };
            match preset.transpose() {
                Ok(p) => open_gui(p, start, quit_when_done, runs_dir),
                Err(e) => Err(e),
            }
        }
        Some(Cmd::Train {
            preset,
            builtin,
            epochs,
            threads,
            device,
            runs_dir,
            no_record,
            quiet,
            max_memory,
            sweep_trial,
            until_epoch,
        }) => {
            let origin = match (&preset, &builtin) {
                (Some(file), _) => file.display().to_string(),
                (None, Some(name)) => format!("presets/{name}.toml"),
                (None, None) => "command line".into(),
            };
            load_preset(preset, builtin).and_then(|mut p| {
                if let Some(e) = epochs {
                    p.train.epochs = e;
                }
                if let Some(t) = threads {
                    p.train.threads = t;
                }
                if let Some(d) = device {
                    p.train.device = d;
                }
                if max_memory.is_some() {
                    p.train.max_memory_gb = max_memory;
                }
                p.validate("command line")?;
                if let Some(estimate) = gradlab::budget::check(&p, &origin)? {
                    println!("{}", estimate.summary());
                }
                match sweep_trial {
                    Some(trial) => sweep_cmd::train_trial(p, &trial, runs_dir, until_epoch, quiet),
                    None => {
                        let mut options = WorkerOptions::headless((!no_record).then_some(runs_dir));
                        options.until_epoch = until_epoch;
                        drive(RunRequest { preset: p, origin: RunOrigin::Fresh }, options, quiet)
                    }
                }
            })
        }
        Some(Cmd::Sweep { action: None, file: Some(file), parallel }) => sweep_cli::plan(&file, parallel),
        Some(Cmd::Sweep { action: None, file: None, .. }) => {
            Err(anyhow::anyhow!("give a sweep file (`gradlab sweep FILE`) or a command (see `gradlab sweep --help`)"))
        }
        Some(Cmd::Sweep { action: Some(action), .. }) => sweep_cmd::run(action),
        Some(Cmd::Preset { action: PresetCmd::Check { file, max_memory } }) => check_preset(&file, max_memory),
        Some(Cmd::Runs { runs_dir }) => {
            list_runs(&runs_dir);
            Ok(())
        }
        Some(Cmd::Resume { run_dir, quiet, max_memory }) => {
            Preset::load(&run_dir.join("preset.toml")).map_err(Into::into).and_then(|mut preset| {
                // the worker checks the request's preset, which is the run's own with this limit
                if max_memory.is_some() {
                    preset.train.max_memory_gb = max_memory;
                }
                drive(RunRequest { preset, origin: RunOrigin::Resume(run_dir) }, WorkerOptions::headless(None), quiet)
            })
        }
        Some(Cmd::Fork { from, epoch, preset, epochs, learning_rate, runs_dir, quiet, max_memory }) => {
            fork(&from, &epoch, preset, (epochs, learning_rate, max_memory), runs_dir, quiet)
        }
        Some(Cmd::Export { run_dir, out_dir, epoch, format }) => cli_tools::export(&run_dir, &out_dir, &epoch, &format),
        Some(Cmd::Eval { model_dir, data, path }) => cli_tools::eval(&model_dir, data, path),
        Some(Cmd::Bench { batches, threads, models, python, no_reference, device }) => {
            cli_tools::bench(batches, threads, &models, python, no_reference, device)
        }
        Some(Cmd::Preset { action: PresetCmd::List }) => {
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
fn open_gui(
    preset: Option<Preset>,
    start: bool,
    quit_when_done: bool,
    runs_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    // Without a GPU, Mesa's software renderer (llvmpipe) draws the window on as many threads as
    // there are cores, taking them from training. Leave it the cores training does not use; a
    // GPU driver ignores this. Set before any thread exists.
    if std::env::var_os("LP_NUM_THREADS").is_none() {
        let spare = gradlab::train::cores().saturating_sub(gradlab::gui::AppOptions::default().default_threads).max(1);
        std::env::set_var("LP_NUM_THREADS", spare.to_string());
    }
    let mut options = gradlab::gui::AppOptions { start, quit_when_done, ..Default::default() };
    // what the command line says wins over what the last session kept
    if let Some(dir) = runs_dir {
        options.runs_dir = Some(dir);
        options.keep_from_last_time.runs_dir = false;
    }
    if let Some(p) = preset {
        options.preset = p;
        options.keep_from_last_time.preset = false;
    }
    gradlab::gui::run_native(options).map_err(|e| anyhow::anyhow!("the window could not open: {e}"))
}

#[cfg(not(feature = "gui"))]
fn open_gui(
    _preset: Option<Preset>,
    _start: bool,
    _quit_when_done: bool,
    _runs_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    bail!("this gradlab was built without the `gui` feature; see `gradlab --help` for the headless commands")
}

/// `--max-memory` as GiB (the unit of train.max_memory_gb).
fn parse_memory(text: &str) -> Result<f64, String> {
    gradlab::budget::parse_size(text).map(|bytes| bytes as f64 / f64::from(1u32 << 30))
}

/// `preset check`: validation, then the memory estimate against the limit.
fn check_preset(file: &std::path::Path, max_memory: Option<f64>) -> anyhow::Result<()> {
    let mut p = Preset::load(file)?;
    if max_memory.is_some() {
        p.train.max_memory_gb = max_memory;
    }
    let origin = file.display().to_string();
    let memory = match gradlab::budget::check(&p, &origin)? {
        Some(estimate) => {
            let (limit, _) = gradlab::budget::limit(&p);
            format!("{} of {} available", estimate.summary(), gradlab::budget::format_bytes(limit))
        }
        None => "memory not estimated: the data's size is known only once it is read".into(),
    };
    println!("{origin}: ok ({}, {} on {})\n{memory}", p.title, p.model.summary(), p.data.set);
    Ok(())
}

fn load_preset(file: Option<PathBuf>, builtin: Option<String>) -> anyhow::Result<Preset> {
    Ok(match (file, builtin) {
        (Some(f), _) => Preset::load(&f)?,
        (None, Some(name)) => Preset::builtin(&name)?,
        (None, None) => bail!("give a preset file or --builtin <name> (see `gradlab preset list`)"),
    })
}

fn list_runs(runs_dir: &std::path::Path) {
    let runs = gradlab::record::list_runs(runs_dir);
    if runs.is_empty() {
        println!("no runs in {}", runs_dir.display());
    }
    for (dir, r) in runs {
        let best = r.best_validation_accuracy.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a));
        println!(
            "{:40} {:11} {:14} {:28} best {best:>7}  {}/{} epochs  {:.0}s",
            dir.display(),
            r.status.title(),
            r.data,
            r.model,
            r.epochs_completed,
            r.epochs_planned,
            r.wall_time_s
        );
    }
}

fn fork(
    from: &std::path::Path,
    epoch: &str,
    preset: Option<PathBuf>,
    (epochs, learning_rate, max_memory): (Option<usize>, Option<f64>, Option<f64>),
    runs_dir: PathBuf,
    quiet: bool,
) -> anyhow::Result<()> {
    let checkpoint = if from.is_dir() {
        gradlab::export::find_checkpoint(from, epoch.parse().map_err(anyhow::Error::msg)?)?
    } else {
        from.to_path_buf()
    };
    let run_dir =
        checkpoint.parent().and_then(std::path::Path::parent).context("a checkpoint lives in <run>/checkpoints/")?;
    let mut p = match preset {
        Some(file) => Preset::load(&file)?,
        None => Preset::load(&run_dir.join("preset.toml"))?,
    };
    if let Some(e) = epochs {
        p.train.epochs = e;
    }
    if let Some(lr) = learning_rate {
        p.train.learning_rate = lr;
    }
    if max_memory.is_some() {
        p.train.max_memory_gb = max_memory;
    }
    p.validate("command line")?;
    drive(RunRequest { preset: p, origin: RunOrigin::Fork(checkpoint) }, WorkerOptions::headless(Some(runs_dir)), quiet)
}

/// A generative model's epoch: its losses, no accuracy (a GAN: both networks' figures).
fn generative_epoch_line(m: &gradlab::train::EpochMetrics, epochs: usize) -> String {
    let figures = match &m.gan {
        Some(g) => format!(
            "D loss {:.4} G loss {:.4} D(x) {:.3} D(G(z)) {:.3} | val D loss {:.4} G loss {:.4}",
            g.train.d_loss, g.train.g_loss, g.train.d_real, g.train.d_fake, g.validation.d_loss, g.validation.g_loss
        ),
        None => format!("train loss {:.4} | val loss {:.4}", m.train_loss, m.validation.loss),
    };
    format!("epoch {}/{epochs}: {figures} | {:.0} samples/s | {:.1}s", m.epoch, m.samples_per_s, m.elapsed_s)
}

/// Runs one request on a training thread and prints its events until it ends. A run stopped at
/// `options.until_epoch` (a halving rung's end) has succeeded.
pub(crate) fn drive(request: RunRequest, options: WorkerOptions, quiet: bool) -> anyhow::Result<()> {
    let until_epoch = options.until_epoch;
    let trainer = Trainer::spawn(options);
    trainer.send(Command::Start(Box::new(request)));
    let mut epochs = 0;
    let mut language_model = false;
    let mut task = gradlab::task::Task::Classify;
    let mut last_progress = std::time::Instant::now();
    while let Some(event) = trainer.recv() {
        match event {
            Event::Started {
                title,
                data,
                train_samples,
                validation_samples,
                params,
                epochs: e,
                threads,
                device,
                run_dir,
                task: t,
                ..
            } => {
                epochs = e;
                task = t;
                language_model = task == gradlab::task::Task::LanguageModel;
                println!("{title}: {data}, {train_samples} train / {validation_samples} validation samples, {params} parameters, {threads} threads");
                println!("device: {device}");
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
            Event::Epoch(m) if !task.has_accuracy() => println!("{}", generative_epoch_line(&m, epochs)),
            Event::Epoch(m) => println!(
                "epoch {}/{epochs}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}%{} | {:.0} samples/s | {:.1}s",
                m.epoch,
                m.train_loss,
                100.0 * m.train_accuracy,
                m.validation.loss,
                100.0 * m.validation.accuracy,
                if language_model { format!(" perplexity {:.2}", m.validation.loss.exp()) } else { String::new() },
                m.samples_per_s,
                m.elapsed_s
            ),
            Event::TextSample(s) if !quiet => {
                println!("  sample ({:.0} ms): {}{}", s.millis, s.prompt, s.text.replace('\n', "\n  "));
            }
            Event::Images(grid) if !quiet => {
                let reading = grid.reading.as_ref().map(|r| format!(": {}", r.describe())).unwrap_or_default();
                println!("  {} of epoch {}{reading}", grid.kind.title().to_lowercase(), grid.epoch);
            }
            Event::TextSample(_)
            | Event::Probe { .. }
            | Event::Embedding(_)
            | Event::Images(_)
            | Event::Latent(_)
            | Event::GanStep { .. }
            | Event::Predictions(_)
            | Event::Inspected { .. }
            | Event::LayerStats(_)
            | Event::Boundary(_)
            | Event::LearningRateSet { .. }
            | Event::LrFinder(_) => {}
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
                let accuracy = |a: f64| if task.has_accuracy() { format!(", accuracy {:.2}%", 100.0 * a) } else { String::new() };
                if let Some(v) = &s.final_validation {
                    println!("final validation: loss {:.4}{}", v.loss, accuracy(v.accuracy));
                }
                if let Some(t) = &s.test {
                    println!("test: loss {:.4}{}", t.loss, accuracy(t.accuracy));
                }
                let rung_end = s.status == RunStatus::Stopped && until_epoch.is_some_and(|e| s.epochs_completed >= e);
                if s.status != RunStatus::Completed && !rung_end {
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
