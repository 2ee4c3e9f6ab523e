//! Text on a [`Canvas`] with the public-domain 8x8 bitmap font of the `font8x8` crate, scaled by an integer.
//!
//! Every character is a cell of `8 * scale` pixels square, so a string's size is known without drawing it
//! ([`text_size`]). Lines break at `'\n'`. Characters outside ASCII are drawn as `'?'`.

use font8x8::legacy::BASIC_LEGACY;

use super::image::{Canvas, Rgb};

/// The side of one character cell, in font pixels.
pub const GLYPH: usize = 8;

/// Where a point given to [`draw_text_anchored`] sits on the text's box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    TopLeft,
    TopCentre,
    TopRight,
    CentreLeft,
    Centre,
    CentreRight,
}

/// The width and height in pixels of `text` drawn at `scale`.
pub fn text_size(text: &str, scale: usize) -> (usize, usize) {
    let cols = text.split('\n').map(|line| line.chars().count()).max().unwrap_or(0);
    let rows = text.split('\n').count();
    (cols * GLYPH * scale, rows * GLYPH * scale)
}

/// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `scale` x `scale` square, clipped to
/// the canvas. Only the glyphs' set pixels are drawn: the background shows through.
pub fn draw_text(canvas: &mut Canvas, x: i64, y: i64, text: &str, scale: usize, colour: Rgb) {
    let cell = (GLYPH * scale) as i64;
    for (row, line) in text.split('\n').enumerate() {
        for (col, ch) in line.chars().enumerate() {
            let (gx, gy) = (x + col as i64 * cell, y + row as i64 * cell);
            for_each_set_pixel(ch, |px, py| {
                canvas.fill_rect(gx + (px * scale) as i64, gy + (py * scale) as i64, scale, scale, colour)
            });
        }
    }
}

/// Draws `text` so that `anchor` of its box lands on `(x, y)`.
pub fn draw_text_anchored(canvas: &mut Canvas, x: i64, y: i64, anchor: Anchor, text: &str, scale: usize, colour: Rgb) {
    let (w, h) = text_size(text, scale);
    let (w, h) = (w as i64, h as i64);
    let (left, top) = match anchor {
        Anchor::TopLeft => (x, y),
        Anchor::TopCentre => (x - w / 2, y),
        Anchor::TopRight => (x - w, y),
        Anchor::CentreLeft => (x, y - h / 2),
        Anchor::Centre => (x - w / 2, y - h / 2),
        Anchor::CentreRight => (x - w, y - h / 2),
    };
    draw_text(canvas, left, top, text, scale, colour);
}

/// Draws one line of `text` turned a quarter anticlockwise (reading bottom to top, as a y-axis label), centred
/// on `(cx, cy)`.
pub fn draw_text_vertical(canvas: &mut Canvas, cx: i64, cy: i64, text: &str, scale: usize, colour: Rgb) {
    let (len, cell) = (text.chars().count() as i64, (GLYPH * scale) as i64);
    let (left, bottom) = (cx - cell / 2, cy + len * cell / 2);
    for (i, ch) in text.chars().enumerate() {
        let glyph_bottom = bottom - i as i64 * cell;
        // Font pixel (px, py) turns to (py, GLYPH - 1 - px) in the rotated cell.
        for_each_set_pixel(ch, |px, py| {
            let (rx, ry) = (py as i64, glyph_bottom - cell + ((GLYPH - 1 - px) * scale) as i64);
            canvas.fill_rect(left + rx * scale as i64, ry, scale, scale, colour)
        });
    }
}

/// `canvas` under a `title` line of text at `scale`, centred, on a band of `background`.
pub fn titled(canvas: &Canvas, title: &str, scale: usize, colour: Rgb, background: Rgb) -> Canvas {
    let (tw, th) = text_size(title, scale);
    let pad = 2 * scale;
    let width = canvas.width().max(tw + 2 * pad);
    let mut out = Canvas::new(width, canvas.height() + th + 2 * pad, background);
    draw_text_anchored(&mut out, width as i64 / 2, pad as i64, Anchor::TopCentre, title, scale, colour);
    out.blit(canvas, ((width - canvas.width()) / 2) as i64, (th + 2 * pad) as i64);
    out
}

