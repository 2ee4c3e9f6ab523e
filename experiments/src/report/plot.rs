//! Line charts written to PNG, and the axes, ticks and legends that [`super::scatter`] shares.
//!
//! ```no_run
//! use experiments::report::plot::LineChart;
//! LineChart::new("Training loss")
//!     .labels("step", "loss")
//!     .log_y(true)
//!     .series("SRN", vec![(0.0, 1.0), (1.0, 0.5), (2.0, 0.3)])
//!     .series("baseline", vec![(0.0, 1.0), (1.0, 0.8), (2.0, 0.7)])
//!     .save("loss.png")
//!     .unwrap();
//! ```
//!
//! Bad data never panics: NaN and infinite values are skipped (a line breaks there), as are values that a
//! log axis cannot show (zero or negative); an isolated point gets a marker so it shows; constant data gets
//! a range around its value; an empty chart gets axes from 0 to 1.

use std::io;
use std::path::Path;

use super::colour;
use super::image::{Canvas, Rgb, WHITE};
use super::text::{self, Anchor, GLYPH};

pub(crate) const INK: Rgb = [30, 30, 30];
const GRID: Rgb = [228, 228, 228];
const LEGEND_BORDER: Rgb = [170, 170, 170];
const PAD: usize = 8;
const TICK: usize = 4;
const TITLE_SCALE: usize = 2;

/// A named sequence of `(x, y)` points, joined in the order given.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// `None` takes the palette colour of the series' position.
    pub colour: Option<Rgb>,
}

/// A chart of several line series with axes, ticks, a title, axis labels and a legend.
#[derive(Clone, Debug)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub log_y: bool,
    /// Draw a dot at every point, not only at isolated ones.
    pub markers: bool,
    pub width: usize,
    pub height: usize,
}

impl LineChart {
    /// An empty 640x420 chart.
    pub fn new(title: &str) -> Self {
        LineChart {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            log_y: false,
            markers: false,
            width: 640,
            height: 420,
        }
    }

    pub fn labels(mut self, x_label: &str, y_label: &str) -> Self {
        self.x_label = x_label.into();
        self.y_label = y_label.into();
        self
    }

    pub fn log_y(mut self, log_y: bool) -> Self {
        self.log_y = log_y;
        self
    }

    pub fn markers(mut self, markers: bool) -> Self {
        self.markers = markers;
        self
    }

    pub fn size(mut self, width: usize, height: usize) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    /// Adds a series in the next palette colour.
    pub fn series(mut self, name: &str, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        self.add_series(name, points);
        self
    }

    /// Adds a series in the next palette colour, for building in a loop.
    pub fn add_series(&mut self, name: &str, points: impl IntoIterator<Item = (f64, f64)>) {
        self.series.push(Series { name: name.into(), points: points.into_iter().collect(), colour: None });
    }

    fn colour(&self, i: usize) -> Rgb {
        self.series[i].colour.unwrap_or_else(|| colour::category(i))
    }

    /// Draws the chart.
    pub fn render(&self) -> Canvas {
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let x_axis = Axis::fit(all().filter(|p| p.1.is_finite()).map(|p| p.0), false, 0.0);
        let y_axis = Axis::fit(all().filter(|p| p.0.is_finite()).map(|p| p.1), self.log_y, 0.05);
        let mut canvas = Canvas::new(self.width, self.height, WHITE);
        let decor = Decor { title: &self.title, x_label: &self.x_label, y_label: &self.y_label };
        let frame = draw_axes(&mut canvas, &decor, &x_axis, &y_axis, 0);
        for (i, series) in self.series.iter().enumerate() {
            let place = |&(x, y): &(f64, f64)| Some((frame.x(x_axis.unit(x)?), frame.y(y_axis.unit(y)?)));
            let pixels: Vec<Option<(i64, i64)>> = series.points.iter().map(place).collect();
            let colour = self.colour(i);
            for (k, here) in pixels.iter().enumerate() {
                let Some(here) = *here else { continue };
                let before = k.checked_sub(1).and_then(|j| pixels[j]);
                let after = pixels.get(k + 1).copied().flatten();
                if let Some(next) = after {
                    canvas.draw_line(here, next, 2, colour);
                }
                if self.markers || (before.is_none() && after.is_none()) {
                    canvas.fill_disc(here.0, here.1, 3, colour);
                }
            }
        }
        frame.draw_border(&mut canvas);
        let entries: Vec<(Rgb, &str)> =
            (0..self.series.len()).map(|i| (self.colour(i), &*self.series[i].name)).collect();
        if entries.iter().any(|(_, name)| !name.is_empty()) {
            let (w, _) = legend_size(&entries);
            let left = frame.right() - w as i64 - 6;
            draw_legend(&mut canvas, left, frame.top + 6, &entries, Swatch::Line);
        }
        canvas
    }

