//! The command line every experiment shares: [`RunArgs`] (flattened into each experiment's arguments), the
//! SRN's settings ([`SrnArgs`], one S0 flag with one name and default everywhere), which models to train
//! ([`Which`]), and checks of command-line values for clap's `value_parser`: an out-of-range value is rejected
//! when the command line is parsed, with the valid range in the message.

use super::RunConfig;
use clap::ValueEnum;
use models::{InnerGradient, SrnConfig};
use std::path::PathBuf;

/// The arguments of every experiment, generic in its profiles `P` and its choice of models `M` (both
/// `ValueEnum`s whose `Default` is the command's default).
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs<P, M>
where
    P: ValueEnum + Default + Clone + Send + Sync + 'static,
    M: ValueEnum + Default + Clone + Send + Sync + 'static,
{
    /// Run size (see the experiment's profiles; the default takes minutes).
    #[arg(long, value_enum, default_value = default_name::<P>())]
    pub profile: P,
    /// Which models to train.
    #[arg(long, value_enum, default_value = default_name::<M>())]
    pub model: M,
    /// Seed of the models' initialisation, the training order and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seed of the generated datasets, shared by every model and seed.
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Output folder (default: under runs/, named after the experiment, profile and seed).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the checkpoints in the output folder (finished models are not trained again).
    #[arg(long)]
    pub resume: bool,
    /// Number of epochs, 1 to 1,000,000 (default: the profile's). A finished run can be extended with more
    /// epochs and --resume; only this setting may change on a resume.
    #[arg(long, value_parser = epochs)]
    pub epochs: Option<usize>,
    /// Adam's learning rate for every model, finite and > 0 (default: the profile's).
    #[arg(long, allow_hyphen_values = true, value_parser = learning_rate)]
    pub lr: Option<f64>,
    #[command(flatten)]
    pub srn: SrnArgs,
}

/// The command-line name of `V::default()`. (Not `default_value_t`: clap's derive keeps that in a `static`,
/// which a generic struct shares between all its instantiations, so every experiment of one binary would get
/// the first one's default, e.g. `--model both` for CLUTRR, whose models are rn|srn|grn|all.) Leaks the
/// name, once per command built.
fn default_name<V: ValueEnum + Default>() -> &'static str {
    let name = V::default().to_possible_value().expect("the default is a visible value").get_name().to_owned();
    Box::leak(name.into_boxed_str())
}

impl<P, M> RunArgs<P, M>
where
    P: ValueEnum + Default + Clone + Send + Sync + 'static,
    M: ValueEnum + Default + Clone + Send + Sync + 'static,
{
    /// `--epochs` and `--lr` over a profile's `epochs` and `lr`, where given.
    pub fn override_budget(&self, epochs: &mut usize, lr: &mut f64) {
        if let Some(e) = self.epochs {
            *epochs = e;
        }
        if let Some(l) = self.lr {
            *lr = l;
        }
    }

    /// The profile's name on the command line (`smoke`, `quick`, ...).
    pub fn profile_name(&self) -> String {
        self.profile.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
    }

    /// `count` seeds from `--seed` on: `--seed`, `--seed + 1`, ...
    pub fn seeds(&self, count: usize) -> crate::Result<Vec<u64>> {
        (0..count as u64)
            .map(|i| self.seed.checked_add(i).ok_or_else(|| format!("--seed {} + {i} overflows", self.seed).into()))
            .collect()
    }

    /// The output folder, made ready: `--out`, or `runs/<stem>-<profile>[-lr<LR>]`; checked to be writable,
    /// its leftover temporary files removed.
    pub fn out_dir(&self, stem: &str) -> crate::Result<PathBuf> {
        let dir = self.out.clone().unwrap_or_else(|| {
            let lr = self.lr.map(|lr| format!("-lr{lr}")).unwrap_or_default();
            PathBuf::from(format!("runs/{stem}-{}{lr}", self.profile_name()).to_lowercase())
        });
        crate::files::ensure_writable(&dir)?;
        crate::files::clean_orphans(&dir)?;
        Ok(dir)
    }

    /// What defines one model's run for one seed, as far as these arguments go: the experiment, profile, run
    /// name, seed and data seed, with the epochs free to change on a resume when `--epochs` is given. The
    /// experiment adds its model's and profile's settings.
    pub fn run_config(&self, experiment: &str, run: &str, seed: u64) -> RunConfig {
        let c = RunConfig::new()
            .with("experiment", experiment)
            .with("profile", self.profile_name())
            .with("run", run)
            .with("seed", seed)
            .with("data_seed", self.data_seed);
        if self.epochs.is_some() {
            c.may_change("settings.epochs")
        } else {
            c
        }
    }
}

