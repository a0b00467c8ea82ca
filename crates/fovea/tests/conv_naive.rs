//! The fast convolution (im2col + GEMM, pointwise path, threaded) equals the direct loop on
//! randomised shapes: odd sizes, stride, padding, dilation, groups, 1-D/2-D/3-D.

use fovea::kernels::conv::{conv_forward, conv_forward_naive, ConvGeometry};
use fovea::Rng;

#[test]
fn im2col_gemm_equals_the_direct_loop_on_random_shapes() {
    let mut rng = Rng::new(11);
    for trial in 0..300 {
        let nd = 1 + rng.below(3);
        let groups = 1 + rng.below(3);
        let c_in = groups * (1 + rng.below(3));
        let c_out = groups * (1 + rng.below(3));
        let mut g = ConvGeometry {
            batch: 1 + rng.below(3),
            c_in,
            c_out,
            groups,
            input: [1; 3],
            kernel: [1; 3],
            stride: [1; 3],
            dilation: [1; 3],
            pad: [0; 3],
            output: [1; 3],
        };
        let pointwise = rng.below(4) == 0;
        for d in 3 - nd..3 {
            g.input[d] = 1 + rng.below(12);
            if !pointwise {
                g.kernel[d] = 1 + rng.below(4);
                g.stride[d] = 1 + rng.below(3);
                g.dilation[d] = 1 + rng.below(2);
                g.pad[d] = rng.below(3);
            }
            let extent = g.dilation[d] * (g.kernel[d] - 1) + 1;
            let after = rng.below(3) * usize::from(!pointwise);
            if g.input[d] + g.pad[d] + after < extent {
                g.input[d] = extent;
            }
            g.output[d] = (g.input[d] + g.pad[d] + after - extent) / g.stride[d] + 1;
        }
        let x: Vec<f32> = (0..g.batch * c_in * g.in_spatial()).map(|_| rng.normal()).collect();
        let w: Vec<f32> = (0..g.weight_len()).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..c_out).map(|_| rng.normal()).collect();
        let mut fast = vec![0.0f32; g.batch * c_out * g.out_spatial()];
        conv_forward(&g, &x, &w, Some(&b), &mut fast);
        let naive = conv_forward_naive(&g, &x, &w, Some(&b));
        let err = fast.iter().zip(&naive).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-4, "trial {trial}: {g:?} differs by {err}");
    }
}

#[test]
fn tiled_patches_equal_the_direct_loop() {
    // patch matrices of several hundred rows are built in tiles whose boundaries fall
    // inside output rows
    let mut rng = Rng::new(12);
    for (c_in, k, stride, pad, dilation, groups, size, batch) in
        [(48, 3, 1, 1, 1, 1, 21, 1), (64, 5, 2, 2, 1, 2, 31, 2), (40, 3, 1, 2, 2, 4, 17, 3)]
    {
        let out = (size + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
        let g = ConvGeometry {
            batch,
            c_in,
            c_out: 2 * groups,
            groups,
            input: [1, size, size + 2],
            kernel: [1, k, k],
            stride: [1, stride, stride],
            dilation: [1, dilation, dilation],
            pad: [0, pad, pad],
            output: [1, out, (size + 2 + 2 * pad - dilation * (k - 1) - 1) / stride + 1],
        };
        let x: Vec<f32> = (0..batch * c_in * g.in_spatial()).map(|_| rng.normal()).collect();
        let w: Vec<f32> = (0..g.weight_len()).map(|_| rng.normal()).collect();
        let mut fast = vec![0.0f32; batch * g.c_out * g.out_spatial()];
        conv_forward(&g, &x, &w, None, &mut fast);
        let naive = conv_forward_naive(&g, &x, &w, None);
        let err = fast.iter().zip(&naive).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-3, "{g:?} differs by {err}");
    }
}

/// `Σ a·b` in f64, for adjoint checks.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

