//! Data a user brings: CIFAR-10/100 binary folders, image folders (PNG, JPEG, WebP) and CSV
//! tables, written here in their real formats, loaded through `data::load`; the hostile variants
//! get errors naming the file and the record, line or column; a streamed split gives the same
//! batches, normalisation and split fingerprint as the same set in memory.

use std::path::Path;

use candle_core::Device;
use gradlab::config::Preset;
use gradlab::data::{self, cifar, table, Batch, DataSpec, SetKind};

fn err_of<T>(r: gradlab::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn spec(set: &str, path: &Path) -> DataSpec {
    DataSpec { set: set.into(), path: Some(path.into()), validation_fraction: 0.2, ..DataSpec::default() }
}

/// The disk cache inside the test's temp dir, so it goes with it. Only one test streams; the
/// cache key holds the files' paths, so loads never collide anyway.
fn cache_in(dir: &Path) {
    std::env::set_var("GRADLAB_CACHE_DIR", dir.join("cache"));
}

#[test]
fn cifar10_reads_shape_labels_names_and_test_split() {
    let dir = tempfile::tempdir().unwrap();
    cifar::write_fixture(dir.path(), 7, 1).unwrap();
    let ds = data::load(&spec("cifar10", dir.path()), 3).unwrap();
    assert_eq!(ds.input_shape, vec![3, 32, 32]);
    assert_eq!(ds.kind, SetKind::Image);
    assert_eq!(ds.class_names[0], "airplane");
    assert_eq!(ds.class_names.len(), 10);
    assert_eq!(ds.train.len() + ds.validation.len(), 35);
    assert_eq!(ds.test.as_ref().unwrap().len(), 7);
    // the first record of data_batch_1: its label byte and its first red pixel, scaled by 1/255
    let bytes = std::fs::read(dir.path().join("data_batch_1.bin")).unwrap();
    let raw = data::load(&DataSpec { normalization: data::NormalizationKind::Scale, ..spec("cifar10", dir.path()) }, 3)
        .unwrap();
    let all: Vec<(u32, f32, f32)> = [&raw.train, &raw.validation]
        .iter()
        .flat_map(|s| (0..s.len()).map(move |i| (s.labels[i], s.sample(i)[0], s.sample(i)[1024])))
        .collect();
    let want = (u32::from(bytes[0]), f32::from(bytes[1]) / 255.0, f32::from(bytes[1 + 1024]) / 255.0);
    assert!(all.contains(&want), "record 0 {want:?} not among the samples");
}

#[test]
fn cifar100_fine_and_coarse_labels() {
    let dir = tempfile::tempdir().unwrap();
    cifar::write_fixture_100(dir.path(), 6, 2).unwrap();
    let bytes = std::fs::read(dir.path().join("test.bin")).unwrap();
    let rec = 2 + 3072;
    let fine = data::load(&spec("cifar100", dir.path()), 1).unwrap();
    assert_eq!((fine.class_names.len(), fine.class_names[0].as_str()), (100, "apple"));
    let test = fine.test.unwrap();
    assert_eq!(test.labels, (0..6).map(|r| u32::from(bytes[r * rec + 1])).collect::<Vec<_>>());
    let coarse = data::load(&DataSpec { labels: cifar::LabelKind::Coarse, ..spec("cifar100", dir.path()) }, 1).unwrap();
    assert_eq!(coarse.class_names.len(), 20);
    assert_eq!(coarse.test.unwrap().labels, (0..6).map(|r| u32::from(bytes[r * rec])).collect::<Vec<_>>());
    // names from the set's own file win over the compiled-in ones
    let names: Vec<String> = (0..20).map(|i| format!("super{i}")).collect();
    std::fs::write(dir.path().join("coarse_label_names.txt"), names.join("\n")).unwrap();
    let named = data::load(&DataSpec { labels: cifar::LabelKind::Coarse, ..spec("cifar100", dir.path()) }, 1).unwrap();
    assert_eq!(named.class_names, names);
}

#[test]
fn hostile_cifar_files_are_refused_naming_file_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    cifar::write_fixture(p, 3, 4).unwrap();
    let batch2 = p.join("data_batch_2.bin");
    let good = std::fs::read(&batch2).unwrap();

    std::fs::write(&batch2, &good[..2 * 3073 + 2000]).unwrap();
    let e = err_of(data::load(&spec("cifar10", p), 1));
    assert!(e.contains("data_batch_2.bin") && e.contains("record 2 is cut short: 2000 of 3073 bytes"), "{e}");

    std::fs::write(&batch2, b"").unwrap();
    let e = err_of(data::load(&spec("cifar10", p), 1));
    assert!(e.contains("data_batch_2.bin") && e.contains("empty"), "{e}");

    let mut bad = good.clone();
    bad[3073] = 10;
    std::fs::write(&batch2, &bad).unwrap();
    let e = err_of(data::load(&spec("cifar10", p), 1));
    assert!(e.contains("data_batch_2.bin") && e.contains("record 1: label 10 is outside the 10 classes"), "{e}");

    std::fs::remove_file(&batch2).unwrap();
    std::fs::remove_file(p.join("test_batch.bin")).unwrap();
    let e = err_of(data::load(&spec("cifar10", p), 1));
    assert!(e.contains("missing data_batch_2.bin, test_batch.bin") && e.contains("data_batch_1.bin"), "{e}");

    let e = err_of(data::load(&DataSpec { path: None, ..spec("cifar10", p) }, 1));
    assert!(e.contains("data.path"), "{e}");
}

