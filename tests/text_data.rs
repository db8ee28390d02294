//! Text data: IMDB-layout folders written here (including an empty, a binary and a non-UTF-8
//! file), language models over a text file, and the real Debian sets (word lists, fortunes).

mod common;

use std::path::Path;
use std::time::Instant;

use gradlab::config::Preset;
use gradlab::data::{self, DataSpec, Dataset, NormalizationKind, SetKind, TextInfo};

fn err_of<T>(r: gradlab::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// Writes `root/<split>/<class>/<name>.txt` for each (split, class, name, bytes).
fn write_files(root: &Path, files: &[(&str, &str, &str, &[u8])]) {
    for (split, class, name, bytes) in files {
        let dir = root.join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.txt")), bytes).unwrap();
    }
}

/// An IMDB-layout folder: `per_class` training reviews per class, 2 test reviews per class. Each
/// review holds a word of its own (`w<class><i>`), so the vocabulary shows which reviews counted.
fn imdb_fixture(root: &Path, per_class: usize) {
    for (class, tone) in [("neg", "Awful, BORING film.<br /><br />Don't watch"), ("pos", "A great film!<br />Loved it")]
    {
        for i in 0..per_class {
            let text = format!("{tone} w{class}{i} ({i})");
            write_files(root, &[("train", class, &format!("{i}_review"), text.as_bytes())]);
        }
        for i in 0..2 {
            write_files(root, &[("test", class, &format!("t{i}"), format!("{tone} test{class}{i}").as_bytes())]);
        }
    }
    // IMDB's unlabelled reviews and loose files are not classes
    write_files(root, &[("train", "unsup", "0_0", b"no label")]);
    std::fs::write(root.join("train").join("labeledBow.feat"), "0 0:1").unwrap();
}

fn folder_spec(root: &Path) -> DataSpec {
    DataSpec { set: "text-folder".into(), path: Some(root.to_path_buf()), max_len: 12, ..DataSpec::default() }
}

fn rows(split: &data::Split, info: &TextInfo) -> Vec<String> {
    (0..split.len()).map(|i| info.decode(&TextInfo::ids_of(split.sample(i)))).collect()
}

#[test]
fn an_imdb_folder_loads_with_the_vocabulary_of_its_training_part() {
    let dir = tempfile::tempdir().unwrap();
    imdb_fixture(dir.path(), 10);
    let ds = data::load(&folder_spec(dir.path()), 7).unwrap();
    assert_eq!(ds.kind, SetKind::Text);
    assert_eq!(ds.class_names, ["neg", "pos"]);
    assert_eq!((ds.train.len(), ds.validation.len(), ds.test.as_ref().map(data::Split::len)), (18, 2, Some(4)));
    assert_eq!(ds.input_shape, [12]);
    assert_eq!(ds.train.feature_len(), 12);
    // token ids, never standardised, though the spec says standardize
    assert_eq!(folder_spec(dir.path()).normalization, NormalizationKind::Standardize);
    assert!(ds.train.features.iter().all(|v| v.fract() == 0.0 && *v >= 0.0));
    let info = ds.text.as_ref().expect("a text set carries its vocabulary");
    assert_eq!(&info.tokens[..2], ["<pad>", "<unk>"]);
    assert!(!info.tokens.contains(&"br".to_string()), "<br /> is layout, not words");
    // each review's own word is known exactly when the review is in the training part
    let train_text = rows(&ds.train, info).join(" ");
    let val_text = rows(&ds.validation, info);
    for class in ["neg", "pos"] {
        for i in 0..10 {
            let word = format!("w{class}{i}");
            let in_train = train_text.split(' ').any(|w| w == word);
            assert_eq!(info.tokens.contains(&word), in_train, "{word}");
        }
    }
    for v in &val_text {
        assert!(v.contains("<unk>"), "a held-out review's own word is unknown: {v}");
    }
    // the test reviews' words are not in the vocabulary either, and they keep their class
    let test = ds.test.as_ref().unwrap();
    assert_eq!(test.labels, [0, 0, 1, 1]);
    assert!(rows(test, info).iter().all(|t| t.ends_with("<unk>")));
    // the tokenizer the GUI uses cuts text as the training did
    assert_eq!(info.decode(&info.encode("A GREAT film!<br />")), "a great film !");
    // padded at the front, so the last state of a recurrent layer follows the last word
    assert_eq!(info.encode("Don't").last(), info.tokens.iter().position(|t| t == "don't").map(|p| p as u32).as_ref());
    assert_eq!(info.encode("").len(), 12);
}

#[test]
fn a_runs_data_json_keeps_the_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    imdb_fixture(dir.path(), 4);
    let ds = data::load(&folder_spec(dir.path()), 1).unwrap();
    let run = tempfile::tempdir().unwrap();
    gradlab::record::DataInfo::of(&ds).write(run.path()).unwrap();
    let back = gradlab::record::DataInfo::read(run.path()).unwrap();
    let text = back.text.expect("data.json holds the tokenizer and vocabulary");
    assert_eq!(&text, ds.text.as_ref().unwrap());
    assert_eq!(text.decode(&text.encode("A great film!")), "a great film !");
}