#[test]
fn direct_kernel_equals_the_loop_and_its_gradients_are_adjoint() {
    // Stride-1 2-D and 1-D convolutions take the direct kernel where the CPU has AVX2 +
    // FMA (with AVX-512, wide ones too: several channel blocks, chunks of taps). Gradients: for any dy, <conv(x, w), dy> equals
    // <x, dx(dy)> and <w, dw(x, dy)>, which pins down both backward passes.
    use fovea::kernels::conv::{conv_backward_input, conv_backward_weight};
    use fovea::kernels::direct;
    let mut rng = Rng::new(13);
    let (mut direct_cases, mut transposed_cases) = (0, 0);
    for trial in 0..120 {
        let one_d = rng.below(4) == 0;
        let k = [if one_d { 1 } else { 1 + rng.below(5) }, 1 + rng.below(5)];
        let dilation = [1 + rng.below(2), 1 + rng.below(2)];
        let mut g = ConvGeometry {
            batch: 1 + rng.below(5),
            c_in: 1 + if trial % 4 == 0 { rng.below(40) } else { rng.below(8) },
            c_out: 1 + if trial % 3 == 0 { rng.below(80) } else { rng.below(24) },
            groups: 1,
            input: [1; 3],
            kernel: [1, k[0], k[1]],
            stride: [1; 3],
            dilation: [1, dilation[0], dilation[1]],
            pad: [0; 3],
            output: [1; 3],
        };
        if trial % 10 == 9 {
            // a 3-D convolution of depth 1 padded in depth: not for the 2-D kernel
            (g.pad[0], g.output[0]) = (1, 3);
        }
        for d in if one_d { 2..3 } else { 1..3 } {
            let extent = g.dilation[d] * (g.kernel[d] - 1) + 1;
            // now and then more padding than the kernel spans
            g.pad[d] = if trial % 7 == 0 { extent + rng.below(2) } else { rng.below(extent.min(4)) };
            let after = rng.below(3);
            g.input[d] = (1 + rng.below(if one_d { 300 } else { 36 })).max(extent);
            g.output[d] = (g.input[d] + g.pad[d] + after - extent) + 1;
        }
        direct_cases += usize::from(direct::applies(&g));
        transposed_cases += usize::from(direct::input_grad_geometry(&g).is_some());
        let x: Vec<f32> = (0..g.batch * g.c_in * g.in_spatial()).map(|_| rng.normal()).collect();
        let w: Vec<f32> = (0..g.weight_len()).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..g.c_out).map(|_| rng.normal()).collect();
        let mut y = vec![0.0f32; g.batch * g.c_out * g.out_spatial()];
        conv_forward(&g, &x, &w, Some(&b), &mut y);
        let naive = conv_forward_naive(&g, &x, &w, Some(&b));
        let err = y.iter().zip(&naive).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-4, "trial {trial}: {g:?} forward differs by {err}");

        let dy: Vec<f32> = (0..y.len()).map(|_| rng.normal()).collect();
        let (mut dx, mut dw) = (vec![0.0f32; x.len()], vec![0.0f32; w.len()]);
        conv_backward_input(&g, &w, &dy, &mut dx);
        conv_backward_weight(&g, &x, &dy, &mut dw);
        let no_bias = conv_forward_naive(&g, &x, &w, None);
        let expected = dot(&no_bias, &dy);
        let scale: f64 = no_bias.iter().zip(&dy).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
        let tol = 1e-5 * scale;
        assert!((dot(&x, &dx) - expected).abs() < tol, "trial {trial}: {g:?} input gradient");
        assert!((dot(&w, &dw) - expected).abs() < tol, "trial {trial}: {g:?} weight gradient");
    }
    // with AVX-512 wide layers take it too (several blocks of 32 channels, tap chunks);
    // with AVX2 alone, LeNet-sized ones
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        assert!(direct_cases > 60, "only {direct_cases} cases took the direct kernel");
        assert!(transposed_cases > 12, "only {transposed_cases} input gradients took it");
    } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        assert!(direct_cases > 30, "only {direct_cases} cases took the direct kernel");
    }
}
