//! The Circles decomposition experiment (paper Sec. 2.2, Table 1, Figures 2 and 3).

pub mod data;