#[test]
fn a_text_split_follows_the_seed_and_its_fingerprint_sees_changed_files() {
    let dir = tempfile::tempdir().unwrap();
    imdb_fixture(dir.path(), 10);
    let spec = folder_spec(dir.path());
    let a = data::load(&spec, 1).unwrap();
    let again = data::load(&spec, 1).unwrap();
    assert_eq!((&a.train.features, &a.split), (&again.train.features, &again.split));
    let other = data::load(&spec, 2).unwrap();
    assert_ne!(a.split.validation_indices, other.split.validation_indices);
    // a changed test review is a different held-out sample
    write_files(dir.path(), &[("test", "pos", "t0", b"Awful film")]);
    let changed = data::load(&spec, 1).unwrap();
    assert!(a.split.differences(&changed.split).is_some());
    // data.limit cuts the training part only
    let limited = data::load(&DataSpec { limit: 5, ..spec }, 1).unwrap();
    assert_eq!((limited.train.len(), limited.validation.len()), (5, 2));
}

#[test]
fn empty_binary_and_non_utf8_files_are_refused_by_name() {
    let cases: [(&str, &[u8], &str); 4] = [
        ("empty", b"", "is empty"),
        ("blank", b"  \n\t ", "is empty"),
        ("binary", b"GIF89a\x00\x01\x02", "binary"),
        ("latin1", b"caf\xe9 cr\xe8me", "not UTF-8"),
    ];
    for (name, bytes, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        imdb_fixture(dir.path(), 3);
        write_files(dir.path(), &[("train", "pos", name, bytes)]);
        let e = err_of(data::load(&folder_spec(dir.path()), 1));
        assert!(e.contains(&format!("pos/{name}.txt")) && e.contains(why), "{name}: {e}");
    }
}

