//! What the units learn, through the library (what `fovea visualize patches` does): LeNet-5
//! trained for one epoch, then for 4 units of its pool2 layer the test pictures that excite
//! each most, and the patch of the picture under the unit's receptive field.
//!
//!     cargo run --release -p fovea-vision --example units -- runs/units-example

use fovea::nn::Sequential;
use fovea_vision::data::{self, Split};
use fovea_vision::run::{Run, RunConfig};
use fovea_vision::visualize::{grid, top_patches};

fn main() -> fovea::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "runs/units-example".into());
    let config = RunConfig { epochs: 1, train_size: Some(10_000), ..RunConfig::default() };
    let mut run = Run::start(&config, dir.as_ref(), false, &mut ())?;
    run.fit(&mut ())?;
    let net = run.model.as_any().and_then(|m| m.downcast_ref::<Sequential>()).expect("LeNet-5 is sequential");
    let (test, _) = data::load(&data::FashionMnist::default_dir(), Split::Test, [1, 28, 28], Some(2000))?;
    let (field, units) = top_patches(net, &test, "pool2", 4, 6)?;
    println!("pool2 looks at {0}x{0} pixels, {1} apart", field.size, field.jump);
    for (unit, hits) in units.iter().enumerate() {
        let pictures: Vec<usize> = hits.iter().map(|(hit, _)| hit.image).collect();
        println!("unit {unit}: test pictures {pictures:?}");
    }
    let patches: Vec<_> = units.iter().flatten().map(|(_, patch)| patch.clone()).collect();
    let out = std::path::Path::new(&dir).join("patches.png");
    grid(&patches, 6, 4)?.save_png(&out)?;
    println!("patches in {}", out.display());
    Ok(())
}
