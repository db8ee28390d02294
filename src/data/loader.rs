//! Loading a set: each source's reader gives its raw samples (`Raw`), then they are split with
//! the seed (unless the source split itself), checked against the classes and normalised into
//! a [`Dataset`].

use super::*;

/// Raw samples before splitting and normalisation.
pub(super) struct Raw {
    pub(super) class_names: Vec<String>,
    pub(super) input_shape: Vec<usize>,
    pub(super) features: Split,
    pub(super) test: Option<Split>,
    /// Multiplier that brings raw values to [0, 1] for images; 1 for tables.
    pub(super) scale: f32,
    pub(super) source: String,
    /// Sources that split themselves (text: the vocabulary must come from the training part, and
    /// language models split by position) give `features` as the training split and this.
    pub(super) presplit: Option<Presplit>,
    pub(super) text: Option<TextInfo>,
}

/// The validation split and its fingerprint, made by the source itself.
pub(super) struct Presplit {
    pub(super) validation: Split,
    pub(super) split: SplitInfo,
}

/// Held-out and training indices of `n` samples, drawn with the seed; the training ones cut to
/// `data.limit`.
pub(super) fn split_indices(n: usize, spec: &DataSpec, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let order = Rng::derive(seed, "split", 0).permutation(n);
    let n_val = ((n as f64 * spec.validation_fraction).round() as usize).clamp(1, n - 1);
    let (val_idx, train_idx) = order.split_at(n_val);
    let mut train_idx = train_idx.to_vec();
    if spec.limit > 0 {
        train_idx.truncate(spec.limit);
    }
    (val_idx.to_vec(), train_idx)
}

pub(crate) const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

pub(super) fn digit_names() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

fn load_raw(spec: &DataSpec, seed: u64) -> Result<Raw> {
    let unknown = || {
        Error::config(
            "preset",
            "data.set",
            format!(
                "unknown data set `{}`; expected one of {}",
                spec.set,
                CATALOGUE.iter().map(|s| s.id).collect::<Vec<_>>().join(", ")
            ),
        )
    };
    let info = set_info(&spec.set).ok_or_else(unknown)?;
    let points = |p: synthetic::Points, classes: usize| Raw {
        class_names: (0..classes).map(|c| format!("class {c}")).collect(),
        input_shape: vec![2],
        features: Split::new(p.xy, p.labels),
        test: None,
        scale: 1.0,
        source: format!("synthetic {} (seed {seed}, noise {})", spec.set, spec.noise),
        presplit: None,
        text: None,
    };
    if info.kind == SetKind::Points2d && spec.samples > synthetic::MAX_SAMPLES {
        return Err(Error::config(
            "preset",
            "data.samples",
            format!("{} is too many for a synthetic set; use at most {}", spec.samples, synthetic::MAX_SAMPLES),
        ));
    }
    let mut rng = Rng::derive(seed, "synthetic-data", 0);
    let (n, noise) = (spec.samples, spec.noise as f32);
    Ok(match info.id {
        "spiral" => points(synthetic::spiral(n, spec.classes, noise, &mut rng), spec.classes),
        "blobs" => points(synthetic::blobs(n, spec.classes, noise, &mut rng), spec.classes),
        "moons" => points(synthetic::moons(n, noise, &mut rng), 2),
        "circles" => points(synthetic::circles(n, noise, &mut rng), 2),
        "xor" => points(synthetic::xor(n, noise, &mut rng), 2),
        "mnist-5k" => embedded::mnist_5k()?,
        "digits" => embedded::digits()?,
        "iris" | "wine" | "breast-cancer" => embedded::table(info.id)?,
        "fashion-mnist" => {
            let dir = spec.path.clone().unwrap_or_else(|| PathBuf::from(idx::FASHION_MNIST_DIR));
            if !dir.exists() {
                return Err(Error::format(
                    &dir,
                    "Fashion-MNIST is not installed here; install it with `apt-get install dataset-fashion-mnist` or pick its folder",
                ));
            }
            let mut raw = idx_folder(&dir, true)?;
            raw.class_names = FASHION_CLASSES.iter().map(ToString::to_string).collect();
            raw
        }
        "idx" => {
            let dir = spec.path.clone().ok_or_else(|| {
                Error::config("preset", "data.path", "the `idx` set needs the folder that holds the IDX files")
            })?;
            idx_folder(&dir, false)?
        }
        "text-folder" => {
            text::folder::load(&required_path(spec, "the folder that holds train/ and test/")?, spec, seed)?
        }
        "text-file" => text::stream::text_file(&required_path(spec, "the UTF-8 text file to model")?, spec)?,
        "cifar10" => cifar::load(spec, false)?,
        "cifar100" => cifar::load(spec, true)?,
        "image-folder" => image_folder::load(spec)?,
        "csv" => table::load(&required_path(spec, "the CSV file")?, spec)?,
        "fortune-categories" => text::fortunes::categories(spec, seed)?,
        "fortunes-text" => text::fortunes::text(spec)?,
        "word-languages" => text::wordlists::load(spec, seed)?,
        _ => return Err(unknown()),
    })
}

