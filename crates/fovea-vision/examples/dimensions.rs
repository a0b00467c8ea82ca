//! 1-D and 3-D convolutions through the library (what `fovea example ecg1d|volume3d` do):
//! a 1-D CNN on generated ECG strips and a 3-D CNN on generated volumes.
//!
//!     cargo run --release -p fovea-vision --example dimensions

use fovea_vision::experiments::{Example, ExampleConfig, ExampleKind};

fn main() -> fovea::Result<()> {
    let config = ExampleConfig { train_size: 1000, test_size: 300, epochs: 3, ..ExampleConfig::default() };
    for kind in [ExampleKind::Ecg1d, ExampleKind::Volume3d] {
        let example = Example::new(kind, &config)?;
        let r = example.train(&config, &mut ())?;
        let per_class: Vec<String> = r.per_class_accuracy.iter().map(|(c, a)| format!("{c} {a:.2}")).collect();
        println!(
            "{}: test accuracy {:.3} (chance {:.2}): {}",
            kind.name(),
            r.test_accuracy,
            r.chance,
            per_class.join(", ")
        );
    }
    Ok(())
}
