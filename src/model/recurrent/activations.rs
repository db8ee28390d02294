//! Sigmoid and tanh over slices, the gate nonlinearities of every step.
//!
//! libm's `tanhf` and `expf` are scalar calls and were a third of an LSTM step's time, so these
//! are branch-free polynomial forms (Cephes' `expf` and `tanhf`, a few ulp) that the compiler
//! vectorises. They are pure functions of their input: no thread or machine dependence beyond
//! the instruction set's IEEE arithmetic. NaN stays NaN, so a diverging run is still caught.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two, so that `x - n ln 2` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `e^x`, for `x` in about [-87, 88] (clamped outside, where sigmoid and tanh are flat anyway).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_6e-1)
        * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n for n in [-126, 127]: n + 127 lands in the low mantissa bits of a float in [2^23,
    // 2^24), and moves from there into the exponent field. (`n as i32` would be a saturating
    // cast, which the compiler does not vectorise.)
    let biased = (n + (127.0 + 8_388_608.0)).to_bits();
    y * f32::from_bits(biased << 23)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    let y = 1.0 / (1.0 + exp(-x));
    if x.is_nan() {
        x
    } else {
        y
    }
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    let a = x.abs();
    // small |x|: odd polynomial; else 1 - 2 / (e^{2|x|} + 1) with the sign of x
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_5e-2) * z + 1.333_144_2e-1) * z - 3.333_328e-1) * z * x
            + x;
    let large = (1.0 - 2.0 / (exp(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 || x.is_nan() {
        small
    } else {
        large
    }
}

pub(super) fn sigmoid_in_place(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = sigmoid(*x));
}

pub(super) fn tanh_in_place(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = tanh(*x));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 97th f32 bit pattern up to 80 in size, against libm in f64 (both measure 1.2 ulp at
    /// worst); past that only the
    /// limits matter (sigmoid's true value is below f32's normal range).
    #[test]
    fn sigmoid_and_tanh_are_within_a_few_ulp() {
        let mut worst = (0f64, 0f64);
        for bits in (0u32..0x42A0_0000).step_by(97) {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                let xd = f64::from(x);
                let (s, t) = (1.0 / (1.0 + (-xd).exp()), xd.tanh());
                let ulp = |v: f64| f64::from(f32::EPSILON) * v.abs().max(f64::from(f32::MIN_POSITIVE));
                worst.0 = worst.0.max((f64::from(sigmoid(x)) - s).abs() / ulp(s));
                worst.1 = worst.1.max((f64::from(tanh(x)) - t).abs() / ulp(t));
            }
        }
        assert!(worst.0 < 2.0 && worst.1 < 2.0, "sigmoid {} ulp, tanh {} ulp", worst.0, worst.1);
        assert!(sigmoid(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
        assert!(sigmoid(-200.0) < 1e-37);
        assert_eq!((sigmoid(200.0), tanh(-200.0), tanh(200.0)), (1.0, -1.0, 1.0));
    }
}