    /// Draws the chart and writes it to a PNG file.
    pub fn save(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.render().save_png(path)
    }
}

/// One axis: its range (in log10 units when logarithmic) and its ticks as `(data value, label)`.
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    pub(crate) ticks: Vec<(f64, String)>,
}

impl Axis {
    /// An axis spanning the usable `values`, widened by `pad` of the span at each end. Values that are not
    /// finite, or not positive on a log axis, are left out.
    pub(crate) fn fit(values: impl IntoIterator<Item = f64>, log: bool, pad: f64) -> Axis {
        let usable = values.into_iter().filter_map(|v| transform(v, log));
        let (mut lo, mut hi) = usable.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        if lo > hi {
            (lo, hi) = (0.0, 1.0);
        } else if hi - lo <= 1e-9 * lo.abs().max(hi.abs()) {
            let half = if log {
                0.5
            } else if lo == 0.0 {
                1.0
            } else {
                0.1 * lo.abs()
            };
            (lo, hi) = (lo - half, hi + half);
        }
        let span = hi - lo;
        (lo, hi) = (lo - pad * span, hi + pad * span);
        let ticks = if log { log_ticks(lo, hi) } else { linear_ticks(lo, hi) };
        Axis { lo, hi, log, ticks }
    }

    /// Where `v` falls along the axis, 0 at the low end and 1 at the high end; `None` if it cannot be shown.
    pub(crate) fn unit(&self, v: f64) -> Option<f64> {
        transform(v, self.log).map(|t| (t - self.lo) / (self.hi - self.lo))
    }
}

fn transform(v: f64, log: bool) -> Option<f64> {
    match (v.is_finite(), log) {
        (true, false) => Some(v),
        (true, true) if v > 0.0 => Some(v.log10()),
        _ => None,
    }
}

/// About five ticks at round values (1, 2 or 5 times a power of ten) within `[lo, hi]`.
fn linear_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let raw = (hi - lo) / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|s| *s >= raw).unwrap_or(10.0 * power);
    let first = (lo / step).ceil();
    (0..20)
        .map(|k| (first + k as f64) * step)
        .take_while(|v| *v <= hi + 1e-9 * step)
        .map(|v| (v, format_tick(v, step)))
        .collect()
}

/// Ticks for a log axis over `[lo, hi]` in log10 units: powers of ten if two or more fall inside, else
/// round values as on a linear axis.
fn log_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let (first, last) = (lo.ceil() as i64, hi.floor() as i64);
    if last > first {
        let every = ((last - first) / 8 + 1) as usize;
        return (first..=last).step_by(every).map(|e| (10f64.powi(e as i32), format_power(e))).collect();
    }
    linear_ticks(10f64.powf(lo), 10f64.powf(hi)).into_iter().filter(|(v, _)| *v > 0.0).collect()
}