#[test]
fn malformed_folders_are_refused_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let e = err_of(data::load(&folder_spec(dir.path()), 1));
    assert!(e.contains("holds no train/ folder"), "{e}");

    imdb_fixture(dir.path(), 3);
    write_files(dir.path(), &[("test", "neutral", "0", b"meh")]);
    let e = err_of(data::load(&folder_spec(dir.path()), 1));
    assert!(e.contains("test/neutral") && e.contains("class `neutral` has no folder in train/"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    imdb_fixture(dir.path(), 3);
    std::fs::create_dir_all(dir.path().join("train/mixed")).unwrap();
    let e = err_of(data::load(&folder_spec(dir.path()), 1));
    assert!(e.contains("train/mixed") && e.contains("no .txt files"), "{e}");

    // a file past the per-file cap is refused before it is read
    let dir = tempfile::tempdir().unwrap();
    imdb_fixture(dir.path(), 3);
    let huge = vec![b'a'; (data::text::folder::MAX_FILE_BYTES + 1) as usize];
    write_files(dir.path(), &[("train", "neg", "huge", &huge)]);
    let e = err_of(data::load(&folder_spec(dir.path()), 1));
    assert!(e.contains("neg/huge.txt") && e.contains("larger than"), "{e}");
}

#[test]
fn huge_inputs_are_refused_before_they_are_read() {
    // a language model's file past the cap (sparse: no bytes written)
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.txt");
    std::fs::File::create(&path).unwrap().set_len(data::text::stream::MAX_TEXT_FILE_BYTES + 1).unwrap();
    let e = err_of(data::load(&text_file_spec(&path, 10), 1));
    assert!(e.contains("huge.txt") && e.contains("larger than 64 MiB"), "{e}");
    // a fortunes folder with thousands of files stops listing at its cap
    let many = dir.path().join("many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..4001 {
        std::fs::write(many.join(format!("f{i}")), "%").unwrap();
    }
    let spec = DataSpec { set: "fortune-categories".into(), path: Some(many), ..DataSpec::default() };
    let e = err_of(data::load(&spec, 1));
    assert!(e.contains("many") && e.contains("more than 4000 entries"), "{e}");
}

#[test]
fn presets_for_text_sets_are_checked() {
    let check = |edit: &dyn Fn(&mut Preset)| {
        // an MLP: the CNN of the default preset needs images
        let mut p = Preset::builtin("iris_mlp").unwrap();
        edit(&mut p);
        p.validate("t.toml").err().map(|e| e.to_string())
    };
    // without a path a preset is sound (the GUI waits for the folder; loading asks for it)
    assert_eq!(check(&|p| p.data.set = "text-folder".into()), None);
    let e = gradlab::data::load(&gradlab::data::DataSpec { set: "text-folder".into(), ..Default::default() }, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`data.path`") && e.contains("train/"), "{e}");
    let e = check(&|p| {
        p.data.set = "text-folder".into();
        p.data.path = Some(std::env::temp_dir());
    })
    .unwrap();
    assert!(e.contains("`data.path`") && e.contains("train/"), "{e}");
    let e = check(&|p| {
        p.data.set = "text-file".into();
        p.data.path = Some(std::env::temp_dir());
    })
    .unwrap();
    assert!(e.contains("is not a file"), "{e}");
    let e = check(&|p| {
        p.data.set = "word-languages".into();
        p.data.languages = vec!["english".into(), "klingon".into()];
    })
    .unwrap();
    assert!(e.contains("`data.languages`") && e.contains("klingon"), "{e}");
    let e = check(&|p| {
        p.data.set = "fortunes-text".into();
        p.data.max_len = 0;
    })
    .unwrap();
    assert!(e.contains("`data.max_len`"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    imdb_fixture(dir.path(), 3);
    assert_eq!(
        check(&|p| {
            p.data.set = "text-folder".into();
            p.data.path = Some(dir.path().to_path_buf());
        }),
        None
    );
    // a preset without text keys writes none of them
    assert!(!Preset::default().to_toml().contains("max_len"));
}

#[test]
fn the_memory_estimate_covers_a_text_folder() {
    let dir = tempfile::tempdir().unwrap();
    imdb_fixture(dir.path(), 10);
    let mut p = Preset::builtin("iris_mlp").unwrap();
    p.data = folder_spec(dir.path());
    let size = gradlab::budget::data_size(&p).expect("a text folder's size is known from its files");
    assert_eq!((size.samples, size.test, size.classes, size.input_shape.clone()), (20.0, 4.0, 2, vec![12]));
    assert!(gradlab::budget::estimate(&p).unwrap().is_some());
}

fn text_file_spec(path: &Path, max_len: usize) -> DataSpec {
    DataSpec {
        set: "text-file".into(),
        path: Some(path.to_path_buf()),
        max_len,
        validation_fraction: 0.25,
        ..DataSpec::default()
    }
}

#[test]
fn a_language_model_splits_its_text_by_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("story.txt");
    // 300 characters of a-e, then 100 with a 'z' that only the held-out part has
    let head: String = (0..300).map(|i| char::from(b'a' + (i * 7 % 5) as u8)).collect();
    let tail: String = (0..100).map(|i| if i % 10 == 0 { 'z' } else { char::from(b'a' + (i % 5) as u8) }).collect();
    std::fs::write(&path, format!("{head}{tail}")).unwrap();
    let ds = data::load(&text_file_spec(&path, 9), 3).unwrap();
    assert_eq!(ds.kind, SetKind::TextStream);
    assert_eq!(ds.input_shape, [9]);
    assert_eq!(ds.train.feature_len(), 10, "windows of max_len + 1 ids");
    let info = ds.text.as_ref().unwrap();
    assert_eq!(info.tokens.len(), 2 + 5, "the vocabulary is the training part's characters");
    assert_eq!(ds.class_names, info.tokens, "a language model's classes are its tokens");
    // the training windows tile the first 300 characters, stride 9, the last id of one the first
    // of the next; the validation windows tile the last 100 (the 'z' unknown), none crossing
    assert_eq!((ds.train.len(), ds.validation.len()), (33, 11));
    let train: Vec<String> = rows(&ds.train, info);
    for (i, w) in train.iter().enumerate() {
        assert_eq!(w, &head[i * 9..i * 9 + 10]);
    }
    let val = rows(&ds.validation, info);
    let tail_unk = tail.replace('z', "<unk>");
    assert_eq!(val[0], tail_unk[..14]);
    assert!(val.iter().all(|w| !w.contains('z')));
    // the order of windows does not depend on the seed; only the epoch order does
    let other = data::load(&text_file_spec(&path, 9), 4).unwrap();
    assert_eq!(other.train.features, ds.train.features);
    // too short a text for its windows is refused naming the file and the key
    let e = err_of(data::load(&text_file_spec(&path, 200), 3));
    assert!(e.contains("story.txt") && e.contains("data.max_len"), "{e}");
    std::fs::write(&path, b"\xff\xfe text").unwrap();
    let e = err_of(data::load(&text_file_spec(&path, 9), 3));
    assert!(e.contains("story.txt") && e.contains("not UTF-8"), "{e}");
}

use common::installed;

fn timed(spec: &DataSpec) -> Dataset {
    let start = Instant::now();
    let ds = data::load(spec, 1).unwrap();
    let counts = (0..ds.num_classes() as u32)
        .map(|c| ds.train.labels.iter().chain(&ds.validation.labels).filter(|&&l| l == c).count())
        .collect::<Vec<_>>();
    eprintln!(
        "{}: {} classes, {} train + {} validation samples, loaded in {:.2} s; per class {:?}",
        spec.set,
        ds.num_classes(),
        ds.train.len(),
        ds.validation.len(),
        start.elapsed().as_secs_f64(),
        if counts.len() <= 50 { counts } else { vec![] }
    );
    // the memory estimate, made from the files on disk, does not undercount
    let mut p = Preset::builtin("iris_mlp").unwrap();
    p.data = spec.clone();
    let size = gradlab::budget::data_size(&p).expect("a text set's size is known from its files");
    assert!(size.samples >= (ds.train.len() + ds.validation.len()) as f64, "{size:?}");
    assert!(size.classes >= ds.num_classes() && size.input_shape == ds.input_shape, "{size:?}");
    ds
}

#[test]
fn word_languages_load_balanced_from_debian_word_lists() {
    if !installed("wamerican", "/usr/share/dict/american-english") || !installed("wfrench", "/usr/share/dict/french") {
        return;
    }
    let spec = DataSpec { set: "word-languages".into(), max_len: 20, ..DataSpec::default() };
    let ds = timed(&spec);
    assert!(ds.num_classes() >= 2 && ds.class_names.contains(&"english".to_string()));
    let info = ds.text.as_ref().unwrap();
    // no class swamps the rest: every language keeps nearly all of its words
    for c in 0..ds.num_classes() as u32 {
        let n = ds.train.labels.iter().chain(&ds.validation.labels).filter(|&&l| l == c).count();
        assert!((8_000..=10_000).contains(&n), "{}: {n} words", ds.class_names[c as usize]);
    }
    // lower-case letters only, and no word under two labels
    let mut seen = std::collections::HashMap::new();
    for split in [&ds.train, &ds.validation] {
        for i in 0..split.len() {
            let word = info.decode(&TextInfo::ids_of(split.sample(i)));
            assert!(word.chars().all(|c| c.is_lowercase()) || word.contains("<unk>"), "{word}");
            if let Some(other) = seen.insert(word.clone(), split.labels[i]) {
                assert_eq!(other, split.labels[i], "{word} has two labels");
            }
        }
    }
    let two = DataSpec { languages: vec!["french".into(), "english".into()], ..spec };
    let ds = data::load(&two, 1).unwrap();
    assert_eq!(ds.class_names, ["french", "english"]);
}

#[test]
fn fortune_categories_and_the_fortunes_text_load() {
    if !installed("fortunes", "/usr/share/games/fortunes/computers") {
        return;
    }
    let ds = timed(&DataSpec { set: "fortune-categories".into(), ..DataSpec::default() });
    assert!(ds.num_classes() >= 40, "{:?}", ds.class_names);
    assert!(ds.class_names.iter().all(|c| !c.ends_with(".dat") && !c.ends_with(".u8") && c != "off"));
    assert!(ds.train.len() + ds.validation.len() > 10_000);
    let info = ds.text.as_ref().unwrap();
    assert_eq!(info.tokens.len(), 10_002);
    assert!(info.tokens[2..20].contains(&"the".to_string()), "{:?}", &info.tokens[..20]);

    let spec = DataSpec { set: "fortunes-text".into(), max_len: 100, ..DataSpec::default() };
    let lm = timed(&spec);
    let info = lm.text.as_ref().unwrap();
    assert!((60..300).contains(&info.tokens.len()), "{} characters", info.tokens.len());
    assert!(lm.train.len() > 20_000 && lm.validation.len() > 2_000);
    let first = info.decode(&TextInfo::ids_of(lm.train.sample(0)));
    assert_eq!(first.chars().count(), 101);
}

#[test]
fn a_missing_package_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let spec =
        DataSpec { set: "fortune-categories".into(), path: Some(dir.path().join("none")), ..DataSpec::default() };
    let e = err_of(data::load(&spec, 1));
    assert!(e.contains("apt-get install fortunes"), "{e}");
    if !Path::new("/usr/share/dict/american-english").exists() {
        return;
    }
    if !Path::new("/usr/share/dict/polish").exists() {
        let spec = DataSpec {
            set: "word-languages".into(),
            languages: vec!["english".into(), "polish".into()],
            ..DataSpec::default()
        };
        let e = err_of(data::load(&spec, 1));
        assert!(e.contains("apt-get install wpolish"), "{e}");
    }
}

/// A measurement, not a check: an IMDB-sized folder (25,000 + 25,000 reviews of ~230 words, 65 MB)
/// written here and loaded. Run with
/// `cargo test --test text_data -- --ignored --nocapture imdb_sized`.
#[test]
#[ignore = "a timing; writes 50,000 files"]
fn imdb_sized_folder_load_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = gradlab::rng::Rng::new(5);
    // Zipf-like word draws from 30,000 made-up words
    let word = |rng: &mut gradlab::rng::Rng| format!("w{}", (30_000f32.powf(rng.uniform()) as usize));
    for (split, per_class) in [("train", 12_500), ("test", 12_500)] {
        for class in ["neg", "pos"] {
            let folder = dir.path().join(split).join(class);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..per_class {
                let text: Vec<String> = (0..230).map(|_| word(&mut rng)).collect();
                std::fs::write(folder.join(format!("{i}_7.txt")), format!("{}.<br /><br />The end!", text.join(" ")))
                    .unwrap();
            }
        }
    }
    let spec =
        DataSpec { set: "text-folder".into(), path: Some(dir.path().into()), max_len: 200, ..DataSpec::default() };
    let start = Instant::now();
    let ds = data::load(&spec, 1).unwrap();
    eprintln!(
        "IMDB-sized folder: {} train + {} validation + {} test reviews, {} tokens, loaded in {:.2} s",
        ds.train.len(),
        ds.validation.len(),
        ds.test.as_ref().map_or(0, data::Split::len),
        ds.text.as_ref().unwrap().tokens.len(),
        start.elapsed().as_secs_f64()
    );
}
