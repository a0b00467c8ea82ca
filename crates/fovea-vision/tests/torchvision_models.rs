//! fovea's model zoo computes what torchvision's does (tools/gen_torchvision_models.py):
//! the same architecture names and state_dict keys, the same outputs on a fixed input.
//! The weights are a counter-based hash both sides compute, so the fixture holds only
//! names, shapes and outputs.

#[path = "common/torchvision_fixture.rs"]
mod fixture;

use fixture::{input, meta, outputs, state_dict};
use fovea::{Tensor, Var};
use fovea_vision::data::imagenet;
use fovea_vision::models;
use std::collections::BTreeMap;
use std::path::Path;

fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    let scale = want.data().iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got.max_abs_diff(want) / scale;
    assert!(err < 1e-4, "{what}: max difference {err:e} of the largest output {scale}");
    // samples differ: the features, not just the biases, reach the output
    let n = want.shape()[1];
    let spread = want.data()[..n].iter().zip(&want.data()[n..]).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(want.shape()[0] == 1 || spread > 0.05 * scale, "{what}: the fixture does not depend on its input");
}

/// At every kernel level this CPU runs (the weights are made once; models are built per
/// level, since they stay on one thread).
fn check(arch: &str) {
    let (meta, outputs) = (meta(), outputs());
    let (weights, x) = (state_dict(&meta, arch), input(&meta).tensor());
    fovea::kernels::for_each_level(&[2], |_, _| {
        let model = models::from_state_dict(arch, &weights, false).unwrap();
        let y = model.forward(&Var::constant(x.clone())).unwrap();
        assert_close(arch, &y.value(), &outputs[arch]);
    });
}

#[test]
fn alexnet_equals_torchvision() {
    check("alexnet");
}

#[test]
fn vggs_equal_torchvision() {
    for depth in [11, 13, 16, 19] {
        check(&format!("vgg{depth}"));
        check(&format!("vgg{depth}_bn"));
    }
}

#[test]
fn resnets_equal_torchvision() {
    for depth in [18, 34, 50, 101, 152] {
        check(&format!("resnet{depth}"));
    }
}

#[test]
fn googlenet_and_its_auxiliary_classifiers_equal_torchvision() {
    let (meta, outputs) = (meta(), outputs());
    let (weights, x) = (state_dict(&meta, "googlenet"), input(&meta).tensor());
    fovea::kernels::for_each_level(&[2], |_, _| {
        let x = Var::constant(x.clone());
        let model = models::from_state_dict("googlenet", &weights, false).unwrap();
        let (y, aux) = model.forward_aux(&x, fovea::nn::Mode::Eval).unwrap();
        assert_close("googlenet", &y.value(), &outputs["googlenet"]);
        assert_close("googlenet aux1", &aux[0].value(), &outputs["googlenet.aux1"]);
        assert_close("googlenet aux2", &aux[1].value(), &outputs["googlenet.aux2"]);

        let net = models::from_state_dict("googlenet", &weights, true).unwrap();
        let y = net.forward(&x).unwrap();
        assert_close("googlenet transform_input", &y.value(), &outputs["googlenet.transform_input"]);
    });
}

#[test]
fn weights_of_another_architecture_name_the_offending_tensors() {
    let meta = meta();
    let err = models::from_state_dict("resnet50", &state_dict(&meta, "resnet18"), false).err().unwrap().to_string();
    assert!(err.contains("missing (") && err.contains("layer1.0.conv3.weight"), "{err}");
    assert!(err.contains("wrong shape (24): layer1.0.conv1.weight is [64, 64, 3, 3] in the file"), "{err}");
    assert!(err.contains("and ") && err.contains(" more"), "{err}");
    let err = models::from_state_dict("resnet51", &BTreeMap::new(), false).err().unwrap().to_string();
    assert!(err.contains("unknown model 'resnet51'") && err.contains("resnet50"), "{err}");
    // GoogLeNet weights saved without the auxiliary classifiers (torchvision's pretrained
    // model drops them) load into a GoogLeNet without them
    let mut sd = state_dict(&meta, "googlenet");
    sd.retain(|k, _| !k.starts_with("aux"));
    let m = models::from_state_dict("googlenet", &sd, false).unwrap();
    assert_eq!(fovea::nn::parameter_count(m.as_ref()), 6_624_904);
}

#[test]
fn imagenet_preprocessing_and_resnet18_on_photos_equal_torchvision() {
    let (meta, outputs) = (meta(), outputs());
    let step = meta["subsample"].as_u64().unwrap() as usize;
    let model = models::from_state_dict("resnet18", &state_dict(&meta, "resnet18"), false).unwrap();
    for photo in meta["photos"].as_array().unwrap() {
        let photo = photo.as_str().unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../data/images/{photo}.png"));
        let x = imagenet::preprocess(&fovea_vision::image::load_rgb(&path).unwrap(), 256, 224).unwrap();
        let sampled: Vec<f32> = x.data().iter().step_by(step).copied().collect();
        let want = &outputs[&format!("{photo}.preprocessed")];
        let err = Tensor::new(&[sampled.len()], sampled).unwrap().max_abs_diff(want);
        // torchvision's own float32 and float64 results differ by 1.9e-5 here
        assert!(err < 5e-5, "{photo}: preprocessing differs by {err}");
        let y = model.forward(&Var::constant(x.reshape(&[1, 3, 224, 224]).unwrap())).unwrap();
        assert_close(&format!("{photo} resnet18"), &y.value(), &outputs[&format!("{photo}.resnet18")]);
    }
}

#[test]
fn antialiased_resizing_equals_torch_both_ways() {
    let outputs = outputs();
    let x = fixture::uniform("resize", 3 * 5 * 7).into_iter().map(|v| v as f32).collect();
    let x = Tensor::new(&[3, 5, 7], x).unwrap();
    for (name, (h, w)) in [("resize.up", (9, 12)), ("resize.down", (3, 4))] {
        let got = fovea_vision::image::resize_bilinear(&x, h, w).unwrap();
        let err = got.max_abs_diff(&outputs[name]);
        assert!(err < 1e-6, "{name}: {err}");
    }
}
