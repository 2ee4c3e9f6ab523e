//! The Circles decomposition experiment (paper Sec. 2.2, Table 1, Figures 2 and 3).

pub mod data;
pub mod figures;
pub mod metrics;
pub mod model;
pub mod profile;
pub mod table;
pub mod train;

use crate::resume::RunConfig;
use crate::training::stop_if_interrupted;
use crate::Result;
use data::Circles;
use model::ModelConfig;
use models::{InnerGradient, SrnConfig};
use profile::Profile;
use std::path::PathBuf;
use train::RunSpec;

/// Which models a run trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Baseline,
    Srn,
    Both,
}

/// The command line of `experiments circles`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Run size: smoke (CI), quick (default, ~15 min), standard (~2 h), paper (the released code's sizes).
    #[arg(long, value_enum, default_value_t = Profile::Quick)]
    pub profile: Profile,
    #[arg(long, value_enum, default_value_t = Which::Both)]
    pub model: Which,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (default: runs/circles-<profile>-seed<N>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the checkpoints in the output folder.
    #[arg(long)]
    pub resume: bool,
    /// Ablation: let the outer gradient reach S0 through the refinement (the released code detaches it).
    #[arg(long)]
    pub learn_s0: bool,
    /// Ablation: the inner step size alpha, finite and >= 0 (default 0.1, the released code's; a negative
    /// step would climb the inner loss, so it is rejected).
    #[arg(long, allow_hyphen_values = true, value_parser = crate::cli::alpha)]
    pub alpha: Option<f64>,
    /// Ablation: the number of inner steps r, at least 1 (default: the profile's).
    #[arg(long, value_parser = crate::cli::at_least_one)]
    pub inner_steps: Option<usize>,
    /// Adam's learning rate for both models, finite and > 0 (default 3e-4, the released code's).
    #[arg(long, allow_hyphen_values = true, value_parser = crate::cli::learning_rate)]
    pub lr: Option<f64>,
    /// Number of epochs, 1 to 1,000,000 (default: the profile's). A finished run can be extended with more
    /// epochs and --resume; only this setting may change on a resume.
    #[arg(long, value_parser = crate::cli::epochs)]
    pub epochs: Option<usize>,
    /// How the outer loss differentiates through the inner steps: unrolled (the paper's) or implicit (only
    /// through the last step, as iDSPN's approximate implicit differentiation; memory constant in r).
    #[arg(long, value_enum, default_value_t = GradientMode::Unrolled)]
    pub inner_gradient: GradientMode,
    /// Evaluate the checkpoints in DIR (as written by a run of the same profile and flags) without training:
    /// Table 1 and the figures, written into DIR.
    #[arg(long, value_name = "DIR")]
    pub evaluate: Option<PathBuf>,
}

/// `--inner-gradient`: [`InnerGradient`] on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GradientMode {
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

impl Args {
    fn out_dir(&self) -> PathBuf {
        self.evaluate.clone().or_else(|| self.out.clone()).unwrap_or_else(|| {
            let lr = self.lr.map(|lr| format!("-lr{lr}")).unwrap_or_default();
            PathBuf::from(format!("runs/circles-{:?}-seed{}{lr}", self.profile, self.seed).to_lowercase())
        })
    }

    /// The SRN run's name: "srn", plus its ablation settings when they differ from the defaults.
    fn srn_name(&self) -> String {
        let mut name = String::from("srn");
        if self.learn_s0 {
            name.push_str("-learn-s0");
        }
        if let Some(a) = self.alpha {
            name.push_str(&format!("-alpha{a}"));
        }
        if let Some(r) = self.inner_steps {
            name.push_str(&format!("-r{r}"));
        }
        if self.inner_gradient == GradientMode::Implicit {
            name.push_str("-implicit");
        }
        name
    }
}

