//! Forward + backward time of the decoder layers at a small DCGAN generator's shapes (batch 64):
//! two transposed convs (32 -> 16 channels, 7x7 -> 14x14; 16 -> 1, 14x14 -> 28x28; kernel 4,
//! stride 2, padding 1), a 2-D batch norm in training mode and a nearest 2x upsampling, on a
//! 2-thread pool. Compare with `bench/decoder_reference.py` (PyTorch, same shapes and threads):
//!
//! ```text
//! CANDLE_NUM_THREADS=1 cargo run --release --no-default-features --example decoder_timing [threads]
//! bench/.venv/bin/python bench/decoder_reference.py --threads 2
//! ```
//!
//! Prints one JSON line per layer and form: the fused CPU op the CPU runs (`"form": "fused"`)
//! and the composed candle ops other devices run (`"composed"`),
//! each with the median and the fastest of 30 timed runs (after 5 warm-up runs); on a shared
//! machine the fastest is the steadier figure.

use candle_core::{Device, Tensor, Var};
use gradlab::model::layers::norm::BatchNormSpec;
use gradlab::model::layers::upsample::{ConvTranspose2dSpec, Upsample};
use gradlab::model::layers::RunLayer;
use gradlab::model::Mode;
use gradlab::rng::Rng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn random(shape: &[usize], rng: &mut Rng, scale: f32) -> candle_core::Result<Tensor> {
    let v: Vec<f32> = (0..shape.iter().product()).map(|_| rng.normal() * scale).collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
}

/// A layer's fused and composed forms.
type Forms = Vec<Box<dyn RunLayer>>;

/// Median and fastest milliseconds of forward + backward (loss: the sum of the outputs).
fn time(layer: &dyn RunLayer, x: &Var, rng: &mut Rng) -> anyhow::Result<(f64, f64)> {
    let mut times = Vec::new();
    for i in 0..35 {
        let start = std::time::Instant::now();
        let y = layer.forward(x.as_tensor(), &mut Mode::Train(rng))?;
        let grads = y.sum_all()?.backward()?;
        std::hint::black_box(grads.get(x));
        if i >= 5 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}

fn main() -> anyhow::Result<()> {
    let threads: usize = std::env::args().nth(1).map_or(Ok(2), |t| t.parse())?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    pool.install(|| -> anyhow::Result<()> {
        let mut rng = Rng::new(1);
        let n = 64;
        let deconv = |cin: usize, cout: usize, rng: &mut Rng| -> anyhow::Result<[Box<dyn RunLayer>; 2]> {
            let spec = ConvTranspose2dSpec { channels: cout, kernel: 4, stride: 2, padding: 1, ..Default::default() };
            let params = [random(&[cin, cout, 4, 4], rng, 0.1)?, random(&[cout], rng, 0.1)?];
            Ok([spec.build(&params)?, spec.build_composed(&params)?])
        };
        let batch_norm = || -> anyhow::Result<[Box<dyn RunLayer>; 2]> {
            let vars = || -> candle_core::Result<Vec<Var>> {
                [vec![1f32; 16], vec![0f32; 16], vec![0f32; 16], vec![1f32; 16], vec![0f32]]
                    .into_iter()
                    .map(|v| {
                        let dims: &[usize] = if v.len() == 1 { &[] } else { &[16] };
                        Var::from_tensor(&Tensor::from_vec(v, dims, &Device::Cpu)?)
                    })
                    .collect()
            };
            let spec = BatchNormSpec::default();
            Ok([spec.build(&vars()?)?, spec.build_composed(&vars()?)?])
        };
        let cases: Vec<(&str, Forms, Vec<usize>)> = vec![
            ("conv_transpose2d 32->16 7x7->14x14", deconv(32, 16, &mut rng)?.into(), vec![n, 7, 7, 32]),
            ("conv_transpose2d 16->1 14x14->28x28", deconv(16, 1, &mut rng)?.into(), vec![n, 14, 14, 16]),
            ("batchnorm2d 16 at 14x14 (training)", batch_norm()?.into(), vec![n, 14, 14, 16]),
            (
                "upsample x2 16 at 14x14",
                vec![Box::new(Upsample { scale: 2, portable: false }), Box::new(Upsample { scale: 2, portable: true })],
                vec![n, 14, 14, 16],
            ),
        ];
        for (name, layers, shape) in cases {
            let x = Var::from_tensor(&random(&shape, &mut rng, 1.0)?)?;
            for (layer, form) in layers.iter().zip(["fused", "composed"]) {
                let (median, fastest) = time(layer.as_ref(), &x, &mut rng)?;
                println!(
                    "{}",
                    serde_json::json!({
                        "layer": name, "form": form, "threads": threads, "median_ms": median, "fastest_ms": fastest
                    })
                );
            }
        }
        Ok(())
    })
}
