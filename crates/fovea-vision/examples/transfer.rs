//! Transfer learning through the library (what `fovea experiment transfer` and `fovea train
//! --init --freeze --cache-features` do): LeNet-5 pretrained on Fashion-MNIST's classes 0-4,
//! then the other five learnt from 20 pictures each, from scratch, with the pretrained
//! layers frozen (trained on their cached outputs), and fine-tuned.
//!
//!     cargo run --release -p fovea-vision --example transfer -- runs/transfer-example

use fovea_vision::experiments::{transfer_comparison, TransferConfig};

fn main() -> fovea::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "runs/transfer-example".into());
    let config = TransferConfig { per_class: 20, pretrain_epochs: 1, epochs: 10, ..TransferConfig::default() };
    let r = transfer_comparison(&config, dir.as_ref(), false, &mut ())?;
    println!("pretrained on classes 0-4: test accuracy {:.3}", r.pretrain_test_accuracy);
    println!(
        "classes 5-9 from 20 pictures each: from scratch {:.3}, frozen up to {} {:.3}, fine-tuned {:.3}",
        r.scratch_test_accuracy, config.freeze, r.frozen_test_accuracy, r.finetuned_test_accuracy
    );
    println!(
        "the frozen variant: {:.2} s on cached features, {:.2} s through the frozen layers (same result: {})",
        r.frozen_cached_seconds, r.frozen_uncached_seconds, r.cache_gives_the_same_result
    );
    Ok(())
}
