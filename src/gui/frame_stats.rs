//! Frame timing for measuring that the UI stays responsive while training: with
//! `GRADLAB_FRAME_STATS=1` the app records how long each frame's own work takes (logic + ui) and
//! prints percentiles when it closes.

use std::time::{Duration, Instant};

#[derive(Default)]
pub struct FrameStats {
    enabled: bool,
    started: Option<Instant>,
    frames_us: Vec<u32>,
    opened: Option<Instant>,
    /// What asked for the frames (file:line of the repaint request), counted.
    causes: std::collections::BTreeMap<String, usize>,
}

impl FrameStats {
    pub fn from_env() -> Self {
        Self {
            enabled: std::env::var_os("GRADLAB_FRAME_STATS").is_some(),
            started: None,
            frames_us: Vec::new(),
            opened: Some(Instant::now()),
            causes: Default::default(),
        }
    }

    pub fn begin(&mut self, ctx: &egui::Context) {
        if self.enabled {
            self.started = Some(Instant::now());
            for cause in ctx.repaint_causes() {
                *self.causes.entry(format!("{}:{}", cause.file, cause.line)).or_default() += 1;
            }
        }
    }

    pub fn end(&mut self) {
        if let Some(start) = self.started.take() {
            self.frames_us.push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }

    /// (frames, p50, p99, max) of the recorded frames.
    pub fn summary(&self) -> Option<(usize, Duration, Duration, Duration)> {
        if self.frames_us.is_empty() {
            return None;
        }
        let mut v = self.frames_us.clone();
        v.sort_unstable();
        let at = |q: f64| Duration::from_micros(u64::from(v[((v.len() - 1) as f64 * q).round() as usize]));
        Some((v.len(), at(0.5), at(0.99), at(1.0)))
    }
}

impl Drop for FrameStats {
    fn drop(&mut self) {
        if let Some((n, p50, p99, max)) = self.summary() {
            let open_s = self.opened.map_or(0.0, |t| t.elapsed().as_secs_f64());
            eprintln!(
                "frame stats: {n} frames in {open_s:.1}s ({:.1}/s); app work per frame p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                n as f64 / open_s.max(1e-9),
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3,
                max.as_secs_f64() * 1e3
            );
            for (cause, n) in &self.causes {
                eprintln!("  repaint requested at {cause}: {n}");
            }
        }
    }
}
