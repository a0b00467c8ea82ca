//! `fovea train` through the library: LeNet-5 on the repository's Fashion-MNIST, a
//! checkpoint, metrics.csv and plot.png in the run folder after each epoch.
//!
//!     cargo run --release -p fovea-vision --example train -- runs/example

use fovea_vision::run::{Run, RunConfig, RunObserver};
use fovea_vision::train::EpochMetrics;

struct Print;

impl RunObserver for Print {
    fn epoch(&mut self, m: &EpochMetrics) {
        println!("epoch {}: test accuracy {:.2}% ({:.1} s)", m.epoch, 100.0 * m.test_accuracy, m.seconds);
    }
}

fn main() -> fovea::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "runs/example".into());
    let config = RunConfig { epochs: 2, train_size: Some(10_000), ..RunConfig::default() };
    // a folder that already holds files is refused: nothing saved is replaced
    let mut run = Run::start(&config, dir.as_ref(), false, &mut Print)?;
    run.fit(&mut Print)?;
    // the same run, one epoch further, from its folder
    let checkpoint = fovea_vision::train::load_checkpoint(dir.as_ref())?;
    let changes = fovea_vision::run::ResumeChanges { epochs: Some(3), ..Default::default() };
    Run::resume(dir.as_ref(), checkpoint, &changes)?.fit(&mut Print)
}
