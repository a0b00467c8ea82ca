//! The notes' cost examples, computed by `summary`.

use fovea::nn::summary::{compare_dense, summarize};
use fovea::nn::{Conv, Sequential};
use fovea::ops::Padding;
use fovea::Rng;

fn conv(c_in: usize, c_out: usize, k: usize, rng: &mut Rng) -> Conv {
    Conv::config(c_in, c_out, &[k, k]).padding(Padding::Same).build(rng).unwrap()
}

#[test]
fn the_bottleneck_example_costs_what_the_notes_say() {
    // 28x28x192 -> 5x5 same conv to 32: 28·28·32 · 5·5·192 = 120,422,400 multiplies
    let mut rng = Rng::new(0);
    let direct = Sequential::new().add("conv", conv(192, 32, 5, &mut rng));
    let s = summarize(&direct, &[192, 28, 28]).unwrap();
    assert_eq!(s.layers[0].output_shape, [32, 28, 28]);
    assert_eq!(s.total_macs, 120_422_400);

    // with a 1x1 bottleneck to 16 channels: 2.4M + 10.0M = 12.4M
    let bottleneck = Sequential::new().add("reduce", conv(192, 16, 1, &mut rng)).add("conv", conv(16, 32, 5, &mut rng));
    let s = summarize(&bottleneck, &[192, 28, 28]).unwrap();
    let macs: Vec<usize> = s.layers.iter().map(|l| l.macs).collect();
    assert_eq!(macs, [2_408_448, 10_035_200]);
    assert_eq!(s.total_macs, 12_443_648);
    assert_eq!(s.layers[0].output_shape, [16, 28, 28]);
    assert!(s.table().contains("12,443,648 multiply-adds"), "{}", s.table());
}

#[test]
fn why_convolutions_280_parameters_against_about_62_million() {
    let c = compare_dense(39, 39, 3, 10, 3).unwrap();
    assert_eq!(c.output, [37, 37, 10]);
    assert_eq!(c.conv_params, 280);
    assert_eq!(c.dense_weights, 39 * 39 * 3 * 37 * 37 * 10);
    assert!((c.dense_weights as f64 / 1e6 - 62.0).abs() < 0.5);
    assert!(compare_dense(3, 3, 1, 1, 5).is_err());
}

#[test]
fn summaries_reject_empty_and_absurd_inputs() {
    let m = Sequential::new().add("conv", conv(3, 4, 3, &mut Rng::new(0)));
    assert!(summarize(&m, &[]).is_err());
    assert!(summarize(&m, &[3, 0, 5]).is_err());
    // shapes alone: a huge input is fine until its size overflows
    assert_eq!(summarize(&m, &[3, 1 << 20, 1 << 20]).unwrap().layers[0].output_shape, [4, 1 << 20, 1 << 20]);
    assert!(summarize(&m, &[3, 1 << 40, 1 << 40]).is_err());
    // a wrong channel count is the conv's own shape error
    let err = summarize(&m, &[5, 8, 8]).unwrap_err().to_string();
    assert!(err.contains("conv"), "{err}");
}
