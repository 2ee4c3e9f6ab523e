//! RGB images: an in-memory [`Canvas`], PNG files, planar float images, and grids of equally sized tiles.
//!
//! Coordinates are `(x, y)` with `x` the column and `y` the row, `(0, 0)` at the top left. Drawing calls take
//! signed coordinates and clip silently to the canvas, so shapes may hang over its edge; reading and writing a
//! single pixel with [`Canvas::get`]/[`Canvas::set`] panics outside it.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use ndarray::ArrayView3;

/// One RGB colour, 8 bits a channel.
pub type Rgb = [u8; 3];

pub const BLACK: Rgb = [0, 0, 0];
pub const WHITE: Rgb = [255, 255, 255];

/// An RGB image, row-major, three bytes a pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A `width` x `height` canvas filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Self {
        let pixels = background.iter().copied().cycle().take(3 * width * height).collect();
        Canvas { width, height, pixels }
    }

    /// Wraps row-major RGB bytes. Panics unless `rgb.len() == 3 * width * height`.
    pub fn from_rgb(width: usize, height: usize, rgb: Vec<u8>) -> Self {
        assert_eq!(
            rgb.len(),
            3 * width * height,
            "Canvas::from_rgb: {width}x{height} RGB needs {} bytes",
            3 * width * height
        );
        Canvas { width, height, pixels: rgb }
    }

    /// A planar `[3, height, width]` float image in [0, 1] as RGB. Values are clamped to [0, 1]; NaN is black.
    /// Panics unless `planar.len() == 3 * height * width`.
    pub fn from_planar(planar: &[f32], height: usize, width: usize) -> Self {
        let plane = height * width;
        assert_eq!(planar.len(), 3 * plane, "Canvas::from_planar: [3, {height}, {width}] needs {} values", 3 * plane);
        let mut pixels = Vec::with_capacity(3 * plane);
        for i in 0..plane {
            pixels.extend((0..3).map(|c| unit_to_byte(planar[c * plane + i])));
        }
        Canvas { width, height, pixels }
    }

    /// A `[channels, height, width]` array in [0, 1] as RGB: three channels as they are, one channel as grey.
    /// Values are clamped as in [`Canvas::from_planar`]. Panics on any other channel count.
    pub fn from_array(image: ArrayView3<f32>) -> Self {
        let (channels, height, width) = image.dim();
        assert!(
            channels == 1 || channels == 3,
            "Canvas::from_array: need 1 or 3 channels, got shape {:?}",
            image.shape()
        );
        let mut pixels = Vec::with_capacity(3 * height * width);
        for y in 0..height {
            for x in 0..width {
                pixels.extend((0..3).map(|c| unit_to_byte(image[[c.min(channels - 1), y, x]])));
            }
        }
        Canvas { width, height, pixels }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// The row-major RGB bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The colour at `(x, y)`. Panics outside the canvas.
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = self.index(x, y);
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Sets the colour at `(x, y)`. Panics outside the canvas.
    pub fn set(&mut self, x: usize, y: usize, colour: Rgb) {
        let i = self.index(x, y);
        self.pixels[i..i + 3].copy_from_slice(&colour);
    }

    /// Sets the colour at `(x, y)` if that is on the canvas, else does nothing.
    pub fn put(&mut self, x: i64, y: i64, colour: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.set(x as usize, y as usize, colour);
        }
    }

    /// Fills the `w` x `h` rectangle whose top-left corner is `(x, y)`, clipped to the canvas.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: usize, h: usize, colour: Rgb) {
        let (x0, x1) = clip(x, w, self.width);
        let (y0, y1) = clip(y, h, self.height);
        for row in y0..y1 {
            for col in x0..x1 {
                self.set(col, row, colour);
            }
        }
    }

    /// The one-pixel outline of the `w` x `h` rectangle at `(x, y)`.
    pub fn stroke_rect(&mut self, x: i64, y: i64, w: usize, h: usize, colour: Rgb) {
        if w == 0 || h == 0 {
            return;
        }
        let (right, bottom) = (x + w as i64 - 1, y + h as i64 - 1);
        self.fill_rect(x, y, w, 1, colour);
        self.fill_rect(x, bottom, w, 1, colour);
        self.fill_rect(x, y, 1, h, colour);
        self.fill_rect(right, y, 1, h, colour);
    }

    /// A straight line from `(x0, y0)` to `(x1, y1)`, both ends included (Bresenham), `thickness` pixels wide.
    pub fn draw_line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), thickness: usize, colour: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = ((x1 - x0).signum(), (y1 - y0).signum());
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let t = thickness.max(1);
        let offset = (t as i64 - 1) / 2;
        loop {
            self.fill_rect(x - offset, y - offset, t, t, colour);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// A filled disc of radius `r` centred on `(cx, cy)`.
    pub fn fill_disc(&mut self, cx: i64, cy: i64, r: i64, colour: Rgb) {
        for dy in -r..=r {
            for dx in -r..=r {
                if dx * dx + dy * dy <= r * r + r / 2 {
                    self.put(cx + dx, cy + dy, colour);
                }
            }
        }
    }

    /// Copies `other` onto this canvas with its top-left corner at `(x, y)`, clipped.
    pub fn blit(&mut self, other: &Canvas, x: i64, y: i64) {
        for row in 0..other.height {
            for col in 0..other.width {
                self.put(x + col as i64, y + row as i64, other.get(col, row));
            }
        }
    }

    /// Each pixel repeated `factor` times across and down (nearest neighbour). Panics if `factor` is 0.
    pub fn upscale(&self, factor: usize) -> Canvas {
        assert!(factor > 0, "Canvas::upscale: factor must be positive");
        let mut out = Canvas::new(self.width * factor, self.height * factor, BLACK);
        for y in 0..out.height {
            for x in 0..out.width {
                out.set(x, y, self.get(x / factor, y / factor));
            }
        }
        out
    }

    /// Writes the canvas to a PNG file.
    pub fn save_png(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "image too large for PNG");
        let width = u32::try_from(self.width).map_err(|_| too_big())?;
        let height = u32::try_from(self.height).map_err(|_| too_big())?;
        save_png(path, width, height, &self.pixels)
    }

    /// Reads a PNG file of any colour type at 8 or 16 bits, as RGB (alpha is dropped, 16 bits cut to 8).
    pub fn load_png(path: impl AsRef<Path>) -> io::Result<Canvas> {
        let path = path.as_ref();
        let name = |e: io::Error| io::Error::new(e.kind(), format!("reading PNG {}: {e}", path.display()));
        let mut decoder = png::Decoder::new(BufReader::new(File::open(path).map_err(name)?));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(|e| name(e.into()))?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buf).map_err(|e| name(e.into()))?;
        let channels = frame.color_type.samples();
        let (width, height) = (frame.width as usize, frame.height as usize);
        let mut pixels = Vec::with_capacity(3 * width * height);
        for y in 0..height {
            let line = &buf[y * frame.line_size..];
            for x in 0..width {
                let px = &line[x * channels..(x + 1) * channels];
                match channels {
                    1 | 2 => pixels.extend([px[0]; 3]),
                    _ => pixels.extend(&px[..3]),
                }
            }
        }
        Ok(Canvas { width, height, pixels })
    }

    fn index(&self, x: usize, y: usize) -> usize {
        assert!(x < self.width && y < self.height, "Canvas: pixel ({x}, {y}) outside {}x{}", self.width, self.height);
        3 * (y * self.width + x)
    }
}

