//! Detection datasets in the YOLO/darknet layout, so that fovea reads what other tools
//! write and the other way round: `images/` (PNG/JPEG), `labels/<stem>.txt` with one line
//! `class cx cy w h` per object (relative to the picture; no file: no objects), and an
//! optional `classes.txt`, one name per line. For its synthetic shapes fovea also writes
//! `landmarks/<stem>.txt`: per object, in the labels' order, `class x1 y1 ... xK yK`.

use super::boxes::BBox;
use super::shapes::{self, ShapesConfig, LANDMARKS};
use super::yolo::Object;
use crate::image::{load_rgb, resize_bilinear};
use fovea::{Error, Result, Tensor};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// A dataset's pictures and their objects.
pub struct DetectionSet {
    /// the pictures, sorted by path
    pub images: Vec<PathBuf>,
    /// each picture's objects (boxes relative to the picture), in the order of `images`
    pub objects: Vec<Vec<Object>>,
    /// From `classes.txt`, or "0", "1", ... without one (`named` is then false).
    pub classes: Vec<String>,
    /// whether `classes.txt` named the classes
    pub named: bool,
}

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The most classes a dataset without `classes.txt` may use (ImageNet's count): a larger id
/// there is taken for a typing error rather than a reason to build a huge classifier.
pub const MAX_UNNAMED_CLASSES: usize = 1000;

/// Reads one label file: `class cx cy w h` per line (blank lines allowed); errors name the
/// file and line.
pub fn parse_labels(text: &str, path: &Path, classes: Option<usize>) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let at = |msg: String| Error::format(path, format!("line {}: {msg}", n + 1));
        if fields.len() != 5 {
            return Err(at(format!("expected 'class cx cy w h', got {} values", fields.len())));
        }
        let class: usize = fields[0].parse().map_err(|_| at(format!("class '{}' is not a whole number", fields[0])))?;
        match classes {
            Some(c) if class >= c => {
                return Err(at(format!("class {class} is out of range: classes.txt names {c} (0 to {})", c - 1)))
            }
            None if class >= MAX_UNNAMED_CLASSES => {
                return Err(at(format!(
                    "class {class} is out of range: without classes.txt, ids run from 0 to {} \
                     (name the classes in classes.txt, one a line, for more)",
                    MAX_UNNAMED_CLASSES - 1
                )))
            }
            _ => {}
        }
        let mut v = [0f32; 4];
        for (k, f) in fields[1..].iter().enumerate() {
            v[k] = f.parse().map_err(|_| at(format!("'{f}' is not a number")))?;
        }
        let [cx, cy, w, h] = v;
        if !((0.0..=1.0).contains(&cx) && (0.0..=1.0).contains(&cy) && w > 0.0 && w <= 1.0 && h > 0.0 && h <= 1.0) {
            return Err(at(format!("box {cx} {cy} {w} {h} is not inside 0..1 (centre) with a size in (0, 1]")));
        }
        out.push(Object { bbox: BBox::new(cx, cy, w, h), class });
    }
    Ok(out)
}

/// Reads the dataset in `dir`.
pub fn read_dataset(dir: &Path) -> Result<DetectionSet> {
    let images_dir = dir.join("images");
    let entries = std::fs::read_dir(&images_dir).map_err(|e| {
        Error::format(dir, format!("has no readable images/ folder ({e}); expected images/ and labels/"))
    })?;
    let mut images: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e.to_lowercase().as_str()))
        })
        .collect();
    images.sort();
    if images.is_empty() {
        return Err(Error::format(&images_dir, "holds no PNG or JPEG pictures"));
    }
    if !dir.join("labels").is_dir() {
        return Err(Error::format(dir, "has no labels/ folder; expected images/ and labels/"));
    }
    let names_file = dir.join("classes.txt");
    let named: Option<Vec<String>> = if names_file.exists() {
        let text = fovea::budget::read_text(&names_file)?;
        Some(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
    } else {
        None
    };
    let mut objects = Vec::with_capacity(images.len());
    for img in &images {
        // `frame.0001.png` -> `labels/frame.0001.txt`
        let label = dir.join("labels").join(format!("{}.txt", img.file_stem().unwrap_or_default().to_string_lossy()));
        objects.push(if label.exists() {
            let text = fovea::budget::read_text(&label)?;
            parse_labels(&text, &label, named.as_ref().map(Vec::len))?
        } else {
            Vec::new() // a picture without a label file is background
        });
    }
    let has_names = named.is_some();
    let classes = named.unwrap_or_else(|| {
        let n = objects.iter().flatten().map(|o| o.class + 1).max().unwrap_or(1);
        (0..n).map(|c| c.to_string()).collect()
    });
    if classes.is_empty() {
        return Err(Error::format(&names_file, "names no classes"));
    }
    Ok(DetectionSet { images, objects, classes, named: has_names })
}