/// Calls `f(x, y)` for each set pixel of `ch`'s glyph, `x` the column and `y` the row within the 8x8 cell.
fn for_each_set_pixel(ch: char, mut f: impl FnMut(usize, usize)) {
    let code = if ch.is_ascii() { ch as usize } else { '?' as usize };
    for (y, bits) in BASIC_LEGACY[code].iter().enumerate() {
        for x in 0..GLYPH {
            if bits & (1 << x) != 0 {
                f(x, y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::image::{BLACK, WHITE};

    /// The bounding box `(x0, y0, x1, y1)` (inclusive) of pixels of `colour`, if any.
    fn ink_box(c: &Canvas, colour: Rgb) -> Option<(usize, usize, usize, usize)> {
        let mut found = None;
        for y in 0..c.height() {
            for x in 0..c.width() {
                if c.get(x, y) == colour {
                    let (x0, y0, x1, y1) = found.unwrap_or((x, y, x, y));
                    found = Some((x0.min(x), y0.min(y), x1.max(x), y1.max(y)));
                }
            }
        }
        found
    }

    #[test]
    fn text_lands_inside_its_box() {
        let mut c = Canvas::new(100, 60, BLACK);
        draw_text(&mut c, 10, 20, "Hi 42", 2, WHITE);
        let (w, h) = text_size("Hi 42", 2);
        assert_eq!((w, h), (80, 16));
        let (x0, y0, x1, y1) = ink_box(&c, WHITE).expect("text drew nothing");
        assert!(x0 >= 10 && y0 >= 20 && x1 < 10 + w && y1 < 20 + h, "{:?}", (x0, y0, x1, y1));
        // The ink spans most of the box: 'H' starts near the left, '2' ends near the right.
        assert!(x0 < 14 && x1 > 10 + w - 8 && y1 - y0 >= 10, "{:?}", (x0, y0, x1, y1));
        // Scaling by 2 draws squares: every ink run across a row has even length.
        let row: Vec<bool> = (0..100).map(|x| c.get(x, y0) == WHITE).collect();
        let runs = row.split(|&on| !on).filter(|r| !r.is_empty());
        assert!(runs.clone().count() > 0 && runs.clone().all(|r| r.len() % 2 == 0));
    }

    #[test]
    fn glyphs_differ_and_unknown_characters_draw_a_question_mark() {
        let draw = |s: &str| {
            let mut c = Canvas::new(8, 8, BLACK);
            draw_text(&mut c, 0, 0, s, 1, WHITE);
            c
        };
        assert_ne!(draw("1"), draw("7"));
        assert_eq!(draw("é"), draw("?"));
        assert!(ink_box(&draw(" "), WHITE).is_none());
    }

    #[test]
    fn anchors_and_lines_move_the_box() {
        let mut c = Canvas::new(80, 80, BLACK);
        draw_text_anchored(&mut c, 40, 40, Anchor::Centre, "ab\ncd", 1, WHITE);
        let (x0, y0, x1, y1) = ink_box(&c, WHITE).unwrap();
        assert!(x0 >= 32 && x1 < 48 && y0 >= 32 && y1 < 48, "{:?}", (x0, y0, x1, y1));
        assert!(y1 >= 40, "the second line is drawn below the first");
        let mut r = Canvas::new(80, 80, BLACK);
        draw_text_anchored(&mut r, 80, 0, Anchor::TopRight, "xyz", 1, WHITE);
        let (x0, _, x1, y1) = ink_box(&r, WHITE).unwrap();
        assert!(x0 >= 56 && x1 < 80 && y1 < 8);
    }

    #[test]
    fn vertical_text_is_a_turned_column() {
        let mut c = Canvas::new(40, 60, BLACK);
        draw_text_vertical(&mut c, 20, 30, "Loss", 1, WHITE);
        let (x0, y0, x1, y1) = ink_box(&c, WHITE).unwrap();
        assert!(x0 >= 16 && x1 < 24 && y0 >= 14 && y1 < 46, "{:?}", (x0, y0, x1, y1));
        assert!(y1 - y0 > 20, "four characters stack up the column");
        // 'L' turned anticlockwise has its foot on the right edge at the bottom of the column.
        let mut l = Canvas::new(8, 8, BLACK);
        draw_text_vertical(&mut l, 4, 4, "L", 1, WHITE);
        let mut upright = Canvas::new(8, 8, BLACK);
        draw_text(&mut upright, 0, 0, "L", 1, WHITE);
        for y in 0..8 {
            for x in 0..8 {
                assert_eq!(l.get(y, 7 - x), upright.get(x, y), "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn titled_adds_a_band_above() {
        let body = Canvas::new(30, 10, [1, 1, 1]);
        let t = titled(&body, "Reconstruction", 1, WHITE, BLACK);
        assert_eq!(t.width(), 14 * 8 + 4);
        assert_eq!(t.height(), 10 + 8 + 4);
        assert_eq!(t.get(t.width() / 2, t.height() - 1), [1, 1, 1]);
        assert!(ink_box(&t, WHITE).unwrap().3 < 12);
    }
}
