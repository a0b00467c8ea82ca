//! The worked examples of the course notes, as tests.

use fovea::ops::{self, conv_output_size, ConvOptions, Padding, PoolOptions};
use fovea::{Rng, Tensor, Var};

fn t(shape: &[usize], v: &[f32]) -> Var {
    Var::constant(Tensor::new(shape, v.to_vec()).unwrap())
}

fn conv6x6(image: &[f32], filter: &[f32]) -> Vec<f32> {
    ops::conv2d(&t(&[1, 1, 6, 6], image), &t(&[1, 1, 3, 3], filter), None, &ConvOptions::default())
        .unwrap()
        .tensor()
        .into_vec()
}

const VERTICAL: [f32; 9] = [1., 0., -1., 1., 0., -1., 1., 0., -1.];
const HORIZONTAL: [f32; 9] = [1., 1., 1., 0., 0., 0., -1., -1., -1.];

#[test]
fn vertical_edge_example_gives_minus_5_to_minus_16() {
    #[rustfmt::skip]
    let image = [
        3., 0., 1., 2., 7., 4.,
        1., 5., 8., 9., 3., 1.,
        2., 7., 2., 5., 1., 3.,
        0., 1., 3., 1., 7., 8.,
        4., 2., 1., 6., 2., 8.,
        2., 4., 5., 2., 3., 9.,
    ];
    #[rustfmt::skip]
    let expected = [
        -5., -4., 0., 8.,
        -10., -2., 2., 3.,
        0., -2., -4., -7.,
        -3., -2., -3., -16.,
    ];
    assert_eq!(conv6x6(&image, &VERTICAL), expected);
}

#[test]
fn bright_to_dark_edge_gives_30s_and_its_flip_gives_minus_30s() {
    let bright_left: Vec<f32> = (0..36).map(|i| if i % 6 < 3 { 10. } else { 0. }).collect();
    let dark_left: Vec<f32> = bright_left.iter().map(|v| 10. - v).collect();
    let row = [0., 30., 30., 0.];
    assert_eq!(conv6x6(&bright_left, &VERTICAL), row.repeat(4));
    assert_eq!(conv6x6(&dark_left, &VERTICAL), row.iter().map(|v| -v).collect::<Vec<_>>().repeat(4));
}

#[test]
fn horizontal_edge_example() {
    let image: Vec<f32> = (0..36).map(|i| if (i / 6 < 3) == (i % 6 < 3) { 10. } else { 0. }).collect();
    #[rustfmt::skip]
    let expected = [
        0., 0., 0., 0.,
        30., 10., -10., -30.,
        30., 10., -10., -30.,
        0., 0., 0., 0.,
    ];
    assert_eq!(conv6x6(&image, &HORIZONTAL), expected);
}

#[test]
fn output_size_formula_matches_the_convolution() {
    // floor((n + 2p - f) / s + 1), checked against the shape the op actually produces
    let mut rng = Rng::new(3);
    for n in [5usize, 6, 7, 10, 13] {
        for f in [1usize, 2, 3, 5] {
            for p in 0..3usize {
                for s in 1..4usize {
                    if n + 2 * p < f {
                        continue;
                    }
                    let expected = ((n + 2 * p - f) as f64 / s as f64 + 1.0).floor() as usize;
                    assert_eq!(conv_output_size(n, f, 2 * p, s, 1), Some(expected));
                    let x = Var::constant(Tensor::randn(&[1, 1, n, n], 1.0, &mut rng));
                    let w = Var::constant(Tensor::randn(&[1, 1, f, f], 1.0, &mut rng));
                    let opts = ConvOptions::default().padding(Padding::symmetric(p)).stride(s);
                    assert_eq!(ops::conv2d(&x, &w, None, &opts).unwrap().shape(), vec![1, 1, expected, expected]);
                }
            }
        }
    }
    // the notes' strided example: 7x7 * 3x3, stride 2 -> 3x3
    assert_eq!(conv_output_size(7, 3, 0, 2, 1), Some(3));
}

#[test]
fn same_padding_is_f_minus_1_over_2() {
    for f in [1usize, 3, 5, 7] {
        let pads = Padding::Same.resolve(&[9], &[f], &[1], &[1]).unwrap();
        assert_eq!(pads, vec![((f - 1) / 2, (f - 1) / 2)]);
    }
}

#[test]
fn true_convolution_flips_the_kernel() {
    let k = Tensor::new(&[3, 3], vec![3., 4., 5., 1., 0., 2., -1., 9., 7.]).unwrap();
    assert_eq!(k.flip(&[0, 1]).unwrap().data(), &[7., 9., -1., 2., 0., 1., 5., 4., 3.]);
    let mut rng = Rng::new(5);
    let x = Var::constant(Tensor::randn(&[1, 1, 6, 6], 1.0, &mut rng));
    let w = Var::constant(k.reshape(&[1, 1, 3, 3]).unwrap());
    let flipped = Var::constant(k.flip(&[0, 1]).unwrap().reshape(&[1, 1, 3, 3]).unwrap());
    let conv = ops::conv2d(&x, &w, None, &ConvOptions::default().flip(true)).unwrap();
    let xcorr = ops::conv2d(&x, &flipped, None, &ConvOptions::default()).unwrap();
    assert_eq!(conv.tensor().data(), xcorr.tensor().data());
}

