//! The generative views: an autoencoder's reconstructions and latent space, a VAE's latent
//! plane, a GAN's two losses and sample grids, and the task picker's generative models.

use super::*;

/// A generative preset, small enough for a GUI test.
fn generative(name: &str, epochs: usize, limit: usize) -> Preset {
    let mut preset = Preset::builtin(name).unwrap();
    preset.train.epochs = epochs;
    preset.data.limit = limit;
    preset
}

#[test]
fn an_autoencoder_shows_its_reconstructions_and_latent_space() {
    let mut h = harness(generative("autoencoder_mnist", 3, 1500));
    settle(&mut h);
    run_to_completion(&mut h);
    let run = &h.state().run;
    assert_eq!(run.grids.len(), 3, "one reconstruction grid per epoch");
    assert!(run.latent.is_some());
    // the loss is the headline, no accuracy
    h.get_by_label_contains("Validation reconstruction loss");
    assert!(h.query_by_label_contains("Validation accuracy").is_none());
    // an earlier epoch's grid is a slider away
    h.get_by_role_and_label(egui::Role::Slider, "Reconstructions epoch");
    h.state_mut().run.fix_timings_for_snapshot(20_000.0, 2.0);
    h.run();
    h.snapshot("autoencoder_reconstructions");
}

#[test]
fn a_vae_shows_its_latent_plane_and_the_grid_decoded_from_it() {
    let mut h = harness(generative("vae_mnist", 3, 1500));
    settle(&mut h);
    run_to_completion(&mut h);
    let run = &h.state().run;
    assert_eq!(run.latent.as_ref().map(|l| l.dims), Some(2));
    assert_eq!(
        run.grids.iter().filter(|g| g.kind == gradlab::train::generative_views::GridKind::LatentSweep).count(),
        3
    );
    h.get_by_label_contains("nats per sample");
    h.state_mut().run.fix_timings_for_snapshot(20_000.0, 2.0);
    h.run();
    h.snapshot("vae_latent");
}

#[test]
fn a_gan_shows_both_losses_and_browsable_sample_grids() {
    let mut h = harness(generative("gan_mnist_mlp", 3, 1000));
    settle(&mut h);
    run_to_completion(&mut h);
    let run = &h.state().run;
    assert_eq!(run.gan_steps.len(), 3 * run.batches_per_epoch, "both losses of every batch");
    assert_eq!(run.grids.len(), 3);
    h.get_by_label_contains("discriminator loss");
    // the pretrained MNIST CNN's reading of the newest samples
    h.get_by_label_contains("A pretrained MNIST CNN: read as");
    h.state_mut().run.fix_timings_for_snapshot(20_000.0, 2.0);
    h.run();
    h.snapshot("gan_samples");
}

#[test]
fn the_task_picker_offers_the_generative_tasks_and_sets_up_their_models() {
    let mut h = harness(Preset::builtin("mnist_mlp").unwrap());
    settle(&mut h);
    h.get_by_label("Task").click();
    h.run();
    h.get_by_label("GAN").click();
    // scaling the pixels reloads the preview (a spinner) before the UI settles
    h.step();
    settle(&mut h);
    let preset = &h.state().preset;
    assert_eq!(preset.task, gradlab::task::Task::Gan);
    assert!(preset.discriminator.is_some());
    preset.validate("gui").unwrap();
    h.get_by_label("Start");
}
