//! Figures and tables for the paper's experiments: PNG images and image grids, bitmap text, line charts,
//! scatter plots, t-SNE, CSV files and Markdown tables.

pub mod colour;
pub mod csv;
pub mod image;
pub mod plot;
pub mod scatter;
pub mod table;
pub mod text;
pub mod tsne;

pub use image::{grid, save_png, Canvas, GridStyle, Rgb};
pub use plot::LineChart;
pub use scatter::ScatterPlot;
pub use table::Table;
pub use tsne::tsne;
