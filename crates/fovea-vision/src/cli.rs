//! The command line (feature `cli`): the configurations derive `clap::Args`, so that a
//! program can take fovea's settings as its own options, with these docs as their help;
//! the value parsers for number options they use (NaN, infinities and values outside an
//! option's range are refused with the range in the message; clap adds the option's name
//! and value); and [`Console`], how a training run looks on a terminal.

/// f32 or f64, from an f64 that must stay finite in it.
pub trait Real: Copy + Into<f64> {
    /// `v` as this type, if it is finite in it.
    fn from_f64(v: f64) -> Option<Self>;
}
impl Real for f32 {
    fn from_f64(v: f64) -> Option<f32> {
        Some(v as f32).filter(|v| v.is_finite())
    }
}
impl Real for f64 {
    fn from_f64(v: f64) -> Option<f64> {
        Some(v).filter(|v| v.is_finite())
    }
}

fn parse<T: Real>(s: &str, ok: impl Fn(f64) -> bool, range: &str) -> Result<T, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("not a number; {range}"))?;
    // the range holds for the value as stored: 1e-50 is 0 as an f32
    T::from_f64(v).filter(|&t| ok(t.into())).ok_or_else(|| range.to_string())
}
/// Above 0 (learning rates, weights of costs).
pub fn positive<T: Real>(s: &str) -> Result<T, String> {
    parse(s, |v| v > 0.0, "must be a finite number above 0")
}
/// Above 0 and at most 1: a step on pixels in 0..1.
pub fn learning_rate_on_pixels(s: &str) -> Result<f32, String> {
    parse(s, |v| v > 0.0 && v <= 1.0, "must be above 0 and at most 1 (the pixels are in 0..1)")
}
/// 0 or more (weight decay, margins, distances).
pub fn non_negative<T: Real>(s: &str) -> Result<T, String> {
    parse(s, |v| v >= 0.0, "must be a finite number, 0 or more")
}
/// From 0 to 1 (scores, probabilities, IoU, momentum).
pub fn fraction<T: Real>(s: &str) -> Result<T, String> {
    parse(s, |v| (0.0..=1.0).contains(&v), "must be from 0 to 1")
}
/// A count of at least 1.
pub fn count(s: &str) -> Result<usize, String> {
    whole(1, usize::MAX)(s)
}
/// A whole number from `lo` to `hi` (`usize::MAX`: no upper end).
pub fn whole(lo: usize, hi: usize) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |s| {
        s.trim().parse::<usize>().ok().filter(|n| (lo..=hi).contains(n)).ok_or_else(|| match hi {
            usize::MAX => format!("must be a whole number, {lo} or more"),
            _ => format!("must be a whole number from {lo} to {hi}"),
        })
    }
}

