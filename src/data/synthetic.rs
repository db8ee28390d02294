//! Two-dimensional toy sets in the spirit of TensorFlow Playground and scikit-learn's
//! `make_*` generators. Everything is drawn from the seeded [`Rng`].

use std::f32::consts::PI;

use crate::rng::Rng;

/// The most points a synthetic set may have (`data.samples`): 240 MB of features, far more than
/// a 2-D toy problem needs, and a bound that keeps every size computed from it exact.
pub const MAX_SAMPLES: usize = 20_000_000;

/// Points (x, y pairs, flattened) and their class labels.
pub struct Points {
    pub xy: Vec<f32>,
    pub labels: Vec<u32>,
}

impl Points {
    fn with_capacity(n: usize) -> Self {
        Self { xy: Vec::with_capacity(2 * n), labels: Vec::with_capacity(n) }
    }

    fn push(&mut self, x: f32, y: f32, label: usize) {
        self.xy.push(x);
        self.xy.push(y);
        self.labels.push(label as u32);
    }
}

/// `classes` interleaved spiral arms (the CS231n spiral), `samples` points in all.
pub fn spiral(samples: usize, classes: usize, noise: f32, rng: &mut Rng) -> Points {
    let mut p = Points::with_capacity(samples);
    let per_class = samples / classes.max(1);
    for c in 0..classes {
        for i in 0..per_class {
            let r = i as f32 / per_class as f32;
            let t = (c as f32 + r) * 4.0 * 3.0 / classes as f32 + rng.normal() * noise * 2.0;
            p.push(r * t.sin(), r * t.cos(), c);
        }
    }
    p
}

/// Two interleaving half circles (scikit-learn's `make_moons`).
pub fn moons(samples: usize, noise: f32, rng: &mut Rng) -> Points {
    let mut p = Points::with_capacity(samples);
    let half = samples / 2;
    for i in 0..samples {
        let upper = i < half;
        let k = if upper { i } else { i - half };
        let n = if upper { half } else { samples - half };
        let t = PI * k as f32 / (n.max(2) - 1) as f32;
        let (x, y) = if upper { (t.cos(), t.sin()) } else { (1.0 - t.cos(), 0.5 - t.sin()) };
        p.push(x + rng.normal() * noise, y + rng.normal() * noise, usize::from(!upper));
    }
    p
}

/// A small circle inside a large one (scikit-learn's `make_circles`, factor 0.5).
pub fn circles(samples: usize, noise: f32, rng: &mut Rng) -> Points {
    let mut p = Points::with_capacity(samples);
    for i in 0..samples {
        let inner = i % 2 == 1;
        let t = rng.uniform() * 2.0 * PI;
        let r = if inner { 0.5 } else { 1.0 };
        p.push(r * t.cos() + rng.normal() * noise, r * t.sin() + rng.normal() * noise, usize::from(inner));
    }
    p
}

/// Points in [-1, 1]^2 labelled by the sign of x*y, kept a little away from the axes.
pub fn xor(samples: usize, noise: f32, rng: &mut Rng) -> Points {
    let mut p = Points::with_capacity(samples);
    let margin = 0.05;
    for _ in 0..samples {
        let mut x = rng.uniform_range(-1.0, 1.0);
        let mut y = rng.uniform_range(-1.0, 1.0);
        x += if x > 0.0 { margin } else { -margin };
        y += if y > 0.0 { margin } else { -margin };
        let label = usize::from(x * y > 0.0);
        p.push(x + rng.normal() * noise, y + rng.normal() * noise, label);
    }
    p
}

/// Gaussian blobs around `classes` centres evenly spaced on a circle.
pub fn blobs(samples: usize, classes: usize, noise: f32, rng: &mut Rng) -> Points {
    let mut p = Points::with_capacity(samples);
    let classes = classes.max(1);
    let spread = 0.25 + noise;
    for i in 0..samples {
        let c = i % classes;
        let a = 2.0 * PI * c as f32 / classes as f32;
        p.push(a.cos() + rng.normal() * spread, a.sin() + rng.normal() * spread, c);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_seeded_and_balanced() {
        for make in [
            |r: &mut Rng| spiral(300, 3, 0.1, r),
            |r: &mut Rng| moons(300, 0.1, r),
            |r: &mut Rng| circles(300, 0.1, r),
            |r: &mut Rng| xor(300, 0.1, r),
            |r: &mut Rng| blobs(300, 3, 0.1, r),
        ] {
            let a = make(&mut Rng::new(5));
            let b = make(&mut Rng::new(5));
            assert_eq!(a.xy, b.xy);
            assert_eq!(a.labels.len(), 300);
            assert_eq!(a.xy.len(), 600);
            assert!(a.xy.iter().all(|v| v.is_finite()));
            let ones = a.labels.iter().filter(|&&l| l == 1).count();
            assert!(ones > 60, "class 1 has only {ones} points");
        }
    }
}
