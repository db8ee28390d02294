//! The views of a generative model's run: its headline, the discriminator's and generator's
//! loss curves (GAN), the latent scatter coloured by class, and the epoch grids
//! (reconstructions, samples from a fixed noise, the decoded latent plane) with a slider to
//! browse past epochs. Everything shown was computed on the training thread
//! (`train::generative_views`); this file only draws it.

use egui::{ColorImage, RichText, TextureHandle, TextureOptions, Ui};
use egui_plot::{Corner, Legend, Line, Plot, PlotPoints, Points};

use super::plots::{decimate, TRAIN_COLOR, VALIDATION_COLOR};
use super::run_view::LiveRun;
use crate::config::Preset;
use crate::model::{LayerSpec, ModelSpec};
use crate::task::Task;
use crate::train::generative_views::{GridKind, ImageGrid};

/// The line under the run's title.
pub fn headline(ui: &mut Ui, run: &LiveRun) {
    let Some(m) = run.latest_epoch() else {
        ui.label("Waiting for the first epoch...");
        return;
    };
    let text = match (&m.gan, run.task) {
        (Some(g), _) => format!(
            "After epoch {}: discriminator loss {:.3}, generator loss {:.3}, D(x) {:.2}, D(G(z)) {:.2}",
            m.epoch, g.train.d_loss, g.train.g_loss, g.train.d_real, g.train.d_fake
        ),
        (None, Task::Vae) => format!(
            "Validation loss {:.1} nats per sample (reconstruction + KL) after epoch {}",
            m.validation.loss, m.epoch
        ),
        (None, _) => format!("Validation reconstruction loss {:.4} after epoch {}", m.validation.loss, m.epoch),
    };
    ui.label(text);
}

/// The GAN's two losses per batch, or the latent scatter for an autoencoder and a VAE: the plot
/// beside the loss curve.
pub fn side_plot(ui: &mut Ui, run: &LiveRun, height: f32) {
    if run.task == Task::Gan {
        gan_losses(ui, run, height);
    } else {
        latent(ui, run, height);
    }
}

fn gan_losses(ui: &mut Ui, run: &LiveRun, height: f32) {
    ui.strong("Discriminator and generator loss per batch");
    let buckets = (ui.available_width() as usize / 2).max(50);
    let series = |pick: fn(&crate::train::generative::GanFigures) -> f64| {
        let points: Vec<egui_plot::PlotPoint> =
            run.gan_steps.iter().map(|(x, f)| egui_plot::PlotPoint::new(*x, pick(f))).collect();
        decimate(&points, buckets).into_iter().map(|p| [p.x, p.y]).collect::<Vec<[f64; 2]>>()
    };
    let d = series(|f| f.d_loss);
    let g = series(|f| f.g_loss);
    Plot::new("gan_losses")
        .height(height)
        .legend(Legend::default().position(Corner::RightTop))
        .x_axis_label("epoch")
        .show(ui, |plot| {
            plot.line(Line::new("discriminator", PlotPoints::from(d)).color(TRAIN_COLOR));
            plot.line(Line::new("generator", PlotPoints::from(g)).color(VALIDATION_COLOR));
        });
}

/// Validation samples' latent codes, one colour per class.
fn latent(ui: &mut Ui, run: &LiveRun, height: f32) {
    let Some(map) = &run.latent else {
        ui.strong("Latent space");
        ui.label("Appears after the first epoch.");
        return;
    };
    let how = if map.dims > 2 { format!("first two principal components of {}", map.dims) } else { "2-D".into() };
    ui.strong(format!("Latent space (epoch {}, {} validation samples, {how})", map.epoch, map.points.len()));
    let classes = map.labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    Plot::new("latent_scatter").height(height).legend(Legend::default().position(Corner::RightTop)).show(ui, |plot| {
        for class in 0..classes {
            let points: Vec<[f64; 2]> = map
                .points
                .iter()
                .zip(&map.labels)
                .filter(|(_, &l)| l as usize == class)
                .map(|(p, _)| [f64::from(p[0]), f64::from(p[1])])
                .collect();
            if points.is_empty() {
                continue;
            }
            let name = run.class_names.get(class).cloned().unwrap_or_else(|| class.to_string());
            plot.points(Points::new(name, points).radius(2.0).color(super::preview::class_color(class as u32)));
        }
    });
}

