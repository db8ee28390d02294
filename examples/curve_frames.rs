//! Frame times of the curve plot with long runs: 10 runs x {loss, accuracy} x 1,000,000 steps
//! (noisy decays with a few spikes), two plots linked in x, smoothing 0.6, in a kittest
//! harness of the app's window size. 100 still frames (every line from the cache), 100 frames
//! panning (a drag per frame: every series queried again), 100 frames zooming. For each phase,
//! p50 / p99 / max of the app's work (`step`: decimation, layout, tessellation) and of
//! `render` on the adapter wgpu gave (its name is printed; Mesa's llvmpipe without a GPU).
//!
//! `cargo run --example curve_frames` (the dev profile builds gradlab at opt-level 3).

#[cfg(feature = "gui")]
mod bench {
    use std::time::Instant;

    use egui_kittest::Harness;
    use egui_plot::{Corner, MarkerShape};
    use gradlab::gui::curve_plot::{self, CurvePlot, EpochLine, Marker, PlotSettings, StepLine};
    use gradlab::gui::series::{columns, Curve, Series, XKind};

    const RUNS: usize = 10;
    const POINTS: usize = 1_000_000;
    const BATCHES_PER_EPOCH: usize = 10_000;

    struct State {
        loss: Vec<Series>,
        accuracy: Vec<Series>,
        settings: PlotSettings,
    }

    /// A small PCG-ish generator: reproducible noise without a dependency.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> f32 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 40) as f32) / (1u64 << 24) as f32
        }
    }

    fn curves(run: usize) -> (Series, Series) {
        let mut noise = Noise(run as u64 + 1);
        let mut loss = Series::with_smoothing(0.6);
        let mut accuracy = Series::with_smoothing(0.6);
        let rate = 2.0 + run as f32 * 0.3;
        for i in 0..POINTS {
            let t = i as f32 / POINTS as f32;
            let spike = if i % 250_007 == 1_000 * (run + 1) { 5.0 } else { 0.0 };
            let l = 2.3 * (-rate * t).exp() + 0.05 + 0.2 * noise.next() + spike;
            let a = 1.0 - 0.9 * (-rate * t).exp() - 0.1 * noise.next();
            let time = i as f32 * 0.004;
            loss.push(i as u32, time, l);
            accuracy.push(i as u32, time, a);
        }
        (loss, accuracy)
    }

    fn ui(ui: &mut egui::Ui, state: &mut State) {
        curve_plot::settings_bar(ui, &mut state.settings);
        let settings = state.settings;
        let colors: Vec<egui::Color32> =
            (0..RUNS).map(|i| egui::epaint::Hsva::new(i as f32 / RUNS as f32, 0.7, 0.9, 1.0).into()).collect();
        let markers = [Marker { step: 400_000, epoch: 40.0, time_s: 1_600.0, label: "lr 3e-4".into() }];
        let height = (ui.available_height() / 2.0 - 30.0).max(100.0);
        for (id, name, series, legend) in [
            ("bench_loss", "loss", &state.loss, Corner::RightTop),
            ("bench_accuracy", "accuracy", &state.accuracy, Corner::RightBottom),
        ] {
            let steps = series
                .iter()
                .enumerate()
                .map(|(i, s)| StepLine {
                    name: format!("run {i}"),
                    series: s,
                    color: colors[i],
                    batches_per_epoch: BATCHES_PER_EPOCH,
                })
                .collect();
            let epochs = vec![EpochLine {
                name: "validation".into(),
                color: egui::Color32::WHITE,
                points: (1..=100).map(|e| (e as f64, e as f64 * 40.0, 0.5)).collect(),
                batches_per_epoch: BATCHES_PER_EPOCH,
                joined: true,
                shape: MarkerShape::Circle,
                radius: 3.0,
            }];
            let plot = CurvePlot {
                id,
                link_group: "bench",
                y_name: name,
                steps,
                epochs,
                markers: &markers,
                height,
                include_y: &[0.0],
                legend,
            };
            curve_plot::show(ui, plot, &settings);
        }
    }

    fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.5), at(0.99), *v.last().unwrap())
    }

    pub fn main() {
        let built = Instant::now();
        let (loss, accuracy): (Vec<Series>, Vec<Series>) = (0..RUNS).map(curves).unzip();
        println!(
            "{RUNS} runs x 2 curves x {POINTS} points built in {:.1} s (series with EMA and pyramids)",
            built.elapsed().as_secs_f64()
        );
        // the decimation alone, as a pan asks it: every line of both plots, 600 columns
        let mut query = Vec::new();
        for frame in 0..100 {
            let shift = frame as f64 * 2_000.0;
            let range = [100_000.0 + shift, 900_000.0 + shift];
            let t = Instant::now();
            let mut points = 0;
            for s in loss.iter().chain(&accuracy) {
                for curve in [Curve::Raw, Curve::Smoothed] {
                    points += columns(s, curve, XKind::Step, BATCHES_PER_EPOCH, range, 600, false).len();
                }
            }
            query.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(points > 0);
        }
        let q = percentiles(query);
        println!("decimation of all 40 lines per frame: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", q.0, q.1, q.2);
        let render_state = egui_kittest::wgpu::create_render_state(
            egui_kittest::wgpu::default_wgpu_setup(),
            eframe::egui_wgpu::RendererOptions::PREDICTABLE,
        );
        let adapter = render_state.adapter.get_info();
        println!("adapter: {} ({:?}, {:?})", adapter.name, adapter.device_type, adapter.backend);
        let state =
            State { loss, accuracy, settings: PlotSettings { smoothing: 0.6, log_y: false, x_kind: XKind::Step } };
        let mut h = Harness::builder()
            .with_size([1360.0, 860.0])
            .renderer(egui_kittest::wgpu::WgpuTestRenderer::from_render_state(render_state))
            .build_ui_state(ui, state);
        // warm up: fonts, the first full queries
        for _ in 0..5 {
            h.step();
            let _ = h.render();
        }
        let centre = egui::pos2(680.0, 220.0);
        let mut report = Vec::new();
        for phase in ["still", "panning", "zooming"] {
            let (mut work, mut render) = (Vec::new(), Vec::new());
            if phase == "panning" {
                h.drag_at(centre);
            }
            for frame in 0..100 {
                match phase {
                    "panning" => h.hover_at(centre + egui::vec2(-3.0 * (frame + 1) as f32, 0.0)),
                    "zooming" => {
                        h.hover_at(centre);
                        h.event(egui::Event::Zoom(1.03));
                    }
                    _ => {}
                }
                let t = Instant::now();
                h.step();
                work.push(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                h.render().expect("render");
                render.push(t.elapsed().as_secs_f64() * 1e3);
            }
            if phase == "panning" {
                h.drop_at(centre + egui::vec2(-300.0, 0.0));
                h.step();
            }
            report.push((phase, percentiles(work), percentiles(render)));
        }
        println!("phase     app work ms (p50 / p99 / max)    render ms (p50 / p99 / max)");
        for (phase, w, r) in report {
            println!(
                "{phase:<9} {:>7.2} / {:>7.2} / {:>7.2}        {:>7.2} / {:>7.2} / {:>7.2}",
                w.0, w.1, w.2, r.0, r.1, r.2
            );
        }
    }
}

fn main() {
    #[cfg(feature = "gui")]
    bench::main();
    #[cfg(not(feature = "gui"))]
    eprintln!("curve_frames measures the GUI's plot: build with the `gui` feature (the default)");
}