/// A progress bar as the `fovea` tool shows it: `prefix [=====>    ] 1200/60000 2300/s eta
/// 20s msg` on stderr; hidden when `hidden` (JSON output).
pub fn progress_bar(len: usize, hidden: bool, prefix: String) -> indicatif::ProgressBar {
    let bar = if hidden { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(len as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// How a training run looks on a terminal, for every trainer of this crate: a progress bar
/// per epoch and a line per epoch (`epoch N/M: <record>`) on stderr; or, with `json`, one
/// JSON object per epoch on stdout and nothing else.
pub struct Console {
    /// JSON lines instead of bars and text.
    pub json: bool,
    /// Epochs in all (0: not known yet).
    pub epochs: usize,
    /// Items an epoch goes through.
    pub len: usize,
    /// What the epochs are of (a model's name and a space), or nothing.
    pub label: String,
    bar: Option<(String, indicatif::ProgressBar)>,
}

impl Console {
    /// A console for `epochs` epochs (0: not known yet) of `len` items each.
    pub fn new(json: bool, epochs: usize, len: usize) -> Console {
        Console { json, epochs, len, label: String::new(), bar: None }
    }

    /// Shows `done` items of `epoch` and `message` on the epoch's bar.
    pub fn update(&mut self, epoch: usize, done: usize, message: String) {
        // an experiment's curves tell their epoch count only at the end of one
        let of = if self.epochs > 0 { format!("/{}", self.epochs) } else { String::new() };
        let key = format!("{}epoch {epoch}{of}", self.label);
        if self.bar.as_ref().is_none_or(|(k, _)| *k != key) {
            self.bar = Some((key.clone(), progress_bar(self.len, self.json, key)));
        }
        let (_, bar) = self.bar.as_ref().expect("made above");
        bar.set_position(done as u64);
        bar.set_message(message);
    }

    /// Clears the epoch's bar.
    pub fn finish(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// Ends epoch `epoch`: clears its bar, then prints `record` as a JSON line or as
    /// `epoch N/M: <record>` on stderr.
    pub fn end_epoch(&mut self, epoch: usize, record: &(impl serde::Serialize + std::fmt::Display)) {
        self.finish();
        if self.json {
            println!("{}", serde_json::to_string(record).expect("records serialise"));
        } else {
            eprintln!("{}epoch {epoch}/{}: {record}", self.label, self.epochs);
        }
    }

    /// A line about the run on stderr, unless the output is JSON.
    pub fn note(&self, line: impl std::fmt::Display) {
        if !self.json {
            eprintln!("{line}");
        }
    }
}

impl crate::run::RunObserver for Console {
    fn note(&mut self, line: &str) {
        Console::note(self, line);
    }
    fn batch(&mut self, epoch: usize, p: &crate::train::Progress) {
        self.update(epoch, p.seen, format!("loss {:.4} acc {:.4}", p.loss(), p.accuracy()));
    }
    fn epoch(&mut self, m: &crate::train::EpochMetrics) {
        self.end_epoch(m.epoch, m);
    }
}

impl crate::detect::YoloObserver for Console {
    fn ready(&mut self, d: &crate::detect::YoloData) {
        self.len = d.train_pictures;
        self.note(d);
    }
    fn batch(&mut self, epoch: usize, seen: usize, loss: f32) {
        self.update(epoch, seen, format!("loss {loss:.4}"));
    }
    fn epoch(&mut self, e: &crate::detect::detector::DetectorEpoch) {
        self.end_epoch(e.epoch, e);
    }
}

impl crate::face::training::EmbeddingObserver for Console {
    fn start(&mut self, s: &crate::face::training::EmbeddingSetup) {
        if self.json {
            let line =
                serde_json::json!({"baselines": s.baselines, "held_out": s.held_out, "test_pictures": s.test_pictures});
            println!("{line}");
        }
        self.note(s);
        self.len = s.train_pictures;
    }
    fn batch(&mut self, epoch: usize, p: &crate::face::triplet::EmbeddingProgress) {
        self.update(epoch, p.images, format!("loss {:.4} active {:.0}%", p.loss(), 100.0 * p.active_fraction()));
    }
    fn epoch(&mut self, e: &crate::face::triplet::EmbeddingEpoch) {
        self.end_epoch(e.epoch, e);
    }
}

/// Of long curves (over 10 epochs), every tenth epoch and the last are printed as text.
impl crate::experiments::CurveObserver for Console {
    fn batch(&mut self, model: &str, epoch: usize, p: &crate::train::Progress, total: usize) {
        (self.label, self.len) = (format!("{model} "), total);
        self.update(epoch, p.seen, format!("train error {:.3}", 1.0 - p.accuracy()));
    }
    fn epoch(&mut self, c: &crate::experiments::CurvePoint) {
        self.epochs = c.epochs;
        match c.epoch == c.epochs || c.epochs <= 10 || c.epoch.is_multiple_of(10) || self.json {
            true => self.end_epoch(c.epoch, c),
            false => self.finish(),
        }
    }
}