/// Which models a run trains: the experiment's model without the SRN, with it, or both (same data, seeds and
/// budget).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// The model without the SRN (Sort-of-CLEVR's RN: `rn` is accepted too).
    #[value(alias = "rn")]
    Baseline,
    /// The model with the SRN.
    Srn,
    #[default]
    Both,
}

impl Which {
    pub fn baseline(self) -> bool {
        matches!(self, Which::Baseline | Which::Both)
    }

    pub fn srn(self) -> bool {
        matches!(self, Which::Srn | Which::Both)
    }
}

/// Where the refinement starts, `S0 = G(X)`, and whether the outer loss reaches `G` through it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum S0 {
    /// The released code's: S0 enters the inner loop as a fresh leaf, so G learns nothing from the outer loss
    /// through the refinement.
    #[default]
    Detached,
    /// As Algorithm 1 reads: the outer gradient reaches G through every inner step.
    Learned,
}

/// `--inner-gradient`: [`InnerGradient`] on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum GradientMode {
    #[default]
    Unrolled,
    Implicit,
}

impl From<GradientMode> for InnerGradient {
    fn from(mode: GradientMode) -> Self {
        match mode {
            GradientMode::Unrolled => InnerGradient::Unrolled,
            GradientMode::Implicit => InnerGradient::Implicit,
        }
    }
}

/// The SRN's settings on the command line: each, when given, replaces the experiment's default.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SrnArgs {
    /// The number of inner steps r, at least 1 (default: the profile's).
    #[arg(long, value_parser = at_least_one)]
    pub inner_steps: Option<usize>,
    /// The inner step size alpha, finite and >= 0 (default: the experiment's; a negative step would climb the
    /// inner loss, so it is rejected).
    #[arg(long, allow_hyphen_values = true, value_parser = alpha)]
    pub alpha: Option<f64>,
    /// S0: detached (the released code's, the default in every experiment) or learned (the outer gradient
    /// reaches the set generator through the refinement, as Algorithm 1 reads).
    #[arg(long, value_enum, default_value_t)]
    pub s0: S0,
    /// How the outer loss differentiates through the inner steps: unrolled (the paper's) or implicit (only
    /// through the last step, as iDSPN's approximate implicit differentiation; memory constant in r).
    #[arg(long, value_enum, default_value_t)]
    pub inner_gradient: GradientMode,
}

impl SrnArgs {
    /// `base` with the settings given on the command line.
    pub fn apply(&self, base: SrnConfig) -> SrnConfig {
        SrnConfig {
            steps: self.inner_steps.unwrap_or(base.steps),
            alpha: self.alpha.unwrap_or(base.alpha),
            learn_s0: self.s0 == S0::Learned,
            gradient: self.inner_gradient.into(),
            ..base
        }
    }

    /// What a run with these settings adds to its model's name (and folder): the settings that differ from
    /// the defaults, e.g. `-learn-s0-alpha1-r10-implicit`; empty for the defaults.
    pub fn suffix(&self) -> String {
        let mut s = String::new();
        if self.s0 == S0::Learned {
            s.push_str("-learn-s0");
        }
        if let Some(a) = self.alpha {
            s.push_str(&format!("-alpha{a}"));
        }
        if let Some(r) = self.inner_steps {
            s.push_str(&format!("-r{r}"));
        }
        if self.inner_gradient == GradientMode::Implicit {
            s.push_str("-implicit");
        }
        s
    }
}

/// An experiment's arguments parsed from `argv` (the flags after the command's name) as its command line
/// would be: for tests and examples.
pub fn parse<A: clap::Args>(argv: &[&str]) -> Result<A, clap::Error> {
    #[derive(clap::Parser)]
    struct Command<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }
    <Command<A> as clap::Parser>::try_parse_from(std::iter::once("experiment").chain(argv.iter().copied()))
        .map(|c| c.args)
}

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
