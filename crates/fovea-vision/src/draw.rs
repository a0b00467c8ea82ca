//! A small RGB canvas for pictures the CLI writes: lines, rectangles, points and text
//! in a built-in 5x7 bitmap font (no font files needed).

use fovea::{Error, Result};
use std::path::{Path, PathBuf};

/// A colour: red, green, blue, 0..255.
pub type Rgb = [u8; 3];

/// An RGB picture in memory, 8 bits per channel.
pub struct Canvas {
    /// in pixels
    pub width: usize,
    /// in pixels
    pub height: usize,
    /// row-major RGB triples, `width * height * 3` bytes
    pub pixels: Vec<u8>,
}

/// 5x7 glyphs, one row per byte, the 5 low bits left to right. Lower case is drawn as upper case.
const GLYPHS: &[(char, [u8; 7])] = &[
    ('0', [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110]),
    ('1', [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110]),
    ('2', [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111]),
    ('3', [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110]),
    ('4', [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010]),
    ('5', [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110]),
    ('6', [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110]),
    ('7', [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000]),
    ('8', [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110]),
    ('9', [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100]),
    ('A', [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001]),
    ('B', [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110]),
    ('C', [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110]),
    ('D', [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100]),
    ('E', [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111]),
    ('F', [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000]),
    ('G', [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111]),
    ('H', [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001]),
    ('I', [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110]),
    ('J', [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100]),
    ('K', [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001]),
    ('L', [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111]),
    ('M', [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001]),
    ('N', [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001]),
    ('O', [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110]),
    ('P', [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000]),
    ('Q', [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101]),
    ('R', [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001]),
    ('S', [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110]),
    ('T', [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100]),
    ('U', [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110]),
    ('V', [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100]),
    ('W', [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010]),
    ('X', [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001]),
    ('Y', [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100]),
    ('Z', [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111]),
    ('.', [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100]),
    (',', [0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000]),
    ('-', [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000]),
    ('+', [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000]),
    ('=', [0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000]),
    ('%', [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011]),
    (':', [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000]),
    ('/', [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000]),
    ('(', [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010]),
    (')', [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000]),
    ('_', [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111]),
];

impl Canvas {
    /// A `width` x `height` canvas filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Canvas {
        Canvas { width, height, pixels: background.repeat(width * height) }
    }

    /// A canvas holding the picture `rgb` (`[3, H, W]` in 0..1), to draw on.
    pub fn from_rgb(rgb: &fovea::Tensor) -> Canvas {
        let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
        let d = rgb.data();
        let pixels = (0..h * w).flat_map(|i| (0..3).map(move |c| (d[c * h * w + i] * 255.0).round() as u8)).collect();
        Canvas { width: w, height: h, pixels }
    }

    /// Sets the pixel (x, y); points off the canvas are ignored.
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Fills the `w` x `h` rectangle whose top-left corner is (x, y), clipped to the canvas.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, c);
            }
        }
    }

    /// Outline of a rectangle, `thickness` pixels wide, drawn inwards.
    pub fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, thickness: i64, c: Rgb) {
        for t in 0..thickness {
            self.line(x + t, y + t, x + w - 1 - t, y + t, c);
            self.line(x + t, y + h - 1 - t, x + w - 1 - t, y + h - 1 - t, c);
            self.line(x + t, y + t, x + t, y + h - 1 - t, c);
            self.line(x + w - 1 - t, y + t, x + w - 1 - t, y + h - 1 - t, c);
        }
    }

    /// Bresenham line.
    pub fn line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, c);
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

    /// A filled square dot centred on (x, y).
    pub fn dot(&mut self, x: i64, y: i64, radius: i64, c: Rgb) {
        self.fill_rect(x - radius, y - radius, 2 * radius + 1, 2 * radius + 1, c);
    }

    /// Width in pixels of `text` at `scale`.
    pub fn text_width(text: &str, scale: i64) -> i64 {
        text.chars().count() as i64 * 6 * scale
    }

    /// Draws `text` with its top-left corner at (x, y); unknown characters are blank.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, c: Rgb) {
        for (i, ch) in text.chars().enumerate() {
            let ch = ch.to_ascii_uppercase();
            let Some((_, rows)) = GLYPHS.iter().find(|(g, _)| *g == ch) else {
                continue;
            };
            let ox = x + i as i64 * 6 * scale;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (1 << (4 - col)) != 0 {
                        self.fill_rect(ox + col * scale, y + r as i64 * scale, scale, scale, c);
                    }
                }
            }
        }
    }

    /// The line width that suits this canvas's size: 1 pixel up to 800, then a pixel more
    /// per 400.
    pub fn stroke(&self) -> i64 {
        (self.width.max(self.height) as i64 / 400).max(1)
    }

    /// A box (top-left corner, size, in pixels) outlined with `label` above it, the line
    /// and the text sized to the canvas: how found objects and faces are drawn
    /// (torchvision's `draw_bounding_boxes`).
    pub fn labelled_box(&mut self, x: f64, y: f64, width: f64, height: f64, label: &str, c: Rgb) {
        let (thickness, scale) = (self.stroke(), (self.width.max(self.height) as i64 / 500).max(1));
        let (x, y) = (x.round() as i64, y.round() as i64);
        self.rect(x, y, width.round() as i64, height.round() as i64, thickness, c);
        self.text(x, (y - 8 * scale - thickness).max(0), label, scale, c);
    }

    /// Writes the canvas as a PNG file.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        crate::image::save_rgb_png(path, self.width as u32, self.height as u32, self.pixels.clone())
    }
}

