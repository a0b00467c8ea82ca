//! `fovea summary` numbers for the case-study networks: parameter totals equal
//! torchvision's, and GoogLeNet's inception rows reproduce the notes' table.

use fovea::nn::summary::summarize;
use fovea::Rng;
use fovea_vision::models;

fn summary(name: &str) -> fovea::nn::summary::Summary {
    let model = models::build(name, 1000, &mut Rng::new(0)).unwrap();
    summarize(model.as_ref(), &models::architecture(name).unwrap().input).unwrap()
}

#[test]
fn parameter_totals_equal_torchvision() {
    // torchvision 0.29: sum(p.numel() for p in model.parameters())
    for (name, params) in [
        ("alexnet", 61_100_840),
        ("vgg16", 138_357_544),
        ("vgg16_bn", 138_365_992),
        ("resnet18", 11_689_512),
        ("resnet50", 25_557_032),
    ] {
        let s = summary(name);
        assert_eq!((s.total_params, s.training_only_params), (params, 0), "{name}");
    }
    // GoogLeNet: 6,624,904 for inference; the two auxiliary classifiers add 6,379,984
    // (13,004,888 with them, torchvision's count for aux_logits=True)
    let s = summary("googlenet");
    assert_eq!((s.total_params, s.training_only_params), (6_624_904, 6_379_984));
    assert!(s.table().contains("plus 6,379,984 parameters used in training only (13,004,888 in all)"));
}

#[test]
fn multiply_adds_are_the_well_known_ones() {
    // widely quoted: ResNet-50 4.09 G, VGG-16 15.47 G, AlexNet 0.71 G multiply-adds at 224x224
    for (name, gmacs) in [("resnet50", 4.089), ("vgg16", 15.470), ("alexnet", 0.714), ("resnet18", 1.814)] {
        let got = summary(name).total_macs as f64 / 1e9;
        assert!((got - gmacs).abs() < 0.001, "{name}: {got} G");
    }
}

#[test]
fn googlenet_inception_rows_reproduce_the_notes_ops_column() {
    // the notes' table (Szegedy et al. 2014, table 1): output size, ops in millions
    let notes = [
        ("inception3a", [256, 28, 28], 128.0),
        ("inception3b", [480, 28, 28], 304.0),
        ("inception4a", [512, 14, 14], 73.0),
        ("inception4b", [512, 14, 14], 88.0),
        ("inception4c", [512, 14, 14], 100.0),
        ("inception4d", [528, 14, 14], 119.0),
        ("inception4e", [832, 14, 14], 170.0),
        // the paper's 54M is not what its own channel counts give (51.1M); see
        // docs/models.md
        ("inception5a", [832, 7, 7], 51.1),
        ("inception5b", [1024, 7, 7], 71.0),
    ];
    let s = summary("googlenet-paper");
    for (name, shape, mops) in notes {
        let row = s.layers.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("no row {name}"));
        assert_eq!(row.output_shape, shape, "{name}");
        let got = row.macs as f64 / 1e6;
        assert!((got / mops - 1.0).abs() < 0.03, "{name}: {got:.1}M against the notes' {mops}M");
    }
    // one row per inception block, none for its inner convolutions
    assert_eq!(s.layers.iter().filter(|l| l.kind == "Inception").count(), 9);
    assert!(!s.layers.iter().any(|l| l.name.contains("branch")));
    // torchvision's GoogLeNet has 3x3 convolutions in the third branch: fewer ops
    let tv = summary("googlenet");
    let row = tv.layers.iter().find(|l| l.name == "inception3a").unwrap();
    assert_eq!(row.macs, 121_626_624);
}

#[test]
fn unknown_models_and_inputs_that_do_not_fit_say_so() {
    let err = models::build("resnet51", 10, &mut Rng::new(0)).err().unwrap().to_string();
    assert!(err.contains("unknown model 'resnet51'") && err.contains("googlenet"), "{err}");
    // AlexNet's first layers need at least 63x63
    let m = models::build("alexnet", 10, &mut Rng::new(0)).unwrap();
    let err = summarize(m.as_ref(), &[3, 32, 32]).unwrap_err().to_string();
    assert!(err.contains("smaller than the window"), "{err}");
}

#[test]
fn cifar_style_networks_have_he_et_al_sizes() {
    // He et al. 2015, table 6: ResNet-20 0.27M, ResNet-56 0.85M parameters. The shortcuts
    // have none (option A), so the plain network has the same ones, drawn the same.
    let params = |name: &str| {
        let m = models::build(name, 10, &mut Rng::new(0)).unwrap();
        summarize(m.as_ref(), &models::architecture(name).unwrap().input).unwrap().total_params
    };
    assert_eq!(params("cifar-resnet56"), 852_730);
    assert_eq!(params("cifar-plain56"), 852_730);
    assert_eq!(params("cifar-resnet20"), 269_434);
    let weights = |name: &str| {
        let m = models::build(name, 10, &mut Rng::new(7)).unwrap();
        fovea::nn::state_dict(m.as_ref()).into_iter().map(|(n, v)| (n, v.tensor().data().to_vec())).collect::<Vec<_>>()
    };
    assert!(weights("cifar-resnet20") == weights("cifar-plain20"));
    let err = models::build("cifar-plain57", 10, &mut Rng::new(0)).err().unwrap().to_string();
    assert!(err.contains("6n+2"), "{err}");
}

#[test]
fn googlenet_trains_its_side_classifiers_in_training_mode_only() {
    use fovea::nn::{state_dict, Mode, Module};
    use fovea::{Tensor, Var};
    let model = models::build("googlenet", 3, &mut Rng::new(1)).unwrap();
    let data = fovea_vision::data::Dataset {
        images: Tensor::rand_uniform(&[4, 3, 32, 32], 0.0, 1.0, &mut Rng::new(2)),
        labels: vec![0, 1, 2, 0],
    };
    let aux_weight =
        |m: &dyn Module| state_dict(m).into_iter().find(|(n, _)| n == "aux1.fc2.weight").unwrap().1.tensor();
    let before = aux_weight(model.as_ref());
    let mut opt =
        fovea_vision::train::make_optimizer(model.as_ref(), fovea::optim::OptimizerConfig::sgd(0.1, 0.0, 0.0)).unwrap();
    let p = fovea_vision::train::train_epoch(model.as_ref(), &mut opt, &data, 4, &mut Rng::new(3), None, &mut |_| {})
        .unwrap();
    assert!(p.loss().is_finite());
    // the auxiliary loss reached aux1's classifier
    assert!(aux_weight(model.as_ref()).max_abs_diff(&before) > 0.0);
    // evaluation: the main classifier alone
    let (y, aux) = model.forward_aux(&Var::constant(data.images.clone()), Mode::Eval).unwrap();
    assert_eq!((y.shape(), aux.len()), (vec![4, 3], 2));
    assert_eq!(model.forward(&Var::constant(data.images)).unwrap().value().data(), y.value().data());
}
