use super::*;

/// A `[c, h, w]` image whose every value differs and none is 0 (black).
fn ramp(c: usize, h: usize, w: usize) -> Vec<f32> {
    (0..c * h * w).map(|i| 1.0 + i as f32).collect()
}

fn identity_norm() -> Normalization {
    Normalization { scale: 1.0, mean: vec![0.0], std: vec![1.0] }
}

fn augmenter(spec: AugmentSpec, shape: &[usize], norm: &Normalization) -> Augmenter {
    Augmenter::new(&spec, SetKind::Image, "test", shape, norm, 7).unwrap().expect("a transform is on")
}

#[test]
fn flipping_twice_gives_the_image_back_and_once_mirrors_it() {
    let (c, h, w) = (2, 5, 4);
    let image = ramp(c, h, w);
    let mut v = image.clone();
    flip_horizontal(&mut v, c, h, w);
    assert_eq!(v[0], image[w - 1], "the first pixel of a row comes from its last");
    assert_ne!(v, image);
    flip_horizontal(&mut v, c, h, w);
    assert_eq!(v, image);
    flip_vertical(&mut v, c, h, w);
    assert_eq!(v[..w], image[(h - 1) * w..h * w], "the top row comes from the bottom one");
    assert_eq!(v[h * w..h * w + w], image[h * w + (h - 1) * w..2 * h * w], "in every channel");
    flip_vertical(&mut v, c, h, w);
    assert_eq!(v, image);
}

#[test]
fn shift_moves_a_known_pixel_and_fills_black() {
    let (h, w) = (6, 7);
    let mut image = vec![0.0; h * w];
    image[2 * w + 3] = 5.0;
    let mut out = vec![9.0; h * w];
    shift(&image, &mut out, 1, h, w, 1, -2);
    assert_eq!(out[3 * w + 1], 5.0, "one row down, two columns left");
    assert_eq!(out.iter().filter(|&&v| v != 0.0).count(), 1, "everything else is black");
    let full = ramp(1, h, w);
    shift(&full, &mut out, 1, h, w, -2, 3);
    assert_eq!(out[3], full[2 * w], "row 2 moved to the top, 3 columns right");
    assert_eq!(out.iter().filter(|&&v| v == 0.0).count(), 2 * w + 3 * (h - 2), "uncovered rows and columns");
}

#[test]
fn cutout_blacks_out_exactly_its_square_in_every_channel() {
    let (c, h, w) = (3, 10, 9);
    let mut v = ramp(c, h, w);
    cutout(&mut v, c, h, w, 2, 4, 4);
    assert_eq!(v.iter().filter(|&&x| x == 0.0).count(), c * 16);
    assert_eq!(v[h * w + 2 * w + 4], 0.0);
    assert_ne!(v[2 * w + 3], 0.0);
    // through the augmenter, at random places, on normalised data: black is the normalised 0
    let norm = Normalization { scale: 1.0 / 255.0, mean: vec![0.2], std: vec![0.3] };
    let a = augmenter(AugmentSpec { cutout: 5, ..AugmentSpec::default() }, &[1, 12, 12], &norm);
    let black = (0.0 - 0.2) / 0.3;
    for position in 0..20 {
        let mut s = vec![1.5f32; 144];
        a.apply(&mut s, 0, position, 100, &mut [0.0; 144]);
        assert_eq!(s.iter().filter(|&&x| (x - black).abs() < 1e-6).count(), 25, "position {position}");
    }
}

#[test]
fn rotating_by_zero_is_the_identity_and_by_90_turns_counter_clockwise() {
    let (c, h, w) = (2, 5, 5);
    let image = ramp(c, h, w);
    let mut out = vec![0.0; c * h * w];
    rotate(&image, &mut out, c, h, w, 0.0);
    assert_eq!(out, image);
    let mut dot = vec![0.0; h * w];
    dot[4 * w + 2] = 1.0; // bottom middle
    let mut out = vec![0.0; h * w];
    rotate(&dot, &mut out, 1, h, w, 90.0);
    assert!((out[2 * w + 4] - 1.0).abs() < 1e-5, "the bottom turns to the right: {out:?}");
    assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
}

