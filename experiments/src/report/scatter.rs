//! Scatter plots (e.g. of a t-SNE embedding) with each point coloured by a value or a class, written to PNG.
//!
//! ```no_run
//! use experiments::report::scatter::ScatterPlot;
//! let points = vec![(0.0, 1.0), (2.0, 3.0), (1.0, -1.0)];
//! ScatterPlot::new("Set elements, t-SNE", points)
//!     .continuous(vec![3.0, 7.5, 11.0], "radius")
//!     .save("tsne.png")
//!     .unwrap();
//! ```
//!
//! Points with a NaN or infinite coordinate are skipped; a NaN colour value draws the point grey. Constant
//! values take the middle of the colormap.

use std::io;
use std::path::Path;

use super::colour;
use super::image::{Canvas, Rgb, WHITE};
use super::plot::{self, Axis, Decor, Swatch, INK};
use super::text::{self, Anchor, GLYPH};

/// How the points are coloured.
#[derive(Clone, Debug)]
pub enum Colouring {
    /// Every point in one colour.
    Single(Rgb),
    /// One value per point through the viridis colormap, with a colour bar titled `label`.
    Continuous { values: Vec<f64>, label: String },
    /// One class per point in palette colours, with a legend giving `names[class]` (or "class k" where the
    /// names run out).
    Classes { classes: Vec<usize>, names: Vec<String> },
}

/// A scatter plot of `(x, y)` points.
#[derive(Clone, Debug)]
pub struct ScatterPlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub points: Vec<(f64, f64)>,
    pub colouring: Colouring,
    /// Dot radius in pixels.
    pub radius: usize,
    pub width: usize,
    pub height: usize,
}

const BAR_GAP: usize = 12;
const BAR_W: usize = 14;

impl ScatterPlot {
    /// A 640x520 plot of `points`, all in the first palette colour.
    pub fn new(title: &str, points: Vec<(f64, f64)>) -> Self {
        ScatterPlot {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            points,
            colouring: Colouring::Single(colour::category(0)),
            radius: 3,
            width: 640,
            height: 520,
        }
    }

    pub fn labels(mut self, x_label: &str, y_label: &str) -> Self {
        self.x_label = x_label.into();
        self.y_label = y_label.into();
        self
    }

    pub fn size(mut self, width: usize, height: usize) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    pub fn radius(mut self, radius: usize) -> Self {
        self.radius = radius;
        self
    }

    /// Colours point `i` by `values[i]` on viridis. Panics unless there is one value per point.
    pub fn continuous(mut self, values: Vec<f64>, label: &str) -> Self {
        assert_eq!(values.len(), self.points.len(), "ScatterPlot::continuous: one value per point");
        self.colouring = Colouring::Continuous { values, label: label.into() };
        self
    }

    /// Colours point `i` by class `classes[i]`. Panics unless there is one class per point.
    pub fn classes(mut self, classes: Vec<usize>, names: &[&str]) -> Self {
        assert_eq!(classes.len(), self.points.len(), "ScatterPlot::classes: one class per point");
        self.colouring = Colouring::Classes { classes, names: names.iter().map(|n| n.to_string()).collect() };
        self
    }

    /// Draws the plot.
    pub fn render(&self) -> Canvas {
        let finite = || self.points.iter().filter(|p| p.0.is_finite() && p.1.is_finite());
        let x_axis = Axis::fit(finite().map(|p| p.0), false, 0.05);
        let y_axis = Axis::fit(finite().map(|p| p.1), false, 0.05);
        let mut canvas = Canvas::new(self.width, self.height, WHITE);
        let decor = Decor { title: &self.title, x_label: &self.x_label, y_label: &self.y_label };
        let key = Key::new(&self.colouring);
        let frame = plot::draw_axes(&mut canvas, &decor, &x_axis, &y_axis, key.width());
        for (i, &(x, y)) in self.points.iter().enumerate() {
            if let (Some(u), Some(v)) = (x_axis.unit(x), y_axis.unit(y)) {
                canvas.fill_disc(frame.x(u), frame.y(v), self.radius as i64, key.colour(i));
            }
        }
        frame.draw_border(&mut canvas);
        key.draw(&mut canvas, frame.right() + 1 + BAR_GAP as i64, frame.top, frame.height);
        canvas
    }

    /// Draws the plot and writes it to a PNG file.
    pub fn save(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.render().save_png(path)
    }
}

/// What tells the reader the colours: nothing, a colour bar, or a class legend.
enum Key<'a> {
    None(Rgb),
    Bar { values: &'a [f64], scale: Axis, label: &'a str },
    Legend { classes: &'a [usize], names: Vec<String> },
}

impl<'a> Key<'a> {
    fn new(colouring: &'a Colouring) -> Self {
        match colouring {
            Colouring::Single(c) => Key::None(*c),
            Colouring::Continuous { values, label } => {
                Key::Bar { values, scale: Axis::fit(values.iter().copied(), false, 0.0), label }
            }
            Colouring::Classes { classes, names } => {
                let count = classes.iter().map(|&c| c + 1).max().unwrap_or(0).max(names.len());
                let names = (0..count).map(|k| names.get(k).cloned().unwrap_or_else(|| format!("class {k}")));
                Key::Legend { classes, names: names.collect() }
            }
        }
    }

    fn colour(&self, i: usize) -> Rgb {
        match self {
            Key::None(c) => *c,
            Key::Bar { values, scale, .. } => colour::viridis(scale.unit(values[i]).unwrap_or(f64::NAN)),
            Key::Legend { classes, .. } => colour::category(classes[i]),
        }
    }

