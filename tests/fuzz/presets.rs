//! Presets: TOML parsing and validation.

use gradlab::config::BUILTIN;
use gradlab::Preset;
use proptest::prelude::*;

use crate::support::{bounded, config, hostile_text, mutated_text, random_bytes};

/// The built-in presets as written, and as Gradlab writes them back (every key, defaults too,
/// so that every number in a preset gets a hostile value).
fn bases() -> Vec<String> {
    let mut all: Vec<String> = BUILTIN.iter().map(|(_, t)| (*t).to_string()).collect();
    all.extend(BUILTIN.iter().map(|(n, _)| Preset::builtin(n).unwrap().to_toml()));
    all
}

fn preset_input() -> impl Strategy<Value = String> {
    let bases = bases();
    let n = bases.len();
    let pick = move |i: usize| bases[i % n].clone();
    let pick2 = pick.clone();
    let pick3 = pick.clone();
    prop_oneof![
        1 => any::<usize>().prop_flat_map(move |i| mutated_text(&pick(i))),
        3 => any::<usize>().prop_flat_map(move |i| hostile_text(pick2(i))),
        1 => any::<usize>().prop_flat_map(move |i| {
            // a key the file may not set yet, with a hostile value
            let base = pick3(i);
            let keys = "(hidden|conv|dropout|epochs|batch_size|samples|classes|limit|threads|noise|learning_rate)";
            (prop::sample::select(vec!["[data]\n", "[model]\n", "[train]\n"]), keys, crate::support::hostile_number())
                .prop_map(move |(table, key, v)| {
                    let v = match key.as_str() {
                        "hidden" => format!("[{v}, {v}]"),
                        "conv" => format!("[{{ channels = 2, kernel = 3, padding = {v}, stride = 1, pool = 1 }}]"),
                        _ => v,
                    };
                    base.replacen(table, &format!("{table}{key} = {v}\n"), 1)
                })
        }),
        1 => random_bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => "[a-z_\\[\\]=\" 0-9.\n-]{0,200}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn presets_parse_and_validate_without_panic(text in preset_input()) {
        match bounded("parsing a preset", || Preset::from_toml(&text, "fuzz.toml"))? {
            // what was accepted writes back and reads back the same
            Ok(p) => {
                let again = bounded("re-reading a preset", || Preset::from_toml(&p.to_toml(), "again.toml"))?;
                prop_assert!(again.is_ok(), "{:?}", again.err());
                // and its memory estimate (what refuses runs that cannot fit) holds up to it too
                bounded("estimating a preset's memory", || gradlab::budget::estimate(&p))?.ok();
            }
            Err(e) => prop_assert!(e.to_string().contains("fuzz.toml"), "{}", e),
        }
    }
}

/// The preset: shape arithmetic on this padding used to wrap (and panic in a checked
/// build); now it is refused naming the key.
#[test]
fn a_huge_conv_padding_is_refused_naming_the_key() {
    let text = Preset::builtin("mnist_cnn").unwrap().to_toml().replace("padding = 0", "padding = 9223372036854775807");
    let e = Preset::from_toml(&text, "pad.toml").expect_err("refused").to_string();
    assert!(e.contains("pad.toml") && e.contains("model.conv[0].padding") && e.contains("overflows"), "{e}");
}
