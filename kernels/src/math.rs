//! Branch-free f32 `exp`, `tanh` and logistic functions that the compiler vectorises inside element-wise loops
//! (the C library's are scalar calls, the LSTM's gate math spent most of its time in them). Cephes' minimax
//! polynomials: `exp` with Cody-Waite range reduction to `|r| <= ln 2 / 2`, `tanh` by a polynomial below 0.625
//! and `1 - 2 / (e^2x + 1)` above. Within a few ulp of the correctly rounded results (tested against f64).

// The coefficients are Cephes' as published, some with more digits than an f32 holds.
#![allow(clippy::excessive_precision)]

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 * 2^23: adding it rounds to an integer (in round-to-nearest mode) and leaves it in the low mantissa bits.
const ROUND: f32 = 12_582_912.0;

/// Below this `e^x` is not a normal f32: the result is 0 (results in the subnormal range are flushed to zero).
const EXP_MIN: f32 = -87.336_55;
/// Above this `e^x` overflows: the result is infinity.
const EXP_MAX: f32 = 88.722_83;

/// `e^x`; 0 below -87.34 (where the result would be subnormal) and infinity above 88.72.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let e = exp_in_range(x.clamp(EXP_MIN, EXP_MAX));
    if x < EXP_MIN {
        0.0
    } else if x > EXP_MAX {
        f32::INFINITY
    } else {
        e
    }
}

/// `e^x` for `x` in `[EXP_MIN, EXP_MAX]`.
#[inline(always)]
fn exp_in_range(x: f32) -> f32 {
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p =
        ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 0.166_666_65) * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n from the integer left in t's mantissa; n in [-126, 128]: split into two factors so 2^128 stays finite.
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let half = ni >> 1;
    let s1 = f32::from_bits(((half + 127) as u32) << 23);
    let s2 = f32::from_bits(((ni - half + 127) as u32) << 23);
    e * s1 * s2
}

/// `tanh x`.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z + 0.133_314_42) * z - 0.333_332_82) * z * x
            + x;
    let large = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    if a < 0.625 {
        small
    } else {
        large.copysign(x)
    }
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        if got == w {
            return 0.0;
        }
        let spacing = (f32::from_bits(w.abs().to_bits() + 1) - w.abs()) as f64;
        ((got as f64 - want) / spacing).abs()
    }

    #[test]
    fn within_a_few_ulp_of_f64_over_the_whole_range() {
        let mut worst = [0.0f64; 3];
        let mut x = -100.0f32;
        while x < 100.0 {
            let xd = x as f64;
            if xd.exp() > 1e-37 && xd.exp() < 3e38 {
                worst[0] = worst[0].max(ulps(exp(x), xd.exp()));
            }
            worst[1] = worst[1].max(ulps(tanh(x), xd.tanh()));
            let s = 1.0 / (1.0 + (-xd).exp());
            if s > 1e-37 {
                worst[2] = worst[2].max(ulps(sigmoid(x), s));
            }
            x += 0.000_731;
        }
        assert!(worst[0] <= 2.0 && worst[1] <= 3.0 && worst[2] <= 3.0, "worst ulps exp, tanh, sigmoid: {worst:?}");
        // Limits and special values.
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1000.0), 0.0);
        assert_eq!(exp(-88.0), 0.0);
        assert!(exp(88.7).is_finite() && exp(1000.0) == f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
        assert!(sigmoid(200.0) == 1.0 && sigmoid(-200.0) == 0.0);
        assert!(tanh(1e-30) == 1e-30);
    }
}