    fn entries(&self) -> Vec<(Rgb, &str)> {
        match self {
            Key::Legend { names, .. } => {
                names.iter().enumerate().map(|(k, n)| (colour::category(k), n.as_str())).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The room the key takes right of the plot area.
    fn width(&self) -> usize {
        match self {
            Key::None(_) => 0,
            Key::Bar { scale, label, .. } => {
                let ticks = scale.ticks.iter().map(|(_, l)| text::text_size(l, 1).0).max().unwrap_or(0);
                let label_w = if label.is_empty() { 0 } else { 6 + GLYPH };
                BAR_GAP + BAR_W + 6 + ticks + label_w
            }
            Key::Legend { .. } => BAR_GAP + plot::legend_size(&self.entries()).0,
        }
    }

    /// Draws the key with its top-left corner at `(left, top)`, a colour bar `height` tall.
    fn draw(&self, canvas: &mut Canvas, left: i64, top: i64, height: usize) {
        match self {
            Key::None(_) => {}
            Key::Bar { scale, label, .. } => {
                let rows = height.max(2);
                for r in 0..rows {
                    let u = 1.0 - r as f64 / (rows - 1) as f64;
                    canvas.fill_rect(left, top + r as i64, BAR_W, 1, colour::viridis(u));
                }
                canvas.stroke_rect(left, top, BAR_W, rows, INK);
                let tick_x = left + BAR_W as i64;
                for (v, tick) in &scale.ticks {
                    let Some(u) = scale.unit(*v) else { continue };
                    let y = top + rows as i64 - 1 - (u * (rows - 1) as f64).round() as i64;
                    canvas.fill_rect(tick_x, y, 3, 1, INK);
                    text::draw_text_anchored(canvas, tick_x + 6, y, Anchor::CentreLeft, tick, 1, INK);
                }
                if !label.is_empty() {
                    let x = canvas.width() as i64 - (PAD_RIGHT + GLYPH / 2) as i64;
                    text::draw_text_vertical(canvas, x, top + rows as i64 / 2, label, 1, INK);
                }
            }
            Key::Legend { .. } => plot::draw_legend(canvas, left, top, &self.entries(), Swatch::Dot),
        }
    }
}

/// The page margin right of the key (the same as the plot module's).
const PAD_RIGHT: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn count(c: &Canvas, colour: Rgb) -> usize {
        (0..c.height())
            .flat_map(|y| (0..c.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == colour)
            .count()
    }

    fn ring(n: usize) -> Vec<(f64, f64)> {
        (0..n).map(|i| (i as f64 * 0.3).sin_cos()).map(|(s, c)| (3.0 * c, 2.0 * s)).collect()
    }

    #[test]
    fn continuous_colours_follow_the_values_and_a_bar_shows_the_scale() {
        let points = ring(40);
        let values: Vec<f64> = (0..40).map(|i| if i < 20 { 0.0 } else { 1.0 }).collect();
        let plot = ScatterPlot::new("ring", points).labels("a", "b").continuous(values, "value").size(420, 320);
        let c = plot.render();
        assert_eq!((c.width(), c.height()), (420, 320));
        // Both ends of the colormap appear on points and bar; the bar also shows the middle.
        let (low, high, mid) = (colour::viridis(0.0), colour::viridis(1.0), colour::viridis(0.5));
        assert!(count(&c, low) > 20 * 15 && count(&c, high) > 20 * 15, "{} {}", count(&c, low), count(&c, high));
        assert!(count(&c, mid) >= BAR_W - 2);
        // The bar lies right of every point.
        let rightmost_point = (0..c.width()).rev().find(|&x| (0..c.height()).any(|y| c.get(x, y) == low)).unwrap();
        assert!(rightmost_point > c.width() - 120, "the bar is at the right");
    }

    #[test]
    fn classes_take_palette_colours_with_a_legend() {
        let points = ring(30);
        let classes = (0..30).map(|i| i % 3).collect();
        let c = ScatterPlot::new("", points).classes(classes, &["zero", "one"]).size(400, 300).render();
        for k in 0..3 {
            assert!(count(&c, colour::category(k)) > 10 * 15, "class {k}");
        }
        assert_eq!(count(&c, colour::category(3)), 0);
    }

    #[test]
    fn awkward_data_does_not_panic() {
        let nan = f64::NAN;
        type Case = (Vec<(f64, f64)>, Vec<f64>);
        let cases: Vec<Case> = vec![
            (vec![], vec![]),
            (vec![(1.0, 1.0)], vec![5.0]),
            (vec![(1.0, 1.0), (1.0, 1.0)], vec![2.0, 2.0]),
            (vec![(nan, 1.0), (0.0, f64::INFINITY)], vec![nan, nan]),
            (vec![(0.0, 0.0), (1.0, 1.0)], vec![nan, 1.0]),
        ];
        for (points, values) in cases {
            for (w, h) in [(300, 200), (5, 5)] {
                let plot = ScatterPlot::new("t", points.clone()).size(w, h);
                let c = plot.clone().continuous(values.clone(), "v").render();
                assert_eq!((c.width(), c.height()), (w, h));
                let classes = (0..points.len()).collect();
                let c = plot.classes(classes, &[]).render();
                assert_eq!((c.width(), c.height()), (w, h));
            }
        }
    }

    #[test]
    fn constant_values_take_the_middle_colour_and_nan_is_grey() {
        let c = ScatterPlot::new("", vec![(0.0, 0.0), (1.0, 1.0)]).continuous(vec![4.0, nan()], "").size(300, 200);
        let c = c.render();
        assert!(count(&c, colour::viridis(0.5)) > 15 + BAR_W, "the point and the bar's middle row");
        assert!(count(&c, colour::MISSING) > 15);
    }

    fn nan() -> f64 {
        f64::NAN
    }
}