#[test]
fn the_same_seed_and_position_give_the_same_picture() {
    let spec = AugmentSpec {
        flip: true,
        rotate: 15.0,
        shift: 2,
        noise: 0.05,
        brightness: 0.3,
        contrast: 0.3,
        cutout: 3,
        ..AugmentSpec::default()
    };
    let norm = Normalization { scale: 1.0 / 255.0, mean: vec![0.13], std: vec![0.31] };
    let a = augmenter(spec.clone(), &[1, 8, 8], &norm);
    let b = augmenter(spec, &[1, 8, 8], &norm);
    let image: Vec<f32> = (0..128).map(|i| (i % 64) as f32 / 64.0).collect();
    let (mut x, mut y) = (image.clone(), image.clone());
    a.apply_batch(&mut x, 3, 10, 500).unwrap();
    b.apply_batch(&mut y, 3, 10, 500).unwrap();
    assert_eq!(x, y);
    assert_ne!(x, image);
    // one sample alone at its position equals the same sample within the batch
    let mut alone = image[64..].to_vec();
    a.apply(&mut alone, 3, 11, 500, &mut [0.0; 64]);
    assert_eq!(alone, x[64..]);
    // another epoch draws another picture
    let mut z = image.clone();
    a.apply_batch(&mut z, 4, 10, 500).unwrap();
    assert_ne!(z, x);
}

#[test]
fn brightness_scales_the_pixels_before_normalisation() {
    let norm = Normalization { scale: 1.0, mean: vec![0.5], std: vec![0.25] };
    let a = augmenter(AugmentSpec { brightness: 0.5, ..AugmentSpec::default() }, &[1, 2, 2], &norm);
    let pixels = [0.0f32, 0.2, 0.4, 0.8];
    let mut z: Vec<f32> = pixels.iter().map(|x| (x - 0.5) / 0.25).collect();
    a.apply(&mut z, 0, 0, 1, &mut [0.0; 4]);
    let back: Vec<f32> = z.iter().map(|v| v * 0.25 + 0.5).collect();
    assert!(back[0].abs() < 1e-6, "black stays black: {back:?}");
    let factor = back[3] / 0.8;
    assert!((0.5..=1.5).contains(&factor) && (factor - 1.0).abs() > 1e-4, "{factor}");
    assert!((back[1] / 0.2 - factor).abs() < 1e-4, "one factor for every pixel");
}

#[test]
fn a_spec_that_does_not_fit_is_refused_naming_its_field() {
    let shape: &[usize] = &[1, 28, 28];
    let key = |spec: AugmentSpec, kind: SetKind| spec.check(kind, "set", Some(shape)).unwrap_err().0;
    assert_eq!(key(AugmentSpec { rotate: 190.0, ..AugmentSpec::default() }, SetKind::Image), "augment.rotate");
    assert_eq!(key(AugmentSpec { rotate: f64::NAN, ..AugmentSpec::default() }, SetKind::Image), "augment.rotate");
    assert_eq!(key(AugmentSpec { shift: 28, ..AugmentSpec::default() }, SetKind::Image), "augment.shift");
    assert_eq!(key(AugmentSpec { cutout: 30, ..AugmentSpec::default() }, SetKind::Image), "augment.cutout");
    assert_eq!(key(AugmentSpec { noise: -1.0, ..AugmentSpec::default() }, SetKind::Image), "augment.noise");
    assert_eq!(key(AugmentSpec { contrast: 2.0, ..AugmentSpec::default() }, SetKind::Image), "augment.contrast");
    let (k, msg) =
        AugmentSpec { flip: true, ..AugmentSpec::default() }.check(SetKind::Tabular, "iris", None).unwrap_err();
    assert_eq!(k, "augment");
    assert!(msg.contains("`iris` is not an image set"), "{msg}");
    assert!(AugmentSpec::default().check(SetKind::Tabular, "iris", None).is_ok(), "off is fine anywhere");
    assert!(Augmenter::new(&AugmentSpec::default(), SetKind::Image, "x", shape, &identity_norm(), 1)
        .unwrap()
        .is_none());
    let bad_batch = augmenter(AugmentSpec { flip: true, ..AugmentSpec::default() }, shape, &identity_norm());
    assert!(bad_batch.apply_batch(&mut [0.0; 100], 0, 0, 10).is_err(), "a ragged batch is an error, not a panic");
}