/// `<stem>-<suffix>.png`, the name of the drawing made for `picture`.
fn drawing_name(picture: &Path, suffix: &str) -> String {
    format!("{}-{suffix}.png", picture.file_stem().unwrap_or_default().to_string_lossy())
}

/// Where to draw the result for `picture`: `given` if the caller named a file (replaced if
/// it exists: it was asked for), else `<stem>-<suffix>.png` beside the picture, which must
/// not exist yet, since a file nobody named is never replaced. `setting` names the option
/// that names the file, for the error.
pub fn drawing_path(given: Option<&Path>, picture: &Path, suffix: &str, setting: &'static str) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let path = picture.with_file_name(drawing_name(picture, suffix));
    if path.symlink_metadata().is_ok() {
        return Err(Error::setting(
            setting,
            format!(
                "not given, and {} already exists: the drawing would replace it (name the drawing to replace \
                 it, or draw elsewhere)",
                path.display()
            ),
        ));
    }
    Ok(path)
}

/// Where to draw the results for `pictures`: `<stem>-<suffix>.png` in `folder` (made if
/// missing; files there are replaced, the folder was asked for), else beside each picture
/// as [`drawing_path`] chooses (setting `out`). Two pictures drawn to one file are refused
/// before anything is drawn; every picture is noted as an input, so that a drawing that
/// would replace one of them is refused when it is written.
pub fn drawing_paths(pictures: &[PathBuf], folder: Option<&Path>, suffix: &str) -> Result<Vec<PathBuf>> {
    // every picture is an input before the first drawing is written
    pictures.iter().for_each(|p| fovea::io::note_input(p));
    let mut outputs: Vec<PathBuf> = Vec::new();
    for picture in pictures {
        let out = match folder {
            Some(dir) => dir.join(drawing_name(picture, suffix)),
            None => drawing_path(None, picture, suffix, "out")?,
        };
        if let Some(i) = outputs.iter().position(|o| *o == out) {
            return Err(Error::Invalid(format!(
                "{} and {} would both be drawn to {}",
                pictures[i].display(),
                picture.display(),
                out.display()
            )));
        }
        outputs.push(out);
    }
    if let Some(dir) = folder {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(outputs)
}