fn png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([rgb[0], rgb[1].wrapping_add((x * 3) as u8), rgb[2] ^ y as u8])
    });
    img.save(path).unwrap();
}

/// `root/<class>/<i>.<ext>` in PNG, JPEG and WebP, of varied sizes.
fn image_folder(root: &Path, per_class: usize) {
    for (c, class) in ["cat", "dog", "emu"].iter().enumerate() {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let colour = [(c * 100) as u8, (i * 20) as u8, 50];
            let ext = ["png", "jpg", "webp"][i % 3];
            let path = dir.join(format!("{i}.{ext}"));
            if ext == "png" {
                png(&path, 10 + i as u32, 12, colour);
            } else {
                let img = image::RgbImage::from_pixel(16, 16, image::Rgb(colour));
                img.save(&path).unwrap();
            }
        }
    }
    std::fs::write(root.join(".DS_Store"), b"\0\0").unwrap();
}

#[test]
fn image_folder_reads_classes_sizes_and_colour() {
    let dir = tempfile::tempdir().unwrap();
    image_folder(dir.path(), 6);
    let mut s = spec("image-folder", dir.path());
    s.image_size = Some(data::image_folder::ImageSize::HeightWidth([8, 6]));
    let ds = data::load(&s, 1).unwrap();
    assert_eq!(ds.input_shape, vec![3, 8, 6]);
    assert_eq!(ds.class_names, ["cat", "dog", "emu"]);
    assert_eq!(ds.train.len() + ds.validation.len(), 18);
    s.color = data::image_folder::ColorMode::Grey;
    s.normalization = data::NormalizationKind::Scale;
    let grey = data::load(&s, 1).unwrap();
    assert_eq!(grey.input_shape, vec![1, 8, 6]);
    // a uniform emu JPEG (class 2, image 1: colour [200, 20, 50]) stays near its luma
    let decoded = data::image_folder::decode(&dir.path().join("emu/1.jpg"), [1, 8, 6]).unwrap();
    let luma = 0.2126 * 200.0 + 0.7152 * 20.0 + 0.0722 * 50.0;
    assert!(decoded.iter().all(|&v| (f32::from(v) - luma).abs() < 6.0), "{decoded:?} vs {luma}");
    let rgb = data::image_folder::decode(&dir.path().join("emu/1.jpg"), [3, 4, 4]).unwrap();
    assert!((f32::from(rgb[0]) - 200.0).abs() < 6.0 && (f32::from(rgb[16]) - 20.0).abs() < 6.0, "{rgb:?}");
}

