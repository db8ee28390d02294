//! How a GAN's MNIST samples read: the shipped `pretrained:mnist-cnn` classifies each sample of
//! the fixed-noise grid, and the view says how many of the ten digits the samples cover and how
//! sure the classifier is. A collapsed generator, whose samples are all the same blob, shows up
//! as one or two digits however low its losses look (a small stand-in for the Inception
//! Score that GAN papers report).

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The sets whose images are MNIST digits, which the pretrained classifier can read.
const DIGIT_SETS: &[&str] = &["mnist-5k"];
const PRETRAINED: &str = "mnist-cnn";

/// The classifier's reading of a grid of samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigitReading {
    /// Samples read as each digit, 0 to 9.
    pub counts: Vec<usize>,
    /// The mean probability of the digit each sample is read as.
    pub confidence: f32,
}

impl DigitReading {
    /// Distinct digits among the samples.
    pub fn covered(&self) -> usize {
        self.counts.iter().filter(|&&n| n > 0).count()
    }

    /// "9 of 10 digits (most: 1, 14 of 64), 71% sure".
    pub fn describe(&self) -> String {
        let total: usize = self.counts.iter().sum();
        let (most, n) =
            self.counts.iter().enumerate().max_by_key(|&(d, &n)| (n, std::cmp::Reverse(d))).unwrap_or((0, &0));
        format!(
            "read as {} of 10 digits (most often {most}: {n} of {total}), {:.0}% sure",
            self.covered(),
            100.0 * self.confidence
        )
    }
}

/// Whether samples of this data set can be read as digits.
pub fn applies(set: &str, shape: [usize; 3]) -> bool {
    DIGIT_SETS.contains(&set) && shape == [1, 28, 28]
}

/// Reads 28x28 grey images of values in [0, 1] (0 black) with the pretrained classifier.
pub fn read(images: &[Vec<f32>]) -> Result<DigitReading> {
    let (_, card, weights) = super::transfer::PRETRAINED
        .iter()
        .find(|(name, _, _)| *name == PRETRAINED)
        .expect("the pretrained MNIST CNN is compiled in");
    let place = std::path::PathBuf::from(format!("pretrained:{PRETRAINED}"));
    let model = crate::export::load_model_from(&place, card, weights)?;
    // the classifier reads raw pixel values, 0 to 255
    let raw: Vec<f32> = images.iter().flat_map(|image| image.iter().map(|v| v.clamp(0.0, 1.0) * 255.0)).collect();
    let logits = model.logits_raw(&raw, images.len())?;
    let probabilities = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()?;
    let mut counts = vec![0; 10];
    let mut sure = 0.0;
    for p in &probabilities {
        let (digit, best) = p.iter().enumerate().fold((0, f32::MIN), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
        counts[digit.min(9)] += 1;
        sure += best;
    }
    Ok(DigitReading { counts, confidence: sure / probabilities.len().max(1) as f32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real digits read as the digits they are; one image repeated reads as one digit.
    #[test]
    fn real_digits_cover_the_ten_and_a_repeated_one_covers_one() {
        let spec = crate::data::DataSpec {
            set: "mnist-5k".into(),
            normalization: crate::data::NormalizationKind::Scale,
            ..Default::default()
        };
        let data = crate::data::load(&spec, 1).unwrap();
        let split = &data.validation;
        let mut firsts: Vec<Option<Vec<f32>>> = vec![None; 10];
        for i in 0..split.len() {
            let label = split.labels[i] as usize;
            if firsts[label].is_none() {
                firsts[label] = Some(split.sample_vec(i).unwrap());
            }
        }
        let digits: Vec<Vec<f32>> = firsts.into_iter().map(Option::unwrap).collect();
        let reading = read(&digits).unwrap();
        assert!(reading.covered() >= 9, "{reading:?}");
        let same = read(&vec![digits[3].clone(); 16]).unwrap();
        assert_eq!(same.covered(), 1, "{same:?}");
        assert!(same.describe().contains("read as 1 of 10 digits"), "{}", same.describe());
    }
}