pub(super) fn required_path(spec: &DataSpec, what: &str) -> Result<PathBuf> {
    spec.path
        .clone()
        .ok_or_else(|| Error::config("preset", "data.path", format!("the `{}` set needs {what}", spec.set)))
}

fn idx_split(images: &Path, labels: &Path) -> Result<(Split, usize, usize)> {
    let (imgs, lbls) = idx::read_pair(images, labels)?;
    Ok((
        Split::new(imgs.pixels.iter().map(|&p| f32::from(p)).collect(), lbls.iter().map(|&l| u32::from(l)).collect()),
        imgs.rows,
        imgs.cols,
    ))
}

/// The first label of `split` that is not below `classes`, as an error naming `file`.
fn check_labels(split: &Split, classes: usize, file: &Path, why: &str) -> Result<()> {
    match split.labels.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
        Some((i, l)) => {
            Err(Error::format(file, format!("label {l} (sample {i}) is outside the {classes} classes {why}")))
        }
        None => Ok(()),
    }
}

/// `fashion`: the folder is Fashion-MNIST (the `fashion-mnist` set), whose labels are 0..10.
/// Any other IDX folder takes its classes from its labels; one merely named "fashion" keeps
/// Fashion-MNIST's class names when its labels fit them.
fn idx_folder(dir: &Path, fashion: bool) -> Result<Raw> {
    let files = idx::find_in_folder(dir)?;
    let (train, rows, cols) = idx_split(&files.train_images, &files.train_labels)?;
    let classes = train.labels.iter().copied().max().unwrap_or(0) as usize + 1;
    let is_fashion = fashion || (dir.to_string_lossy().to_lowercase().contains("fashion") && classes <= 10);
    if fashion {
        check_labels(&train, FASHION_CLASSES.len(), &files.train_labels, "of Fashion-MNIST")?;
    }
    let test = match &files.test {
        Some((i, l)) => {
            let (test, tr, tc) = idx_split(i, l)?;
            if (tr, tc) != (rows, cols) {
                return Err(Error::format(
                    i,
                    format!("images are {tr}x{tc} but the training images are {rows}x{cols}"),
                ));
            }
            // a class the model never saw would index past its outputs
            check_labels(&test, classes.max(10), l, "of the training set")?;
            Some(test)
        }
        None => None,
    };
    let class_names = if is_fashion {
        FASHION_CLASSES.iter().map(ToString::to_string).collect()
    } else {
        (0..classes.max(10)).map(|d| d.to_string()).collect()
    };
    Ok(Raw {
        class_names,
        input_shape: vec![1, rows, cols],
        features: train,
        test,
        scale: 1.0 / 255.0,
        source: dir.display().to_string(),
        presplit: None,
        text: None,
    })
}

/// Loads, splits (seeded) and normalises a data set.
pub fn load(spec: &DataSpec, seed: u64) -> Result<Dataset> {
    load_with(spec, seed, None)
}

/// Like [`load`], but applies a given normalisation (an exported model's) instead of fitting one.
pub fn load_with(spec: &DataSpec, seed: u64, normalization: Option<&Normalization>) -> Result<Dataset> {
    let raw = load_raw(spec, seed)?;
    let info = set_info(&spec.set).expect("load_raw accepted the id");
    let n = raw.features.len() + raw.presplit.as_ref().map_or(0, |p| p.validation.len());
    if n < 2 {
        return Err(Error::format(&raw.source, "the data set has fewer than 2 samples"));
    }
    let num_classes = raw.class_names.len() as u32;
    let labels = raw.features.labels.iter().chain(raw.presplit.iter().flat_map(|p| &p.validation.labels));
    if let Some(bad) = labels.into_iter().find(|&&l| l >= num_classes) {
        return Err(Error::format(&raw.source, format!("label {bad} is outside the {num_classes} classes")));
    }
    let (mut train, mut validation, split) = match raw.presplit {
        Some(p) => (raw.features, p.validation, p.split),
        None => {
            let (val_idx, train_idx) = split_indices(n, spec, seed);
            let split = SplitInfo::of(&raw.features, &val_idx, train_idx.len(), raw.test.as_ref())?;
            (raw.features.select(&train_idx), raw.features.select(&val_idx), split)
        }
    };
    let mut test = raw.test;
    let normalization = match (normalization, spec.normalization) {
        // token ids are indices, not measurements: scaling them would break the lookup
        _ if info.kind.is_text() => Normalization::identity(1.0),
        (Some(given), _) => given.clone(),
        (None, NormalizationKind::Standardize) => Normalization::fit(&train, raw.scale, info.kind == SetKind::Image)?,
        (None, NormalizationKind::Scale) => Normalization::identity(raw.scale),
        (None, NormalizationKind::None) => Normalization::identity(1.0),
    };
    for split in [Some(&mut train), Some(&mut validation), test.as_mut()].into_iter().flatten() {
        split.normalize(&normalization);
    }
    Ok(Dataset {
        id: spec.set.clone(),
        title: info.title.to_string(),
        class_names: raw.class_names,
        input_shape: raw.input_shape,
        kind: info.kind,
        train,
        validation,
        test,
        normalization,
        source: raw.source,
        split,
        text: raw.text,
    })
}