#[test]
fn convolution_over_volume_6x6x3_with_two_filters() {
    let mut rng = Rng::new(6);
    let x = Var::constant(Tensor::randn(&[1, 3, 6, 6], 1.0, &mut rng));
    let w = Var::constant(Tensor::randn(&[2, 3, 3, 3], 1.0, &mut rng));
    let y = ops::conv2d(&x, &w, None, &ConvOptions::default()).unwrap();
    assert_eq!(y.shape(), vec![1, 2, 4, 4]);
    // each output is the sum of 27 products
    let (xv, wv) = (x.tensor(), w.tensor());
    let mut acc = 0.0f32;
    for c in 0..3 {
        for i in 0..3 {
            for j in 0..3 {
                acc += xv.data()[c * 36 + (1 + i) * 6 + (2 + j)] * wv.data()[27 + c * 9 + i * 3 + j];
            }
        }
    }
    assert!((y.tensor().data()[16 + 6] - acc).abs() < 1e-5);
}

#[test]
fn max_and_average_pooling_of_the_4x4_example() {
    let x = t(&[1, 1, 4, 4], &[1., 3., 2., 1., 2., 9., 1., 1., 1., 3., 2., 3., 5., 6., 1., 2.]);
    let opts = PoolOptions::new(2).stride(2);
    assert_eq!(ops::max_pool(&x, &opts).unwrap().tensor().data(), &[9., 2., 6., 3.]);
    assert_eq!(ops::avg_pool(&x, &opts).unwrap().tensor().data(), &[3.75, 1.25, 3.75, 2.0]);
}

#[test]
fn one_d_14_to_10_and_three_d_14_cubed_to_10_cubed() {
    let mut rng = Rng::new(7);
    let x1 = Var::constant(Tensor::randn(&[1, 1, 14], 1.0, &mut rng));
    let w1 = Var::constant(Tensor::randn(&[16, 1, 5], 1.0, &mut rng));
    assert_eq!(ops::conv1d(&x1, &w1, None, &ConvOptions::default()).unwrap().shape(), vec![1, 16, 10]);
    let x3 = Var::constant(Tensor::randn(&[1, 2, 14, 14, 14], 1.0, &mut rng));
    let w3 = Var::constant(Tensor::randn(&[16, 2, 5, 5, 5], 1.0, &mut rng));
    assert_eq!(ops::conv3d(&x3, &w3, None, &ConvOptions::default()).unwrap().shape(), vec![1, 16, 10, 10, 10]);
}

#[test]
fn shape_mismatches_name_the_op_and_both_shapes() {
    let x = Var::constant(Tensor::zeros(&[2, 3, 8, 8]));
    let w = Var::constant(Tensor::zeros(&[4, 5, 3, 3]));
    let err = ops::conv2d(&x, &w, None, &ConvOptions::default()).unwrap_err().to_string();
    assert!(err.contains("conv2d") && err.contains("[2, 3, 8, 8]") && err.contains("[4, 5, 3, 3]"), "{err}");
    let a = Var::constant(Tensor::zeros(&[2, 3]));
    let b = Var::constant(Tensor::zeros(&[4, 5]));
    let err = ops::matmul(&a, &b).unwrap_err().to_string();
    assert!(err.contains("matmul") && err.contains("[2, 3]") && err.contains("[4, 5]"), "{err}");
    let err = ops::add(&a, &b).unwrap_err().to_string();
    assert!(err.contains("add") && err.contains("[2, 3]") && err.contains("[4, 5]"), "{err}");
    let small = Var::constant(Tensor::zeros(&[1, 1, 2, 2]));
    let big = Var::constant(Tensor::zeros(&[1, 1, 3, 3]));
    assert!(ops::conv2d(&small, &big, None, &ConvOptions::default()).unwrap_err().to_string().contains("smaller"));
}

#[test]
fn absurd_sizes_are_errors_not_panics() {
    assert!(Tensor::new(&[1 << 62, 4], vec![]).is_err());
    assert!(Tensor::new(&[usize::MAX, 2], vec![]).is_err());
    let x = Var::constant(Tensor::zeros(&[1, 1, 5, 5]));
    let w = Var::constant(Tensor::zeros(&[1, 1, 3, 3]));
    for opts in [
        ConvOptions::default().padding(Padding::symmetric(usize::MAX / 2)),
        ConvOptions::default().padding(Padding::symmetric(1 << 20)),
        ConvOptions::default().dilation(usize::MAX / 2),
    ] {
        assert!(ops::conv2d(&x, &w, None, &opts).is_err(), "{opts:?}");
    }
    // 'same' with a huge dilation is valid: every tap but the centre reads padding
    let opts = ConvOptions::default().dilation(1 << 40).padding(Padding::Same);
    assert_eq!(ops::conv2d(&x, &w, None, &opts).unwrap().shape(), vec![1, 1, 5, 5]);
    let empty = Var::constant(Tensor::zeros(&[1, 0, 4, 4]));
    assert!(ops::max_pool(&empty, &PoolOptions::new(2)).is_err());
    assert!(ops::conv2d(&empty, &Var::constant(Tensor::zeros(&[1, 0, 3, 3])), None, &ConvOptions::default()).is_err());
    assert!(ops::max_pool(&x, &PoolOptions::new(usize::MAX).padding(usize::MAX / 2)).is_err());
    let y = ops::relu(&Var::param(Tensor::zeros(&[2, 2]))).unwrap();
    assert!(y.backward_with(Tensor::zeros(&[3])).is_err());
    // ReLU keeps NaN, as PyTorch does, so that a diverged run is noticed
    let y = ops::relu(&Var::constant(Tensor::new(&[3], vec![f32::NAN, -1.0, 2.0]).unwrap())).unwrap();
    let v = y.value();
    assert!(v.data()[0].is_nan() && v.data()[1..] == [0.0, 2.0]);
}