/// `v` with as many decimals as `step` needs; scientific notation for very large or small magnitudes.
pub(crate) fn format_tick(v: f64, step: f64) -> String {
    let magnitude = v.abs();
    if magnitude < step * 1e-6 {
        return "0".into();
    }
    let step_exp = (step.log10() + 1e-9).floor() as i64;
    if !(1e-3..1e5).contains(&magnitude) {
        let digits = ((magnitude.log10() + 1e-9).floor() as i64 - step_exp).clamp(0, 6) as usize;
        return format!("{v:.digits$e}");
    }
    let decimals = (-step_exp).clamp(0, 12) as usize;
    format!("{v:.decimals$}")
}

fn format_power(e: i64) -> String {
    match e {
        -3..=4 => format_tick(10f64.powi(e as i32), 10f64.powi(e as i32)),
        _ => format!("1e{e}"),
    }
}

/// The plot area in pixels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    pub(crate) left: i64,
    pub(crate) top: i64,
    pub(crate) width: usize,
    pub(crate) height: usize,
}

impl Frame {
    pub(crate) fn right(&self) -> i64 {
        self.left + self.width as i64 - 1
    }

    pub(crate) fn bottom(&self) -> i64 {
        self.top + self.height as i64 - 1
    }

    /// The column of a point `u` of the way along the x axis.
    pub(crate) fn x(&self, u: f64) -> i64 {
        self.left + (u * (self.width as f64 - 1.0)).round() as i64
    }

    /// The row of a point `u` of the way up the y axis.
    pub(crate) fn y(&self, u: f64) -> i64 {
        self.bottom() - (u * (self.height as f64 - 1.0)).round() as i64
    }

    pub(crate) fn draw_border(&self, canvas: &mut Canvas) {
        canvas.stroke_rect(self.left, self.top, self.width, self.height, INK);
    }
}

/// The words around a plot.
pub(crate) struct Decor<'a> {
    pub(crate) title: &'a str,
    pub(crate) x_label: &'a str,
    pub(crate) y_label: &'a str,
}

/// Lays out and draws the title, axis labels, ticks, grid lines and border, leaving `right_margin` pixels
/// free on the right (for a colour bar or legend). Returns the plot area.
pub(crate) fn draw_axes(canvas: &mut Canvas, decor: &Decor, x: &Axis, y: &Axis, right_margin: usize) -> Frame {
    let label_width = |axis: &Axis| axis.ticks.iter().map(|(_, l)| text::text_size(l, 1).0).max().unwrap_or(0);
    let title_h = if decor.title.is_empty() { 0 } else { GLYPH * TITLE_SCALE + PAD };
    let y_label_w = if decor.y_label.is_empty() { 0 } else { GLYPH + 6 };
    let x_label_h = if decor.x_label.is_empty() { 0 } else { GLYPH + 6 };
    let left = PAD + y_label_w + label_width(y) + 4 + TICK;
    let top = PAD + title_h;
    let right = PAD + right_margin + label_width(x) / 2;
    let bottom = TICK + 4 + GLYPH + x_label_h + PAD;
    let frame = Frame {
        left: left as i64,
        top: top as i64,
        width: canvas.width().saturating_sub(left + right).max(2),
        height: canvas.height().saturating_sub(top + bottom).max(2),
    };
    for (v, label) in &x.ticks {
        let Some(u) = x.unit(*v) else { continue };
        let px = frame.x(u);
        canvas.fill_rect(px, frame.top, 1, frame.height, GRID);
        canvas.fill_rect(px, frame.bottom() + 1, 1, TICK, INK);
        text::draw_text_anchored(canvas, px, frame.bottom() + 1 + (TICK + 4) as i64, Anchor::TopCentre, label, 1, INK);
    }
    for (v, label) in &y.ticks {
        let Some(u) = y.unit(*v) else { continue };
        let py = frame.y(u);
        canvas.fill_rect(frame.left, py, frame.width, 1, GRID);
        canvas.fill_rect(frame.left - TICK as i64, py, TICK, 1, INK);
        text::draw_text_anchored(canvas, frame.left - (TICK + 4) as i64, py, Anchor::CentreRight, label, 1, INK);
    }
    frame.draw_border(canvas);
    let centre_x = frame.left + frame.width as i64 / 2;
    if !decor.title.is_empty() {
        let cx = canvas.width() as i64 / 2;
        text::draw_text_anchored(canvas, cx, PAD as i64, Anchor::TopCentre, decor.title, TITLE_SCALE, INK);
    }
    if !decor.x_label.is_empty() {
        let top = frame.bottom() + 1 + (TICK + 4 + GLYPH + 6) as i64;
        text::draw_text_anchored(canvas, centre_x, top, Anchor::TopCentre, decor.x_label, 1, INK);
    }
    if !decor.y_label.is_empty() {
        let centre_y = frame.top + frame.height as i64 / 2;
        text::draw_text_vertical(canvas, (PAD + GLYPH / 2) as i64, centre_y, decor.y_label, 1, INK);
    }
    frame
}