/// Writes `width` x `height` row-major RGB bytes to a PNG file. Errors name the path.
pub fn save_png(path: impl AsRef<Path>, width: u32, height: u32, rgb: &[u8]) -> io::Result<()> {
    let path = path.as_ref();
    let name = |e: io::Error| io::Error::new(e.kind(), format!("writing PNG {}: {e}", path.display()));
    let expected = 3 * width as usize * height as usize;
    if rgb.len() != expected || width == 0 || height == 0 {
        let msg = format!("{width}x{height} RGB needs {expected} bytes and a non-zero size, got {} bytes", rgb.len());
        return Err(name(io::Error::new(io::ErrorKind::InvalidInput, msg)));
    }
    // Encoded in memory, then written atomically: a reader never sees half an image.
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = encoder.write_header().map_err(|e| name(e.into()))?;
    writer.write_image_data(rgb).map_err(|e| name(e.into()))?;
    writer.finish().map_err(|e| name(e.into()))?;
    crate::files::write_atomic(path, bytes).map_err(name)
}

/// How [`grid`] lays tiles out.
#[derive(Clone, Copy, Debug)]
pub struct GridStyle {
    /// Background pixels between tiles and around the border, counted after upscaling.
    pub spacing: usize,
    /// Integer nearest-neighbour upscaling of every tile (1 keeps the size).
    pub scale: usize,
    pub background: Rgb,
}

