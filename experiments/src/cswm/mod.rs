//! C-SWM world models (Kipf et al., ICLR 2020) with and without the Set Refiner Network (paper Sec. 3.2,
//! Table 3): the data ([`shapes`], [`data`]), the model ([`model`]), the ranking metrics ([`metrics`]), the
//! object-mask figure ([`figures`]) and the `cswm` command on the shared harness ([`run`], [`profile`]).
//!
//! The Atari data comes from `tools/atari/collect.sh`; the 2-D shapes data is generated here.

pub mod data;
pub mod figures;
pub mod metrics;
pub mod model;
pub mod profile;
pub mod run;
pub mod shapes;
pub mod transition;