/// The epoch grids the run has, each with a slider over its past epochs.
pub fn grids(ui: &mut Ui, run: &LiveRun) {
    let kinds = [GridKind::Samples, GridKind::Reconstructions, GridKind::LatentSweep];
    let mut any = false;
    ui.horizontal_top(|ui| {
        for kind in kinds {
            let grids = run.grids_of(kind);
            if grids.is_empty() {
                continue;
            }
            any = true;
            ui.vertical(|ui| grid(ui, kind, &grids));
            ui.separator();
        }
    });
    if !any {
        ui.label("The model's pictures appear after the first epoch.");
    }
}

fn grid(ui: &mut Ui, kind: GridKind, grids: &[&ImageGrid]) {
    ui.strong(kind.title());
    // the chosen epoch; none chosen (or the newest) follows the newest as epochs arrive
    let id = egui::Id::unique(("grid_epoch", kind.folder()));
    let newest = grids[grids.len() - 1].epoch;
    let mut epoch = ui.data(|d| d.get_temp::<usize>(id)).unwrap_or(usize::MAX).min(newest);
    if grids.len() > 1 {
        let l = ui.label(format!("{} epoch", kind.short()));
        let slider = ui.add(egui::Slider::new(&mut epoch, grids[0].epoch..=newest)).labelled_by(l.id);
        if slider.changed() {
            let stored = if epoch == newest { usize::MAX } else { epoch };
            ui.data_mut(|d| d.insert_temp(id, stored));
        }
    }
    let shown = grids.iter().rev().find(|g| g.epoch <= epoch).copied().unwrap_or(grids[0]);
    let texture = texture(ui, shown);
    // as large as fits (twice the pixels at most), never cut off
    let below = if shown.reading.is_some() { 40.0 } else { 20.0 };
    let fit = (ui.available_width() / shown.width as f32).min((ui.available_height() - below) / shown.height as f32);
    let scale = fit.clamp(0.5, 2.0);
    let size = egui::vec2(shown.width as f32, shown.height as f32) * scale;
    ui.add(egui::Image::new((texture.id(), size))).on_hover_text(format!("{} of epoch {}", kind.title(), shown.epoch));
    ui.label(RichText::new(format!("epoch {}", shown.epoch)).small().weak());
    if let Some(reading) = &shown.reading {
        ui.label(format!("A pretrained MNIST CNN: {}", reading.describe()))
            .on_hover_text("A generator that collapsed to one shape covers one or two digits, however its losses look");
    }
}

/// The grid's texture, made once per picture (kept in egui's memory by its content).
fn texture(ui: &Ui, grid: &ImageGrid) -> TextureHandle {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &grid.pixels {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let id = egui::Id::unique(("grid_texture", grid.kind.folder(), grid.epoch, hash));
    if let Some(t) = ui.data(|d| d.get_temp::<TextureHandle>(id)) {
        return t;
    }
    let size = [grid.width, grid.height];
    let image = if grid.channels == 3 {
        ColorImage::from_rgb(size, &grid.pixels)
    } else {
        ColorImage::from_gray(size, &grid.pixels)
    };
    let name = format!("{}-{}", grid.kind.folder(), grid.epoch);
    let t = ui.ctx().load_texture(name, image, TextureOptions::NEAREST);
    ui.data_mut(|d| d.insert_temp(id, t.clone()));
    t
}

/// The task picker's change: a generative task gets a dense model of its kind that fits any
/// numeric data (its last layer's width follows the data), images scaled to [0, 1].
pub fn on_task_changed(preset: &mut Preset) {
    let builtin = match preset.task {
        Task::Autoencode => "autoencoder_mnist",
        Task::Vae => "vae_mnist",
        Task::Gan => "gan_mnist_mlp",
        Task::Classify | Task::LanguageModel => {
            preset.discriminator = None;
            if preset.model.layers.contains(&LayerSpec::Sample) || preset.model.latent.is_some() {
                preset.model = ModelSpec::mlp(&[128]);
            }
            return;
        }
    };
    if let Ok(p) = Preset::builtin(builtin) {
        preset.model = p.model;
        preset.discriminator = p.discriminator;
        preset.data.normalization = p.data.normalization;
        preset.train.beta1 = p.train.beta1;
        preset.train.learning_rate = p.train.learning_rate;
    }
}