#[test]
fn image_folder_refuses_a_file_that_is_no_image() {
    let dir = tempfile::tempdir().unwrap();
    image_folder(dir.path(), 2);
    std::fs::write(dir.path().join("dog/notes.txt"), "not a picture").unwrap();
    let e = err_of(data::load(&spec("image-folder", dir.path()), 1));
    assert!(e.contains("notes.txt") && e.contains("not a PNG, JPEG or WebP"), "{e}");
    std::fs::write(dir.path().join("dog/notes.txt"), b"\x89PNG\r\n\x1a\n broken").unwrap();
    let e = err_of(data::load(&spec("image-folder", dir.path()), 1));
    assert!(e.contains("notes.txt") && e.contains("not a readable image"), "{e}");
    std::fs::remove_file(dir.path().join("dog/notes.txt")).unwrap();
    for f in std::fs::read_dir(dir.path().join("emu")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let e = err_of(data::load(&spec("image-folder", dir.path()), 1));
    assert!(e.contains("emu") && e.contains("holds no images"), "{e}");
}

#[test]
fn streamed_split_gives_the_same_batches_split_and_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("cifar");
    cifar::write_fixture(&data_dir, 9, 5).unwrap();
    cache_in(dir.path());
    let memory = data::load(&DataSpec { stream: Some(false), ..spec("cifar10", &data_dir) }, 11).unwrap();
    for _ in 0..2 {
        // the second load reuses the cache the first one wrote
        let streamed = data::load(&DataSpec { stream: Some(true), ..spec("cifar10", &data_dir) }, 11).unwrap();
        assert!(streamed.train.disk().is_some() && streamed.train.features.is_empty());
        assert_eq!(streamed.split, memory.split);
        assert_eq!(streamed.normalization, memory.normalization);
        let idx = [4usize, 0, 17, 3];
        let a = Batch::gather(&memory.train, &idx, &memory.input_shape, &Device::Cpu).unwrap();
        let b = Batch::gather(&streamed.train, &idx, &memory.input_shape, &Device::Cpu).unwrap();
        let (a, b): (Vec<f32>, Vec<f32>) =
            (a.inputs.flatten_all().unwrap().to_vec1().unwrap(), b.inputs.flatten_all().unwrap().to_vec1().unwrap());
        assert_eq!(a, b);
        let t = streamed.test.as_ref().unwrap();
        assert_eq!(t.sample_vec(2).unwrap(), memory.test.as_ref().unwrap().sample(2));
        assert_eq!(streamed.validation.sample_vec(1).unwrap(), memory.validation.sample(1));
    }
}

#[test]
fn csv_table_header_label_column_and_classes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flowers.csv");
    std::fs::write(
        &path,
        "species,length,\"width, cm\"\nsetosa,1.5,0.2\nvirginica,6.0,2.5\nsetosa,1.4,0.3\nversicolor,4.5,1.5\n",
    )
    .unwrap();
    let mut s = spec("csv", &path);
    s.label_column = Some(table::LabelColumn::Name("species".into()));
    let ds = data::load(&s, 1).unwrap();
    assert_eq!(ds.class_names, ["setosa", "versicolor", "virginica"]);
    assert_eq!(ds.input_shape, vec![2]);
    assert_eq!(ds.kind, SetKind::Tabular);
    s.label_column = Some(table::LabelColumn::Position(0));
    assert_eq!(data::load(&s, 1).unwrap().class_names.len(), 3);
    s.label_column = Some(table::LabelColumn::Name("colour".into()));
    let e = err_of(data::load(&s, 1));
    assert!(
        e.contains("data.label_column") && e.contains("no column `colour`") && e.contains("species, length, width, cm"),
        "{e}"
    );

    // no header, numeric labels (sorted as numbers), label last by default
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, "0.5,1,10\n0.7,2,2\n0.1,3,10\n0.9,4,2\n0.3,5,9\n").unwrap();
    let ds = data::load(&spec("csv", &plain), 1).unwrap();
    assert_eq!(ds.class_names, ["2", "9", "10"]);
    assert_eq!(ds.train.len() + ds.validation.len(), 5);
    let e = err_of(data::load(
        &DataSpec { label_column: Some(table::LabelColumn::Name("x".into())), ..spec("csv", &plain) },
        1,
    ));
    assert!(e.contains("no header row"), "{e}");
}

