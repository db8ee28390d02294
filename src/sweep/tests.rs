//! Plan tests: expansion, random draws, refused files, halving's rungs and ranking, the thread
//! split. (Real sweeps train in tests/sweep.rs.)

use std::path::Path;

use super::rank::{survivors, Standing};
use super::{Metric, Plan, Rungs, SweepSpec, ThreadSplit};
use crate::train::RunStatus;

fn plan(text: &str) -> crate::Result<Plan> {
    Plan::new(SweepSpec::from_toml(text, "bad.toml", Path::new("."))?)
}

fn float(v: &toml::Value) -> f64 {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64)).expect("a number")
}

#[test]
fn grid_is_the_product_in_key_order() {
    let p = plan(
        r#"
name = "grid"
builtin = "spiral_mlp"
[vary]
"train.learning_rate" = { log = [1e-4, 1e-1], count = 4 }
"train.batch_size" = { values = [16, 64] }
"#,
    )
    .unwrap();
    assert_eq!(p.trials.len(), 8);
    // keys in order (batch_size before learning_rate), the first slowest
    let lr: Vec<f64> = p.trials[..4].iter().map(|t| float(&t.values["train.learning_rate"])).collect();
    for (got, want) in lr.iter().zip([1e-4, 1e-3, 1e-2, 1e-1]) {
        assert!((got - want).abs() <= 1e-12 * want, "{got} vs {want}");
    }
    let t5 = &p.trials[5];
    assert_eq!(t5.index, 5);
    assert_eq!(t5.values["train.batch_size"].as_integer(), Some(64));
    assert!((float(&t5.values["train.learning_rate"]) - 1e-3).abs() < 1e-15);
    // the values are in the trial's preset, and it is titled after the sweep
    assert_eq!(t5.preset.train.batch_size, 64);
    assert!((t5.preset.train.learning_rate - 1e-3).abs() < 1e-15);
    assert_eq!(t5.preset.title, "grid #005");
    assert_eq!(p.rungs, None);
}

#[test]
fn dotted_keys_index_lists() {
    let p = plan(
        r#"
name = "width"
builtin = "spiral_mlp"
[set]
"model.hidden" = [8, 8]
[vary]
"model.hidden.1" = { values = [4, 16] }
"#,
    )
    .unwrap();
    assert_eq!(p.trials[1].preset.model.hidden, vec![8, 16]);
    let e = plan("name = \"x\"\nbuiltin = \"spiral_mlp\"\n[vary]\n\"model.nothing.units\" = { values = [1] }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.toml") && e.contains("vary.\"model.nothing.units\"") && e.contains("model.nothing"), "{e}");
}

const RANDOM: &str = r#"
name = "random"
builtin = "spiral_mlp"
[vary]
"train.learning_rate" = { log = [1e-4, 1e-1] }
"train.batch_size" = { linear = [16, 64], integer = true }
"model.activation" = { values = ["relu", "tanh"] }
[random]
samples = 12
"#;

#[test]
fn random_draws_repeat_with_the_seed_and_stay_in_range() {
    let a = plan(&format!("{RANDOM}seed = 1\n")).unwrap();
    let b = plan(&format!("{RANDOM}seed = 1\n")).unwrap();
    let c = plan(&format!("{RANDOM}seed = 2\n")).unwrap();
    let values = |p: &Plan| p.trials.iter().map(|t| t.values.clone()).collect::<Vec<_>>();
    assert_eq!(values(&a), values(&b));
    assert_ne!(values(&a), values(&c));
    assert_eq!(a.trials.len(), 12);
    let mut decades = std::collections::BTreeSet::new();
    for t in &a.trials {
        let lr = float(&t.values["train.learning_rate"]);
        assert!((1e-4..=1e-1).contains(&lr), "{lr}");
        decades.insert(lr.log10().floor() as i32);
        let batch = t.values["train.batch_size"].as_integer().expect("integer = true gives integers");
        assert!((16..=64).contains(&batch), "{batch}");
        assert!(["relu", "tanh"].contains(&t.values["model.activation"].as_str().unwrap()));
    }
    // log-uniform: 12 draws over 3 decades land in more than the top one
    assert!(decades.len() >= 2, "{decades:?}");
}

#[test]
fn bad_files_name_the_file_and_key() {
    let cases = [
        ("\"train.learning_rat\" = { values = [0.1] }", "vary.\"train.learning_rat\""),
        (
            "\"train.learning_rate\" = { log = [1e-3, 1e-1], linear = [0, 1], count = 2 }",
            "vary.\"train.learning_rate\"",
        ),
        ("\"train.learning_rate\" = { log = [0, 1], count = 2 }", "vary.\"train.learning_rate\""),
        ("\"train.learning_rate\" = { linear = [0.1, 1], count = 0 }", "vary.\"train.learning_rate\""),
        ("\"train.threads\" = { values = [1, 2] }", "vary.\"train.threads\""),
        ("\"train.learning_rate\" = { values = [-1.0] }", "vary.\"train.learning_rate\""),
        ("\"train.batch_size\" = { linear = [16, 64], count = 2 }", "vary.\"train.batch_size\""),
    ];
    for (line, key) in cases {
        let text = format!("name = \"bad\"\nbuiltin = \"spiral_mlp\"\n[vary]\n{line}\n");
        let e = plan(&text).expect_err(line).to_string();
        assert!(e.starts_with("bad.toml: ") && e.contains(key), "{line}: {e}");
    }
    let e = plan("name = \"bad\"\nbuiltin = \"spiral_mlp\"\nmetrik = 1\n[vary]\n\"seed\" = { values = [1] }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.toml") && e.contains("metrik"), "{e}");
}