impl DetectionSet {
    /// The number of pictures.
    pub fn len(&self) -> usize {
        self.images.len()
    }
    /// Whether there are no pictures.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Every picture as `[N, 3, size, size]` in 0..1 (stretched to the square: boxes are
    /// relative, so they stay right), read on all cores.
    pub fn load_pictures(&self, size: usize) -> Result<Tensor> {
        fovea::budget::check_shape(&format!("{} pictures at {size}x{size}", self.len()), &[self.len(), 3, size, size])?;
        let per = 3 * size * size;
        let pictures: Vec<Vec<f32>> = self
            .images
            .par_iter()
            .map(|p| {
                let rgb = load_rgb(p)?;
                let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
                Ok(if h == size && w == size { rgb } else { resize_bilinear(&rgb, size, size)? }.into_vec())
            })
            .collect::<Result<_>>()?;
        let mut data = Vec::with_capacity(self.len() * per);
        for p in pictures {
            data.extend(p);
        }
        Tensor::new(&[self.len(), 3, size, size], data)
    }
}

/// The folders [`write_shapes`] writes, and the extension of its files in each.
const SHAPES_FOLDERS: [(&str, &str); 3] = [("images", "png"), ("labels", "txt"), ("landmarks", "txt")];

/// Removes an earlier [`write_shapes`] dataset from `dir`: its numbered files (and the
/// temporary files of a killed write), after checking that nothing else is there, so that
/// no file it did not write is lost.
fn remove_shapes(dir: &Path) -> Result<()> {
    let mut ours = Vec::new();
    for (sub, extension) in SHAPES_FOLDERS {
        let folder = dir.join(sub);
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&folder, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&folder, e))?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let numbered = name
                .strip_suffix(&format!(".{extension}"))
                .is_some_and(|stem| stem.len() >= 6 && stem.bytes().all(|b| b.is_ascii_digit()));
            if !(path.is_file() && (numbered || fovea::io::is_orphaned_temporary(&name))) {
                return Err(Error::format(
                    &path,
                    "is not a file of a shapes dataset (numbered pictures and labels); replacing one removes only those, so move this first",
                ));
            }
            ours.push(path);
        }
    }
    ours.iter().try_for_each(|p| std::fs::remove_file(p).map_err(|e| Error::io(p, e)))
}

