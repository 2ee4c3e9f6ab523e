pub mod data;
pub mod robustness;