impl Default for GridStyle {
    fn default() -> Self {
        GridStyle { spacing: 2, scale: 1, background: WHITE }
    }
}

/// Tiles rows of equally sized images, e.g. one row per test image: input, reconstruction, then each set
/// element's decoded image. Rows may differ in length; short rows leave background. Panics if tiles differ
/// in size. With no tiles at all the result is a blank canvas of the border alone (at least 1x1).
pub fn grid(rows: &[Vec<Canvas>], style: GridStyle) -> Canvas {
    let scale = style.scale.max(1);
    let first = rows.iter().flatten().next();
    let (tile_w, tile_h) = first.map_or((0, 0), |c| (c.width, c.height));
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let (step_x, step_y) = (tile_w * scale + style.spacing, tile_h * scale + style.spacing);
    let width = (cols * step_x + style.spacing).max(1);
    let height = (rows.len() * step_y + style.spacing).max(1);
    let mut out = Canvas::new(width, height, style.background);
    for (r, row) in rows.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            assert!(
                (tile.width, tile.height) == (tile_w, tile_h),
                "grid: tile ({r}, {c}) is {}x{}, the first is {tile_w}x{tile_h}",
                tile.width,
                tile.height
            );
            let scaled = if scale == 1 { tile.clone() } else { tile.upscale(scale) };
            out.blit(&scaled, (style.spacing + c * step_x) as i64, (style.spacing + r * step_y) as i64);
        }
    }
    out
}

/// Tiles a flat list of images `cols` to a row, filling rows left to right.
pub fn tile(images: &[Canvas], cols: usize, style: GridStyle) -> Canvas {
    let rows: Vec<Vec<Canvas>> = images.chunks(cols.max(1)).map(<[Canvas]>::to_vec).collect();
    grid(&rows, style)
}