/// How a legend entry shows its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Swatch {
    Line,
    Dot,
}

const ENTRY_H: usize = 12;
const SWATCH_W: usize = 16;

/// The width and height of a legend box for `entries`.
pub(crate) fn legend_size(entries: &[(Rgb, &str)]) -> (usize, usize) {
    let text_w = entries.iter().map(|(_, name)| text::text_size(name, 1).0).max().unwrap_or(0);
    (5 + SWATCH_W + 4 + text_w + 5, entries.len() * ENTRY_H + 6)
}

/// A boxed legend with its top-left corner at `(left, top)`: one row per entry, a swatch then the name.
pub(crate) fn draw_legend(canvas: &mut Canvas, left: i64, top: i64, entries: &[(Rgb, &str)], swatch: Swatch) {
    let (w, h) = legend_size(entries);
    canvas.fill_rect(left, top, w, h, WHITE);
    canvas.stroke_rect(left, top, w, h, LEGEND_BORDER);
    for (i, (colour, name)) in entries.iter().enumerate() {
        let centre_y = top + 3 + (i * ENTRY_H + ENTRY_H / 2) as i64;
        match swatch {
            Swatch::Line => canvas.fill_rect(left + 5, centre_y - 1, SWATCH_W, 3, *colour),
            Swatch::Dot => canvas.fill_disc(left + 5 + SWATCH_W as i64 / 2, centre_y, 3, *colour),
        }
        let text_left = left + (5 + SWATCH_W + 4) as i64;
        text::draw_text_anchored(canvas, text_left, centre_y, Anchor::CentreLeft, name, 1, INK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: Rgb = [220, 0, 0];
    const BLUE: Rgb = [0, 0, 220];

    /// Pixels of `colour` as `(x, y)`.
    fn pixels_of(c: &Canvas, colour: Rgb) -> Vec<(usize, usize)> {
        (0..c.height())
            .flat_map(|y| (0..c.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == colour)
            .collect()
    }

    fn mean_y(points: &[(usize, usize)], x_range: std::ops::Range<usize>) -> f64 {
        let ys: Vec<f64> = points.iter().filter(|p| x_range.contains(&p.0)).map(|p| p.1 as f64).collect();
        assert!(!ys.is_empty(), "no pixels in columns {x_range:?}");
        ys.iter().sum::<f64>() / ys.len() as f64
    }

    fn two_lines() -> LineChart {
        let mut chart = LineChart::new("Loss").labels("step", "loss").size(400, 300);
        chart.series.push(Series {
            name: "up".into(),
            points: (0..50).map(|i| (i as f64, i as f64)).collect(),
            colour: Some(RED),
        });
        let down = (0..50).map(|i| (i as f64, 49.0 - i as f64)).collect();
        chart.series.push(Series { name: "down".into(), points: down, colour: Some(BLUE) });
        chart
    }

    #[test]
    fn writes_a_png_of_the_requested_size() {
        let path = std::env::temp_dir().join(format!("report-plot-{}.png", std::process::id()));
        two_lines().save(&path).unwrap();
        let loaded = Canvas::load_png(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!((loaded.width(), loaded.height()), (400, 300));
        assert_eq!(loaded, two_lines().render());
    }

    #[test]
    fn series_are_drawn_in_their_colours_and_directions() {
        let c = two_lines().render();
        let (red, blue) = (pixels_of(&c, RED), pixels_of(&c, BLUE));
        assert!(red.len() > 300 && blue.len() > 300, "{} red, {} blue pixels", red.len(), blue.len());
        // Rising line: lower on screen (larger row) at the left than in the middle; falling line the reverse.
        assert!(mean_y(&red, 60..120) > mean_y(&red, 160..220) + 40.0);
        assert!(mean_y(&blue, 60..120) + 40.0 < mean_y(&blue, 160..220));
        // The two lines cross near the middle of the plot area.
        let cross = red.iter().filter(|p| blue.iter().any(|q| q.0 == p.0 && q.1.abs_diff(p.1) <= 3)).count();
        assert!(cross > 0);
    }

    #[test]
    fn log_axis_ticks_are_powers_of_ten() {
        let axis = Axis::fit([0.001, 0.5, 20.0, 0.0, -1.0, f64::NAN], true, 0.0);
        let labels: Vec<&str> = axis.ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["0.001", "0.01", "0.1", "1", "10"]);
        assert!((axis.unit(0.001).unwrap()).abs() < 1e-12 && (axis.unit(20.0).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(axis.unit(0.0), None);
        let narrow = Axis::fit([2.0, 5.0], true, 0.0);
        assert!(narrow.ticks.len() >= 2, "{:?}", narrow.ticks);
    }

    #[test]
    fn tick_labels_are_round() {
        let axis = Axis::fit([0.0, 0.93], false, 0.0);
        let labels: Vec<&str> = axis.ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["0", "0.2", "0.4", "0.6", "0.8"]);
        assert_eq!(format_tick(-0.0, 0.5), "0");
        assert_eq!(format_tick(1500.0, 500.0), "1500");
        assert_eq!(format_tick(3e-5, 1e-5), "3e-5");
        assert_eq!(format_tick(2.5e6, 5e5), "2.5e6");
        assert_eq!(format_power(-7), "1e-7");
    }

    #[test]
    fn awkward_data_does_not_panic() {
        let nan = f64::NAN;
        let cases: Vec<Vec<Vec<(f64, f64)>>> = vec![
            vec![],
            vec![vec![]],
            vec![vec![(3.0, 4.0)]],
            vec![vec![(nan, 1.0), (1.0, nan), (nan, nan)]],
            vec![vec![(0.0, 2.0), (1.0, 2.0), (2.0, 2.0)], vec![(0.0, 0.0)]],
            vec![vec![(1.0, 0.0), (1.0, -5.0), (f64::INFINITY, 1e300)]],
            vec![vec![(0.0, 1.0), (1.0, nan), (2.0, 3.0)]],
        ];
        for (k, case) in cases.into_iter().enumerate() {
            for log_y in [false, true] {
                for (w, h) in [(300, 200), (12, 9), (1, 1)] {
                    let mut chart = LineChart::new("t").labels("x", "y").log_y(log_y).size(w, h);
                    for (i, points) in case.iter().enumerate() {
                        chart.add_series(&format!("s{i}"), points.iter().copied());
                    }
                    let c = chart.render();
                    assert_eq!((c.width(), c.height()), (w, h), "case {k}");
                }
            }
        }
    }

    #[test]
    fn lone_points_get_markers() {
        let mut chart = LineChart::new("").size(200, 150);
        chart.series.push(Series {
            name: String::new(),
            points: vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)],
            colour: Some(RED),
        });
        let red = pixels_of(&chart.render(), RED);
        // Two separate dots (the NaN breaks the line), so nothing is drawn in the middle columns.
        assert!(red.len() >= 2 * 20, "{}", red.len());
        let xs: Vec<usize> = red.iter().map(|p| p.0).collect();
        let (lo, hi) = (*xs.iter().min().unwrap(), *xs.iter().max().unwrap());
        assert!(!xs.iter().any(|&x| x > lo + 10 && x + 10 < hi));
    }
}
