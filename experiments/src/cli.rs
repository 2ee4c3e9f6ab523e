//! Checks of command-line values, for clap's `value_parser`: an out-of-range value is rejected when the
//! command line is parsed, with the valid range in the message.

/// The most epochs a run may ask for (far beyond any profile's; keeps every step count within `usize`).
pub const MAX_EPOCHS: usize = 1_000_000;

fn number(s: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().map_err(|e| format!("{s:?} is not a number ({e})"))
}

fn whole(s: &str) -> Result<usize, String> {
    s.trim().parse::<usize>().map_err(|e| format!("{s:?} is not a whole number ({e})"))
}

/// A learning rate: finite and above 0.
pub fn learning_rate(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("the learning rate must be a finite number above 0, got {v}"))
    }
}

/// An inner step size alpha: finite and at least 0 (a negative step would climb the inner loss; 0 leaves
/// the set where it starts).
pub fn alpha(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("alpha must be a finite number of at least 0 (a descent step), got {v}"))
    }
}

/// A count that must be at least 1 (inner steps, seeds).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match whole(s)? {
        0 => Err("must be at least 1".to_string()),
        v => Ok(v),
    }
}

/// A number of epochs: 1 to [`MAX_EPOCHS`].
pub fn epochs(s: &str) -> Result<usize, String> {
    match whole(s)? {
        v @ 1..=MAX_EPOCHS => Ok(v),
        v => Err(format!("the number of epochs must be between 1 and {MAX_EPOCHS}, got {v}")),
    }
}

/// `epochs x steps_per_epoch`, or an error saying the run would be too long to count.
pub fn total_steps(epochs: usize, steps_per_epoch: usize) -> crate::Result<usize> {
    epochs
        .checked_mul(steps_per_epoch)
        .ok_or_else(|| format!("{epochs} epochs of {steps_per_epoch} steps is more steps than can be counted").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_rejected_with_the_range() {
        for bad in ["nan", "inf", "-inf", "0", "-1e-4", "x"] {
            assert!(learning_rate(bad).is_err(), "lr {bad}");
        }
        assert_eq!(learning_rate("3e-4"), Ok(3e-4));
        for bad in ["nan", "inf", "-5", "-0.1"] {
            assert!(alpha(bad).unwrap_err().contains("at least 0"), "alpha {bad}");
        }
        assert_eq!(alpha("0"), Ok(0.0));
        assert!(at_least_one("0").unwrap_err().contains("at least 1"));
        assert!(at_least_one("-1").is_err());
        assert!(epochs("0").is_err());
        assert!(epochs("18446744073709551615").unwrap_err().contains("between 1 and"));
        assert_eq!(epochs("100"), Ok(100));
        assert!(total_steps(usize::MAX, 2).is_err());
        assert_eq!(total_steps(3, 4).unwrap(), 12);
    }
}
