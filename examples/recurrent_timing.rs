//! Forward + backward time of one recurrent layer (`model::recurrent::sequence`) at the text
//! presets' shapes (batch 64, input 32, hidden 32, time 50 and 100), on a 2-thread pool and
//! with the app's allocator. Compare with `bench/recurrent_reference.py` (PyTorch, same shapes,
//! threads and loss):
//!
//! ```text
//! cargo run --release --no-default-features --example recurrent_timing [threads] [cell] [--portable] [--forward]
//! bench/.venv/bin/python bench/recurrent_reference.py --threads 2
//! ```
//!
//! Prints one JSON line per case: the median and the fastest of 50 timed runs (after 5 warm-up
//! runs); on a shared machine the fastest is the steadier figure. `--forward` times the forward
//! alone.
//!
//! candle 0.11 runs its own elementwise ops on 64K values or more on a pool of spinning threads
//! of its own, one per extra core, beside our rayon pool: on a 2-core machine the two fight.
//! `CANDLE_NUM_THREADS=1` keeps candle's ops on the calling thread.

use candle_core::{Device, Tensor, Var};
use gradlab::model::recurrent::{sequence, Cell};
use gradlab::rng::Rng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn random(shape: &[usize], rng: &mut Rng, scale: f32) -> candle_core::Result<Tensor> {
    let v: Vec<f32> = (0..shape.iter().product()).map(|_| rng.normal() * scale).collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
}

fn time_case(cell: Cell, steps: usize, portable: bool, forward_only: bool) -> anyhow::Result<(f64, f64)> {
    let (batch, input, hidden) = (64, 32, 32);
    let gh = cell.gates() * hidden;
    let mut rng = Rng::new(1);
    let scale = 1.0 / (hidden as f32).sqrt();
    let x = Var::from_tensor(&random(&[batch, steps, input], &mut rng, 1.0)?)?;
    let w_ih = Var::from_tensor(&random(&[gh, input], &mut rng, scale)?)?;
    let w_hh = Var::from_tensor(&random(&[gh, hidden], &mut rng, scale)?)?;
    let b_ih = Var::from_tensor(&random(&[gh], &mut rng, scale)?)?;
    let b_hh = Var::from_tensor(&random(&[gh], &mut rng, scale)?)?;
    let upstream = random(&[batch, steps, hidden], &mut rng, 1.0)?;
    let mut ms = Vec::new();
    for i in 0..55 {
        let start = std::time::Instant::now();
        let y = sequence(cell, &x, &w_ih, &w_hh, &b_ih, &b_hh, false, portable)?;
        if forward_only {
            std::hint::black_box(y);
        } else {
            std::hint::black_box((y * &upstream)?.sum_all()?.backward()?);
        }
        if i >= 5 {
            ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], ms[0]))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2);
    let only = args.get(1).filter(|a| !a.starts_with("--")).map(|a| a.to_lowercase());
    let portable = args.iter().any(|a| a == "--portable");
    let forward_only = args.iter().any(|a| a == "--forward");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    for (cell, name) in [(Cell::Rnn, "rnn"), (Cell::Lstm, "lstm"), (Cell::Gru, "gru")] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        for steps in [50, 100] {
            let (median, fastest) = pool.install(|| time_case(cell, steps, portable, forward_only))?;
            let row = serde_json::json!({
                "cell": name, "time": steps, "batch": 64, "ms": median, "fastest_ms": fastest,
                "samples_per_s": 64.0 / (median / 1e3), "threads": threads, "portable": portable,
                "forward_only": forward_only,
            });
            println!("{row}");
        }
    }
    Ok(())
}
