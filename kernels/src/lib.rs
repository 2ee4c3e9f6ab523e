//! CPU kernels for the engine. Every kernel works on plain ndarray values and knows nothing of the tape:
//! the autograd crate wraps each one as an op with its own backward. Keep entry points stable so a faster
//! implementation can replace a straightforward one without touching the engine.

/// An instruction-set level the kernels are compiled for, lowest first: the portable baseline, AVX2 with FMA
/// (and POPCNT), AVX-512 (F, VL, DQ, with the AVX2 set).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    Scalar,
    Avx2,
    Avx512,
}

impl Level {
    /// The name `SRN_ISA` takes and the benches print.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        [Level::Scalar, Level::Avx2, Level::Avx512].into_iter().find(|l| l.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// The best level this CPU has.
pub fn detected_level() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        let base = std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("popcnt");
        if base
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
        {
            return Level::Avx512;
        }
        if base {
            return Level::Avx2;
        }
    }
    Level::Scalar
}

/// The level the kernels run at: the CPU's best, or the lower one that the environment variable `SRN_ISA`
/// (`avx512`, `avx2` or `scalar`) asks for, so that a lower level's code can be measured on a better CPU. Read
/// once; a level the CPU lacks, or a name it does not know, is reported once on stderr and the CPU's is used.
pub fn level() -> Level {
    #[cfg(test)]
    if let Some(l) = FORCED.get() {
        return l;
    }
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cpu = detected_level();
        let Ok(asked) = std::env::var("SRN_ISA") else { return cpu };
        match Level::parse(&asked) {
            Some(l) if l <= cpu => l,
            Some(l) => {
                eprintln!("SRN_ISA={asked}: this CPU has no {}, running at {}", l.name(), cpu.name());
                cpu
            }
            None => {
                eprintln!("SRN_ISA={asked}: not one of avx512, avx2, scalar; running at {}", cpu.name());
                cpu
            }
        }
    })
}

#[cfg(test)]
thread_local! {
    /// A level forced on this thread by [`at_level`] (tests only: tests run on parallel threads, so the
    /// process-wide `SRN_ISA` cannot select a level for one of them).
    static FORCED: std::cell::Cell<Option<Level>> = const { std::cell::Cell::new(None) };
}

/// Every level this CPU can run, lowest first.
#[cfg(test)]
pub(crate) fn levels() -> Vec<Level> {
    [Level::Scalar, Level::Avx2, Level::Avx512].into_iter().filter(|&l| l <= detected_level()).collect()
}

/// Run `f` with the kernels that `f` calls on this thread dispatched at `level` (which the CPU must have).
/// Work that `f` hands to other threads runs at the process's level.
#[cfg(test)]
pub(crate) fn at_level<R>(level: Level, f: impl FnOnce() -> R) -> R {
    assert!(level <= detected_level(), "the CPU has no {level:?}");
    let before = FORCED.replace(Some(level));
    let out = f();
    FORCED.set(before);
    out
}

/// Defines `$name` (dispatching) over a body written once: `$name(args)` runs `$body` compiled for the
/// instruction set of [`level()`] (the CPU's best unless `SRN_ISA` asks for less; in tests, `at_level`'s).
macro_rules! multiversion {
    ($(#[$doc:meta])* $vis:vis fn $name:ident<$($g:ident: $b:path),*>($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        #[inline]
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$($g: $b),*>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma,popcnt")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v512<$($g: $b),*>($($arg: $ty),*) $(-> $ret)? $body
                #[target_feature(enable = "avx2,fma,popcnt")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v256<$($g: $b),*>($($arg: $ty),*) $(-> $ret)? $body
                match $crate::level() {
                    // SAFETY: the CPU has the features each version was compiled for.
                    $crate::Level::Avx512 => return unsafe { v512($($arg),*) },
                    $crate::Level::Avx2 => return unsafe { v256($($arg),*) },
                    $crate::Level::Scalar => {}
                }
            }
            #[allow(unreachable_code)]
            $body
        }
    };
}

pub mod alloc;
pub mod conv;
pub mod elementwise;
pub mod fspool;
pub mod gemm;
pub mod lstm;
pub mod math;
pub mod sgemm;

#[cfg(test)]
mod level_tests;

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// The float types the engine runs on: `f32` for training, `f64` for gradient checks.
pub trait Float:
    num_traits::Float
    + num_traits::FromPrimitive
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// Name used in checkpoints and error messages ("f32", "f64").
    const NAME: &'static str;
    /// Lossy conversion from f64, for constants written in code.
    fn of(x: f64) -> Self {
        <Self as num_traits::FromPrimitive>::from_f64(x).expect("float conversion")
    }
    /// Lossy conversion from usize (counts, sizes).
    fn of_usize(x: usize) -> Self {
        <Self as num_traits::FromPrimitive>::from_usize(x).expect("float conversion")
    }
    fn to_f64(self) -> f64 {
        num_traits::ToPrimitive::to_f64(&self).expect("float conversion")
    }
    /// `e^x` in the engine's element-wise loops: branch-free and vectorisable for f32 (see [`math`]), the
    /// standard library's for f64.
    #[inline(always)]
    fn exp_v(self) -> Self {
        self.exp()
    }
    /// `tanh x`, as [`Float::exp_v`].
    #[inline(always)]
    fn tanh_v(self) -> Self {
        self.tanh()
    }
    /// The logistic function `1 / (1 + e^-x)`, computed without overflow.
    #[inline(always)]
    fn sigmoid_v(self) -> Self {
        if self >= Self::zero() {
            Self::one() / (Self::one() + (-self).exp())
        } else {
            let e = self.exp();
            e / (Self::one() + e)
        }
    }
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn exp_v(self) -> Self {
        math::exp(self)
    }
    #[inline(always)]
    fn tanh_v(self) -> Self {
        math::tanh(self)
    }
    #[inline(always)]
    fn sigmoid_v(self) -> Self {
        math::sigmoid(self)
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
}

/// Run `f` on one of rayon's threads and wait for its result (directly, when already on one). The parallel
/// kernels `f` calls then split their work with the pool's other threads by a `join`, where the thread that
/// asks does its share at once. Called from a thread outside the pool (`main`), each parallel kernel is
/// handed over to the pool while the caller sleeps until it is done: 5-8% of an SRN training step on this
/// machine (`BENCH_ON_MAIN=1 cargo bench --bench sets -- srn` against the default). The experiments run their
/// whole command this way.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::scope(|_| f())
}

#[cfg(test)]
mod pool_tests {
    #[test]
    fn on_pool_runs_on_a_pool_thread_and_returns_the_result() {
        assert!(rayon::current_thread_index().is_none());
        let (inside, value) = super::on_pool(|| (rayon::current_thread_index().is_some(), 6 * 7));
        assert!(inside);
        assert_eq!(value, 42);
        // Nested: in place, on the same thread.
        super::on_pool(|| {
            let outer = rayon::current_thread_index();
            assert_eq!(super::on_pool(rayon::current_thread_index), outer);
        });
    }
}