fn unit_to_byte(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// The part of `[start, start + len)` inside `[0, limit)`, as a half-open range.
fn clip(start: i64, len: usize, limit: usize) -> (usize, usize) {
    let lo = start.clamp(0, limit as i64) as usize;
    let hi = (start + len as i64).clamp(0, limit as i64) as usize;
    (lo, hi.max(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("report-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn pattern(width: usize, height: usize) -> Canvas {
        let rgb = (0..3 * width * height).map(|i| (i * 37 % 251) as u8).collect();
        Canvas::from_rgb(width, height, rgb)
    }

    #[test]
    fn png_round_trip_keeps_every_pixel() {
        let image = pattern(13, 7);
        let path = scratch("round_trip.png");
        image.save_png(&path).unwrap();
        // Decode with the png crate directly, not through our loader.
        let mut reader = png::Decoder::new(File::open(&path).unwrap()).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (13, 7));
        assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
        assert_eq!(&buf[..info.buffer_size()], image.pixels());
        assert_eq!(Canvas::load_png(&path).unwrap(), image);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn errors_name_the_path() {
        let path = scratch("no/such/dir/x.png");
        let err = Canvas::new(2, 2, BLACK).save_png(&path).unwrap_err();
        assert!(err.to_string().contains("no/such/dir/x.png"), "{err}");
        let err = save_png(scratch("short.png"), 2, 2, &[0; 5]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("short.png"), "{err}");
        let err = Canvas::load_png(scratch("missing.png")).unwrap_err();
        assert!(err.to_string().contains("missing.png"), "{err}");
    }

    #[test]
    fn planar_floats_are_clamped_and_interleaved() {
        // [3, 1, 2]: red plane, green plane, blue plane.
        let planar = [0.0, 1.5, 0.5, -1.0, f32::NAN, 1.0];
        let c = Canvas::from_planar(&planar, 1, 2);
        assert_eq!(c.get(0, 0), [0, 128, 0]);
        assert_eq!(c.get(1, 0), [255, 0, 255]);
        let array = ndarray::Array3::from_shape_vec((3, 1, 2), planar.to_vec()).unwrap();
        assert_eq!(Canvas::from_array(array.view()), c);
        let grey = ndarray::Array3::from_elem((1, 2, 2), 0.25f32);
        assert_eq!(Canvas::from_array(grey.view()).get(1, 1), [64, 64, 64]);
    }

    #[test]
    fn grid_places_upscaled_tiles_with_spacing() {
        let red = Canvas::new(2, 3, [255, 0, 0]);
        let green = Canvas::new(2, 3, [0, 255, 0]);
        let style = GridStyle { spacing: 1, scale: 2, background: [9, 9, 9] };
        let g = grid(&[vec![red.clone(), green.clone()], vec![green]], style);
        // Two columns of 4-pixel tiles and three spacings; two rows of 6-pixel tiles and three spacings.
        assert_eq!((g.width(), g.height()), (2 * 4 + 3, 2 * 6 + 3));
        assert_eq!(g.get(0, 0), [9, 9, 9]);
        assert_eq!(g.get(1, 1), [255, 0, 0]);
        assert_eq!(g.get(4, 6), [255, 0, 0]);
        assert_eq!(g.get(5, 6), [9, 9, 9]);
        assert_eq!(g.get(6, 1), [0, 255, 0]);
        assert_eq!(g.get(1, 8), [0, 255, 0]);
        assert_eq!(g.get(6, 8), [9, 9, 9], "the short second row leaves background");
        let t = tile(&[red.clone(), red.clone(), red], 2, style);
        assert_eq!((t.width(), t.height()), (g.width(), g.height()));
        assert_eq!(grid(&[], style).pixels().len(), 3);
    }

    #[test]
    #[should_panic(expected = "grid: tile (0, 1) is 3x3")]
    fn grid_rejects_mixed_sizes() {
        grid(&[vec![Canvas::new(2, 2, BLACK), Canvas::new(3, 3, BLACK)]], GridStyle::default());
    }

    #[test]
    fn drawing_clips_at_the_edges() {
        let mut c = Canvas::new(5, 5, BLACK);
        c.fill_rect(-2, 3, 4, 10, WHITE);
        c.draw_line((-3, -3), (10, 10), 1, [1, 2, 3]);
        c.fill_disc(4, 0, 2, [7, 7, 7]);
        assert_eq!(c.get(0, 4), WHITE);
        assert_eq!(c.get(2, 4), BLACK);
        assert_eq!(c.get(2, 2), [1, 2, 3]);
        assert_eq!(c.get(3, 1), [7, 7, 7]);
        let mut r = Canvas::new(4, 4, BLACK);
        r.stroke_rect(0, 0, 4, 4, WHITE);
        assert_eq!((r.get(3, 3), r.get(0, 2), r.get(1, 1)), (WHITE, WHITE, BLACK));
    }
}