#[test]
fn halving_rungs_and_ranking() {
    let p = plan(
        r#"
name = "halving"
builtin = "spiral_mlp"
[vary]
"seed" = { linear = [1, 9], count = 9, integer = true }
[halving]
eta = 3
rungs = 3
min_epochs = 1
"#,
    )
    .unwrap();
    assert_eq!(p.rungs, Some(Rungs { epochs: vec![1, 3, 9], keep: vec![9, 3, 1] }));
    assert!(p.trials.iter().all(|t| t.preset.train.epochs == 9));
    assert_eq!((p.until_epoch(0), p.until_epoch(1), p.until_epoch(2)), (Some(1), Some(3), None));
    let e = plan("name = \"h\"\nbuiltin = \"spiral_mlp\"\n[vary]\n\"train.epochs\" = { values = [1, 2] }\n[halving]\neta = 2\nrungs = 2\nmin_epochs = 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("vary.\"train.epochs\""), "{e}");
    let e = plan("name = \"h\"\nbuiltin = \"spiral_mlp\"\n[vary]\n\"seed\" = { values = [1, 2] }\n[halving]\neta = 1\nrungs = 2\nmin_epochs = 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("halving.eta"), "{e}");

    let s = |trial, score: Option<f64>, status| Standing { trial, score, status };
    let standings = [
        s(0, Some(0.5), RunStatus::Stopped),
        s(1, Some(0.9), RunStatus::Failed),
        s(2, Some(0.7), RunStatus::Stopped),
        s(3, Some(0.7), RunStatus::Stopped),
        s(4, None, RunStatus::Stopped),
        s(5, Some(0.8), RunStatus::Interrupted),
    ];
    // ties to the lower index; failed and interrupted last whatever their score
    assert_eq!(survivors(&standings, Metric::ValidationAccuracy, 3), vec![2, 3, 0]);
    assert_eq!(survivors(&standings, Metric::ValidationAccuracy, 6)[3..], [1, 4, 5]);
    assert_eq!(survivors(&standings, Metric::ValidationLoss, 2), vec![0, 2]);
}

#[test]
fn thread_split() {
    assert_eq!(ThreadSplit::new(2, 2).slots, vec![1, 1]);
    assert_eq!(ThreadSplit::new(2, 1).slots, vec![2]);
    assert_eq!(ThreadSplit::new(2, 4).slots, vec![1, 1]);
    assert_eq!(ThreadSplit::new(16, 3).slots, vec![6, 5, 5]);
    assert_eq!(ThreadSplit::new(1, 0).slots, vec![1]);
    for budget in 1..20 {
        for parallel in 0..25 {
            let split = ThreadSplit::new(budget, parallel);
            assert!(split.slots.iter().sum::<usize>() <= budget);
            assert!(split.slots.iter().all(|&t| t >= 1));
        }
    }
}

#[test]
fn a_corrupt_state_is_refused_not_indexed() {
    let runs = tempfile::tempdir().unwrap();
    let p =
        plan("name = \"s\"\nbuiltin = \"spiral_mlp\"\n[vary]\n\"train.learning_rate\" = { values = [0.01, 0.1] }\n")
            .unwrap();
    let dir = super::write_sweep_dir(runs.path(), &p).unwrap();
    let good = super::SweepState::read(&dir).unwrap();
    for (bad, named) in [
        (super::SweepState { active: vec![0, 2], ..good.clone() }, "active trial 2"),
        (super::SweepState { active: vec![1, 1], ..good.clone() }, "active trial 1"),
        (super::SweepState { rung: 1, ..good.clone() }, "rung 1"),
        (super::SweepState { pruned: [(5, 0)].into(), ..good.clone() }, "trial 5 pruned"),
    ] {
        bad.write(&dir).unwrap();
        let e = super::SweepState::read(&dir).unwrap_err().to_string();
        assert!(e.contains("state.json") && e.contains(named), "{e}");
    }
    good.write(&dir).unwrap();
    assert_eq!(super::SweepState::read(&dir).unwrap(), good);
}

#[test]
fn halving_refuses_fixed_epochs() {
    let e = plan(
        "name = \"h\"\nbuiltin = \"spiral_mlp\"\n[set]\n\"train.epochs\" = 5\n[vary]\n\
         \"train.learning_rate\" = { values = [0.01, 0.1] }\n[halving]\neta = 2\nrungs = 2\nmin_epochs = 1\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("bad.toml") && e.contains("set.\"train.epochs\"") && e.contains("rungs"), "{e}");
}
