//! The case-study networks through the library (what `fovea summary` and `fovea classify`
//! do): ResNet-50's layer table without running it, then a torchvision state_dict (converted
//! to safetensors, e.g. by `tools/export_torchvision_weights.py`) classifying a photograph with
//! torchvision's ImageNet preprocessing.
//!
//!     cargo run --release -p fovea-vision --example networks -- resnet18 resnet18.safetensors cat.jpg

use fovea::nn::summary::summarize;
use fovea::Rng;

fn main() -> fovea::Result<()> {
    let resnet50 = fovea_vision::models::build("resnet50", 1000, &mut Rng::new(0))?;
    let summary = summarize(resnet50.as_ref(), &[3, 224, 224])?;
    println!("resnet50: {} layers, {} parameters", summary.layers.len(), summary.total_params);

    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch, weights, picture] = args.as_slice() else {
        println!("give an architecture, its torchvision weights (safetensors) and a picture to classify one");
        return Ok(());
    };
    let model = fovea_vision::models::build(arch, 1000, &mut Rng::new(0))?;
    let (tensors, _) = fovea::io::read_safetensors(weights.as_ref())?;
    fovea::nn::load_state_dict(model.as_ref(), &tensors)?;
    let x = fovea_vision::data::imagenet::preprocess(&fovea_vision::image::load_rgb(picture.as_ref())?, 256, 224)?;
    let logits = fovea::no_grad(|| model.forward(&fovea::Var::constant(x.reshape(&[1, 3, 224, 224])?)))?;
    let names = fovea_vision::data::imagenet::class_names();
    for &(class, p) in &fovea_vision::train::top_k(&logits, 5)?[0] {
        println!("  {:<24} {:.2}%", names[class], 100.0 * p);
    }
    Ok(())
}