/// Writes `count` synthetic pictures (`shapes::generate(seed, i)`) to `dir` in the darknet
/// layout, with `classes.txt` and the landmarks. A dataset already in `dir` is refused, or
/// with `replace`, removed first (so that the two never mix); files it did not write are
/// never removed.
pub fn write_shapes(dir: &Path, count: usize, seed: u64, config: &ShapesConfig, replace: bool) -> Result<()> {
    config.check()?;
    if replace {
        remove_shapes(dir)?;
    } else if std::fs::read_dir(dir.join("images")).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::format(dir, "already holds a dataset (images/ is not empty); choose another folder"));
    }
    for (sub, _) in SHAPES_FOLDERS {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| Error::io(dir.join(sub), e))?;
    }
    fovea::io::write_atomic(&dir.join("classes.txt"), (shapes::CLASSES.join("\n") + "\n").as_bytes())?;
    (0..count).into_par_iter().try_for_each(|i| -> Result<()> {
        let p = shapes::generate(seed, i as u64, config);
        let stem = format!("{i:06}");
        let mut labels = String::new();
        let mut marks = String::new();
        for (o, points) in p.objects.iter().zip(&p.landmarks) {
            let b = o.bbox;
            labels.push_str(&format!("{} {:.6} {:.6} {:.6} {:.6}\n", o.class, b.cx, b.cy, b.w, b.h));
            marks.push_str(&o.class.to_string());
            for (x, y) in points.iter().take(LANDMARKS) {
                marks.push_str(&format!(" {x:.6} {y:.6}"));
            }
            marks.push('\n');
        }
        // the picture last: an interrupted write never leaves a picture without its labels
        // (a picture without a label file would read as background)
        fovea::io::write_atomic(&dir.join("labels").join(format!("{stem}.txt")), labels.as_bytes())?;
        fovea::io::write_atomic(&dir.join("landmarks").join(format!("{stem}.txt")), marks.as_bytes())?;
        p.canvas.save_png(&dir.join("images").join(format!("{stem}.png")))
    })
}

/// Synthetic pictures in memory, with their objects and landmarks.
pub struct Synthetic {
    /// `[N, 3, size, size]` in 0..1
    pub pictures: Tensor,
    /// each picture's objects (boxes relative to the picture)
    pub objects: Vec<Vec<Object>>,
    /// each object's [`LANDMARKS`] points (x, y), relative to the picture, in the order of
    /// `objects`
    pub landmarks: Vec<Vec<[(f32, f32); LANDMARKS]>>,
}

/// Synthetic pictures `first .. first + count` of `seed`: the pictures [`write_shapes`]
/// writes, without the files.
pub fn shapes_in_memory(first: u64, count: usize, seed: u64, config: &ShapesConfig) -> Result<Synthetic> {
    config.check()?;
    // the drawn 8-bit pictures and their f32 copy
    let what = format!("{count} synthetic pictures of {0}x{0}", config.size);
    fovea::budget::check_shape(&what, &[count, 4, config.size, config.size])?;
    let drawn: Vec<shapes::Picture> =
        (0..count).into_par_iter().map(|i| shapes::generate(seed, first + i as u64, config)).collect();
    let plane = config.size * config.size;
    let mut data = vec![0.0f32; count * 3 * plane];
    for (p, out) in drawn.iter().zip(data.chunks_exact_mut(3 * plane)) {
        for (j, px) in p.canvas.pixels.chunks_exact(3).enumerate() {
            for k in 0..3 {
                out[k * plane + j] = px[k] as f32 / 255.0;
            }
        }
    }
    let (objects, landmarks) = drawn.into_iter().map(|p| (p.objects, p.landmarks)).unzip();
    Ok(Synthetic { pictures: Tensor::new(&[count, 3, config.size, config.size], data)?, objects, landmarks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_lines_are_checked_with_file_and_line() {
        let p = Path::new("labels/a.txt");
        let ok = parse_labels("0 0.5 0.5 0.2 0.4\n\n2 0.1 0.9 0.05 0.1\n", p, Some(3)).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1], Object { bbox: BBox::new(0.1, 0.9, 0.05, 0.1), class: 2 });
        for (text, want) in [
            ("0 0.5 0.5 0.2\n", "line 1: expected 'class cx cy w h'"),
            ("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n", "line 2: class 3 is out of range"),
            ("x 0.5 0.5 0.2 0.2\n", "class 'x' is not a whole number"),
            ("0 0.5 1.5 0.2 0.2\n", "is not inside 0..1"),
            ("0 0.5 0.5 0 0.2\n", "is not inside 0..1"),
            ("0 0.5 abc 0.2 0.2\n", "'abc' is not a number"),
        ] {
            let err = parse_labels(text, p, Some(3)).unwrap_err().to_string();
            assert!(err.contains("labels/a.txt") && err.contains(want), "{err}");
        }
    }
}