/// Train the requested models with the same data, seed and budget, then print and save Table 1.
pub fn run(args: &Args) -> Result<()> {
    let mut settings = args.profile.settings();
    if let Some(r) = args.inner_steps {
        settings.inner_steps = r;
    }
    if let Some(lr) = args.lr {
        settings.lr = lr;
    }
    if let Some(e) = args.epochs {
        settings.epochs = e;
    }
    crate::cli::total_steps(settings.epochs, settings.steps_per_epoch())?;
    let dir = args.out_dir();
    crate::files::ensure_writable(&dir)?;
    crate::files::clean_orphans(&dir)?;
    eprintln!(
        "circles, profile {:?}: {} training and {} test images, batch {}, {} epochs ({} steps), widths encoder {} / decoder {} / H_agg {}, r = {}; output in {}",
        args.profile,
        settings.train_images,
        settings.test_images,
        settings.batch,
        settings.epochs,
        settings.total_steps(),
        settings.encoder_width,
        settings.decoder_width,
        settings.hagg_width,
        settings.inner_steps,
        dir.display()
    );
    let scene = settings.scene;
    // Evaluating saved checkpoints needs no training images.
    let train_images = if args.evaluate.is_some() { 0 } else { settings.train_images };
    let train_data = Circles::generate(scene, train_images, args.seed.wrapping_mul(2).wrapping_add(1));
    let test_data = Circles::generate(scene, settings.test_images, args.seed.wrapping_mul(2).wrapping_add(2));
    let base = ModelConfig {
        encoder_width: settings.encoder_width,
        decoder_width: settings.decoder_width,
        hagg_width: settings.hagg_width,
        srn: None,
        set_size: settings.set_size,
        image_side: scene.side,
    };
    let srn = SrnConfig {
        steps: settings.inner_steps,
        alpha: args.alpha.unwrap_or(0.1),
        momentum: 0.5,
        learn_s0: args.learn_s0,
        gradient: args.inner_gradient.into(),
    };
    // What defines a model's run (its checkpoints store it; a resume must match it, but for the epochs
    // when --epochs is given).
    let config = |name: &str, model: &ModelConfig| {
        let c = RunConfig::new()
            .with("experiment", "circles")
            .with("profile", format!("{:?}", args.profile).to_lowercase())
            .with("run", name)
            .with("seed", args.seed)
            .with_all("model", model)
            .with_all("settings", &settings);
        if args.epochs.is_some() {
            c.may_change("settings.epochs")
        } else {
            c
        }
    };
    let mut specs = Vec::new();
    if matches!(args.model, Which::Baseline | Which::Both) {
        specs.push(RunSpec {
            name: "baseline".into(),
            settings,
            model: base,
            seed: args.seed,
            dir: dir.join("baseline"),
            config: config("baseline", &base),
        });
    }
    if matches!(args.model, Which::Srn | Which::Both) {
        let name = args.srn_name();
        let model = ModelConfig { srn: Some(srn), ..base };
        specs.push(RunSpec {
            dir: dir.join(&name),
            config: config(&name, &model),
            name,
            settings,
            model,
            seed: args.seed,
        });
    }
    let mut results = Vec::new();
    let mut curves = Vec::new();
    for spec in &specs {
        let outcome = match args.evaluate {
            Some(_) => train::load(spec)?,
            None => train::train(spec, &train_data, &test_data, args.resume)?,
        };
        if outcome.interrupted {
            return Err(format!("interrupted during {}; rerun with --resume to continue", spec.name).into());
        }
        stop_if_interrupted(&spec.name)?;
        let all: Vec<usize> = (0..test_data.len()).collect();
        let (stats, _) = train::evaluate(&outcome.model, &test_data, &all, settings.batch, false);
        table::write_curve(&spec.dir.join("curve.csv"), &outcome.curve)?;
        figures::decomposition(&outcome.model, &test_data, 8, &spec.dir.join("decomposition.png"))?;
        figures::interpolation(&outcome.model, scene, 9, &spec.dir.join("interpolation.png"))?;
        figures::tsne_plots(&outcome.model, scene, settings.tsne_grid, args.seed, &spec.dir, &spec.name)?;
        curves.push((spec.name.clone(), outcome.curve.clone()));
        results.push(table::ModelResult {
            name: spec.name.clone(),
            steps: outcome.steps,
            seconds: outcome.seconds,
            stats,
        });
    }
    let suffix = match args.srn_name().as_str() {
        "srn" => String::new(),
        ablation => format!("-{ablation}"),
    };
    stop_if_interrupted("the last model")?;
    figures::learning_curves(&curves, &dir, &suffix)?;
    let report = table::Table1 { profile: args.profile, seed: args.seed, settings, models: results };
    println!("{}", report.markdown());
    // An ablation's table is named after it, so that it sits beside the main one in the same folder.
    let stem = format!("table1{suffix}");
    crate::files::write_atomic(dir.join(format!("{stem}.md")), report.markdown())?;
    crate::files::write_atomic(dir.join(format!("{stem}.json")), serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}/{stem}.md and {stem}.json", dir.display());
    Ok(())
}