#[test]
fn csv_missing_values_refused_or_imputed_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gaps.csv");
    std::fs::write(&path, "a,b,label\n1,2,x\n3,NA,y\n5,,x\n7,8,y\n").unwrap();
    let e = err_of(data::load(&spec("csv", &path), 1));
    assert!(
        e.contains("gaps.csv")
            && e.contains("line 3, column 2 `b`: missing value (`NA`)")
            && e.contains("data.missing"),
        "{e}"
    );
    let all = |missing| {
        let mut s = DataSpec { missing, normalization: data::NormalizationKind::None, ..spec("csv", &path) };
        s.validation_fraction = 0.25;
        let ds = data::load(&s, 1).unwrap();
        let mut rows: Vec<Vec<f32>> = [&ds.train, &ds.validation]
            .iter()
            .flat_map(|sp| (0..sp.len()).map(|i| sp.sample(i).to_vec()).collect::<Vec<_>>())
            .collect();
        rows.sort_by(|a, b| a[0].total_cmp(&b[0]));
        rows
    };
    assert_eq!(all(table::Missing::Zero), vec![vec![1.0, 2.0], vec![3.0, 0.0], vec![5.0, 0.0], vec![7.0, 8.0]]);
    assert_eq!(all(table::Missing::Mean), vec![vec![1.0, 2.0], vec![3.0, 5.0], vec![5.0, 5.0], vec![7.0, 8.0]]);
    // two rows left: one for training, one held out
    assert_eq!(all(table::Missing::DropRow), vec![vec![1.0, 2.0], vec![7.0, 8.0]]);
    std::fs::write(&path, "a,b,label\n1,2,x\n3,4,?\n").unwrap();
    let e = err_of(data::load(&DataSpec { missing: table::Missing::Mean, ..spec("csv", &path) }, 1));
    assert!(e.contains("line 3, column 3 `label`: missing value") && e.contains("drop_row"), "{e}");
    std::fs::write(&path, "a,b,label\n1,2,x\n3,4\n").unwrap();
    let e = err_of(data::load(&spec("csv", &path), 1));
    assert!(e.contains("line 3: expected 3 columns like the lines before, found 2"), "{e}");
    std::fs::write(&path, "a,b,label\n1,2,x\n3,tall,y\n").unwrap();
    let e = err_of(data::load(&spec("csv", &path), 1));
    assert!(e.contains("line 3, column 2 `b`: `tall` is not a finite number"), "{e}");
}

#[test]
fn validate_and_budget_know_the_new_sets() {
    let dir = tempfile::tempdir().unwrap();
    cifar::write_fixture(dir.path(), 4, 1).unwrap();
    let mut p = Preset { data: spec("cifar10", dir.path()), ..Preset::default() };
    let hint = gradlab::config::input_shape_hint(&p).unwrap();
    assert_eq!(hint, (vec![3, 32, 32], 10));
    let size = gradlab::budget::data_size(&p).unwrap();
    assert_eq!((size.samples, size.test, size.streamed), (20.0, 4.0, false));
    p.data.stream = Some(true);
    assert!(gradlab::budget::data_size(&p).unwrap().streamed);
    let folder = dir.path().join("images");
    image_folder(&folder, 3);
    p.data = DataSpec { image_size: Some(data::image_folder::ImageSize::Side(12)), ..spec("image-folder", &folder) };
    assert_eq!(gradlab::config::input_shape_hint(&p).unwrap(), (vec![3, 12, 12], 3));
    assert_eq!(gradlab::budget::data_size(&p).unwrap().samples, 9.0);
    p.data.image_size = Some(data::image_folder::ImageSize::Side(5000));
    let e = p.validate("test").err().unwrap().to_string();
    assert!(e.contains("data.image_size"), "{e}");
}

/// The cifar10_cnn preset as shipped (only the folder, the epochs and the sample count changed)
/// trains on a CIFAR-10 folder in the real binary format and learns its classes.
#[test]
fn cifar10_cnn_preset_trains_on_a_cifar_folder() {
    let dir = tempfile::tempdir().unwrap();
    cifar::write_fixture(dir.path(), 100, 7).unwrap();
    let mut preset = Preset::builtin("cifar10_cnn").unwrap();
    preset.data.path = Some(dir.path().to_path_buf());
    preset.train.epochs = 2;
    preset.validate("cifar10_cnn").unwrap();
    let data = data::load(&preset.data, preset.seed).unwrap();
    assert_eq!((data.input_shape.clone(), data.num_classes(), data.train.len()), (vec![3, 32, 32], 10, 450));
    let mut session = gradlab::train::Session::new(preset, data, Device::Cpu).unwrap();
    let mut last = None;
    while !session.finished() {
        while !session.epoch_done() {
            session.train_batch().unwrap();
        }
        last = Some(session.finish_epoch(0.0).unwrap());
    }
    let accuracy = last.unwrap().validation.accuracy;
    // ten classes: chance is 10%
    assert!(accuracy > 0.5, "validation accuracy {accuracy}");
}
