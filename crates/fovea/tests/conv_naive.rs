//! The fast convolution (im2col + GEMM, pointwise path, direct kernel, threaded) equals the
//! loop on randomised shapes: odd sizes, stride, padding, dilation, groups, 1-D/2-D/3-D; at
//! every kernel level this CPU runs and with 1, 2, 3 and 16 threads.
//!
//! Tolerances come from rounding analysis: a sum of n products computed in f32, in any
//! order and with or without fused multiply-adds, is within n·u·Σ|a·b| of the exact sum
//! (u = 2⁻²⁴, to first order). The fast kernel and the f32 loop each make such an error,
//! so they differ by at most n·ε·Σ|a·b| with ε = 2u = f32::EPSILON; Σ|a·b| of every output
//! is the loop run on the absolute values. A wrong index moves an output by about one
//! term, far more than that (checked by breaking the direct kernel's tap offsets and the
//! GEMM's transpose on purpose).

use fovea::kernels::conv::{conv_forward, conv_forward_naive, ConvGeometry};
use fovea::kernels::{for_each_level, Isa, TEST_THREADS};
use fovea::Rng;

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// The largest error of `fast` against the loop, as a multiple of each output's rounding
/// bound `n·ε·Σ|a·b|` (n: the products and the bias in each output). Must be at most 1.
fn forward_error(g: &ConvGeometry, x: &[f32], w: &[f32], b: Option<&[f32]>, fast: &[f32]) -> f32 {
    let naive = conv_forward_naive(g, x, w, b);
    let scale = conv_forward_naive(g, &abs(x), &abs(w), b.map(abs).as_deref());
    let n = (g.weight_len() / g.c_out + 1) as f32;
    let mut worst = 0.0f32;
    for ((f, r), s) in fast.iter().zip(&naive).zip(&scale) {
        // a bound of 0 (all products 0) needs an exact 0
        let bound = n * f32::EPSILON * s;
        worst = worst.max(if bound > 0.0 { (f - r).abs() / bound } else { (f - r).abs() * f32::INFINITY });
    }
    worst
}

#[test]
fn im2col_gemm_equals_the_direct_loop_on_random_shapes() {
    for_each_level(&TEST_THREADS, |_, _| random_shapes_equal_the_loop());
}

fn random_shapes_equal_the_loop() {
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
        let err = forward_error(&g, &x, &w, Some(&b), &fast);
        assert!(err <= 1.0, "trial {trial}: {g:?} differs by {err} times the rounding bound");
        assert_epilogue_sees_each_output_once(&g, &x, &w, &b, &fast);
    }
}

/// `conv_forward_then` hands every output to the epilogue exactly once, at its offset,
/// after its final value: an epilogue `v -> 2v + offset` gives exactly that.
fn assert_epilogue_sees_each_output_once(g: &ConvGeometry, x: &[f32], w: &[f32], b: &[f32], plain: &[f32]) {
    let then =
        |at: usize, run: &mut [f32]| run.iter_mut().enumerate().for_each(|(i, v)| *v = 2.0 * *v + (at + i) as f32);
    let mut fused = vec![f32::NAN; plain.len()];
    fovea::kernels::conv::conv_forward_then(g, x, w, None, Some(b), &mut fused, Some(&then));
    for (i, (&f, &p)) in fused.iter().zip(plain).enumerate() {
        assert_eq!(f.to_bits(), (2.0 * p + i as f32).to_bits(), "{g:?}: output {i}");
    }
}

#[test]
fn tiled_patches_equal_the_direct_loop() {
    for_each_level(&TEST_THREADS, |_, _| tiled_patches_equal_the_loop());
}

fn tiled_patches_equal_the_loop() {
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
        let err = forward_error(&g, &x, &w, None, &fast);
        assert!(err <= 1.0, "{g:?} differs by {err} times the rounding bound");
    }
}

/// `Σ a·b` in f64, for adjoint checks.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

#[test]
fn direct_kernel_equals_the_loop_and_its_gradients_are_adjoint() {
    for_each_level(&TEST_THREADS, direct_kernel_cases);
}

/// 2-D and 1-D convolutions of stride 1, 2 or 4 take the direct kernel at the AVX2 and
/// AVX-512 levels.
/// Gradients: for any dy, <conv(x, w), dy> equals <x, dx(dy)> and <w, dw(x, dy)>, which
/// pins down both backward passes.
fn direct_kernel_cases(level: Isa, _threads: usize) {
    use fovea::kernels::conv::direct;
    use fovea::kernels::conv::{conv_backward_input, conv_backward_weight, conv_forward_then, PackedWeights};
    let mut rng = Rng::new(13);
    let (mut direct_cases, mut strided_cases, mut stride_4_cases, mut transposed_cases) = (0, 0, 0, 0);
    let mut packed_only_cases = 0;
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
            g.stride[d] = match trial % 6 {
                1 | 4 => 2,
                5 => 4,
                _ => 1,
            };
            // (strided: larger, so that enough positions remain for the kernel)
            g.input[d] = (1 + rng.below(if one_d { 300 } else { 36 * g.stride[d] })).max(extent);
            g.output[d] = (g.input[d] + g.pad[d] + after - extent) / g.stride[d] + 1;
        }
        direct_cases += usize::from(direct::applies(&g));
        strided_cases += usize::from(direct::applies(&g) && g.stride != [1; 3]);
        stride_4_cases += usize::from(direct::applies(&g) && g.stride[2] == 4);
        transposed_cases += usize::from(direct::input_grad_geometry(&g).is_some());
        let x: Vec<f32> = (0..g.batch * g.c_in * g.in_spatial()).map(|_| rng.normal()).collect();
        let w: Vec<f32> = (0..g.weight_len()).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..g.c_out).map(|_| rng.normal()).collect();
        let mut y = vec![0.0f32; g.batch * g.c_out * g.out_spatial()];
        conv_forward(&g, &x, &w, Some(&b), &mut y);
        let err = forward_error(&g, &x, &w, Some(&b), &y);
        assert!(err <= 1.0, "trial {trial}: {g:?} forward differs by {err} times the rounding bound");
        assert_epilogue_sees_each_output_once(&g, &x, &w, &b, &y);
        // weights packed beforehand (an inference graph's): where the kernel packs them
        // itself, the same bits; they also serve pictures too small for that
        if let Some(packed) = PackedWeights::new(g.c_out, &w).filter(|_| g.kernel != [1; 3]) {
            let mut yp = vec![f32::NAN; y.len()];
            conv_forward_then(&g, &x, &w, Some(&packed), Some(&b), &mut yp, None);
            if direct::applies(&g) {
                assert!(yp.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()), "trial {trial}: {g:?} packed");
            } else {
                let err = forward_error(&g, &x, &w, Some(&b), &yp);
                assert!(err <= 1.0, "trial {trial}: {g:?} packed differs by {err} times the rounding bound");
            }
            packed_only_cases += usize::from(packed.fit(&g) && !direct::applies(&g));
        }

        let dy: Vec<f32> = (0..y.len()).map(|_| rng.normal()).collect();
        let (mut dx, mut dw) = (vec![0.0f32; x.len()], vec![0.0f32; w.len()]);
        conv_backward_input(&g, &w, &dy, &mut dx);
        conv_backward_weight(&g, &x, &dy, &mut dw);
        // <conv(x, w), dy> by the loop, and Σ|x·w·dy| over every product it holds. Each
        // side's f32 sums make at most (its terms)·u times that: the loop's forward has
        // c_in·k terms per output, dx c_out·k per input, dw batch·positions per weight.
        let expected = dot(&conv_forward_naive(&g, &x, &w, None), &dy);
        let scale = dot(&conv_forward_naive(&g, &abs(&x), &abs(&w), None), &abs(&dy));
        let taps = (g.weight_len() / g.c_out) as f64;
        let forward_terms = taps;
        let input_terms = (g.c_out * g.kernel.iter().product::<usize>()) as f64;
        let weight_terms = (g.batch * g.out_spatial()) as f64;
        let eps = f32::EPSILON as f64;
        let dx_err = (dot(&x, &dx) - expected).abs() / ((forward_terms + input_terms) * eps * scale);
        let dw_err = (dot(&w, &dw) - expected).abs() / ((forward_terms + weight_terms) * eps * scale);
        assert!(dx_err <= 1.0, "trial {trial}: {g:?} input gradient off by {dx_err} times the bound");
        assert!(dw_err <= 1.0, "trial {trial}: {g:?} weight gradient off by {dw_err} times the bound");
    }
    // which cases take the kernel depends on the sizes and the level alone: at AVX2 and
    // AVX-512 the same ones (wide layers too: several channel blocks), at the scalar
    // level none
    let expected = if level >= Isa::Avx2 { (63, 27, 6, 9, 19) } else { (0, 0, 0, 0, 0) };
    let got = (direct_cases, strided_cases, stride_4_cases, transposed_cases, packed_only_cases);
    assert_eq!(got, expected, "cases that took the direct kernel");
    // taps beyond one chunk of weights (256 KiB at either level): the sums carry over
    let wide = wide_3x3(1, 40, [18, 17]);
    assert_eq!(direct::applies(&wide), level >= Isa::Avx2);
    let x: Vec<f32> = (0..wide.c_in * wide.in_spatial()).map(|_| rng.normal()).collect();
    let w: Vec<f32> = (0..wide.weight_len()).map(|_| rng.normal()).collect();
    let mut y = vec![0.0f32; wide.c_out * wide.out_spatial()];
    conv_forward(&wide, &x, &w, None, &mut y);
    let err = forward_error(&wide, &x, &w, None, &y);
    assert!(err <= 1.0, "{wide:?} forward differs by {err} times the rounding bound");
}

/// A 3x3 convolution of 520 input channels (4680 taps: more than one chunk of weights at
/// either level), padded to keep its `[h, w]`.
fn wide_3x3(batch: usize, c_out: usize, [h, w]: [usize; 2]) -> ConvGeometry {
    ConvGeometry {
        batch,
        c_in: 520,
        c_out,
        groups: 1,
        input: [1, h, w],
        kernel: [1, 3, 3],
        stride: [1; 3],
        dilation: [1; 3],
        pad: [0, 1, 1],
        output: [1, h, w],
    }
}

#[test]
fn blocked_convolution_equals_the_loop() {
    for_each_level(&TEST_THREADS, blocked_cases);
}

/// The channel-blocked convolution of inference graphs, from planar or blocked input, with
/// a residual sum and a clamp done in registers, at the AVX2 and AVX-512 levels: random
/// 1-D and 2-D shapes, 1x1 kernels and strides included, back in `[N][C][H][W]` equal the
/// loop (plus the residual, clamped) within the rounding bound of [`forward_error`], one
/// more term for the residual (a clamp moves no two values further apart).
fn blocked_cases(level: Isa, _threads: usize) {
    use fovea::kernels::blocked::block;
    use fovea::kernels::conv::direct;
    let Some(block) = block() else {
        assert!(level < Isa::Avx2, "no blocked layout at {level}");
        return;
    };
    let mut rng = Rng::new(14);
    let mut taken = 0;
    for trial in 0..80 {
        let one_d = rng.below(5) == 0;
        let pointwise = rng.below(3) == 0;
        let k = |rng: &mut Rng| if pointwise { 1 } else { 1 + rng.below(5) };
        let kernel = [1, if one_d { 1 } else { k(&mut rng) }, k(&mut rng)];
        let mut g = ConvGeometry {
            batch: 1 + rng.below(3),
            c_in: 1 + if trial % 3 == 0 { rng.below(70) } else { rng.below(20) },
            // (every fifth with a last block that the channels do not fill)
            c_out: if trial % 5 == 2 {
                1 + rng.below(50)
            } else {
                block * (1 + rng.below(if trial % 4 == 0 { 6 } else { 3 }))
            },
            groups: 1,
            input: [1; 3],
            kernel,
            stride: [1; 3],
            dilation: [1; 3],
            pad: [0; 3],
            output: [1; 3],
        };
        for d in if one_d { 2..3 } else { 1..3 } {
            g.dilation[d] = 1 + rng.below(2);
            let extent = g.dilation[d] * (g.kernel[d] - 1) + 1;
            g.pad[d] = if trial % 2 == 0 { 0 } else { rng.below(extent.min(4)) };
            g.stride[d] = [1, 1, 2, 4][rng.below(4)];
            g.input[d] = (1 + rng.below(if one_d { 200 } else { 30 })).max(extent);
            g.output[d] = (g.input[d] + g.pad[d] + rng.below(2) - extent) / g.stride[d] + 1;
        }
        if !direct::takes_blocked(&g) {
            continue;
        }
        taken += 1;
        check_blocked(&g, trial, block, &mut rng);
    }
    assert!(taken >= 60, "only {taken} cases took the blocked kernel");
    // taps beyond one chunk of weights (256 KiB at either level): the sums carry over
    let wide = wide_3x3(2, 2 * block, [6, 5]);
    assert!(direct::takes_blocked(&wide));
    for trial in 0..3 {
        check_blocked(&wide, trial, block, &mut rng);
    }
    // more input channels than output: groups of blocks take each piece of a row in turn
    // (with a short last group at AVX-512, and for 1x1 at AVX2 too; the last block not
    // full), 1x1 and 3x3, and a 1x1 with a stride, whose positions are gathered first;
    // from blocked and from planar input, with each clamp
    for (k, stride, input) in [(1, 1, [12, 10]), (3, 1, [12, 10]), (1, 2, [23, 19])] {
        let g = ConvGeometry {
            batch: 3,
            c_in: if k == 1 { 1000 } else { 6 * block + 3 },
            c_out: if k == 1 { 10 * block - 3 } else { 5 * block - 3 },
            groups: 1,
            input: [1, input[0], input[1]],
            kernel: [1, k, k],
            stride: [1, stride, stride],
            dilation: [1; 3],
            pad: [0, k / 2, k / 2],
            output: [1, 12, 10],
        };
        assert!(direct::takes_blocked(&g));
        for trial in 0..3 {
            check_blocked(&g, trial, block, &mut rng);
        }
    }
}

/// [`blocked_cases`] for one geometry: input blocked unless `trial % 3 == 1`, one of three
/// clamps by `trial % 3`.
fn check_blocked(g: &ConvGeometry, trial: usize, block: usize, rng: &mut Rng) {
    use fovea::kernels::blocked::{to_blocked, to_planar};
    use fovea::kernels::conv::{conv_forward_blocked, PackedWeights};
    use std::borrow::Cow;
    let (spatial, out_spatial) = (g.in_spatial(), g.out_spatial());
    let x: Vec<f32> = (0..g.batch * g.c_in * spatial).map(|_| rng.normal()).collect();
    let w: Vec<f32> = (0..g.weight_len()).map(|_| rng.normal()).collect();
    let b: Vec<f32> = (0..g.c_out).map(|_| rng.normal()).collect();
    let r: Vec<f32> = (0..g.batch * g.c_out * out_spatial).map(|_| rng.normal()).collect();
    let packed = PackedWeights::new(g.c_out, &w).expect("weights packed at AVX2 and above");
    let x_blocked = trial % 3 != 1;
    // lanes past the last channel hold a huge value, which no channel may depend on
    let padded = |v: &[f32], channels: usize, spatial: usize| {
        let mut b = to_blocked(v, g.batch, channels, spatial, block);
        for (i, b) in b.iter_mut().enumerate() {
            if i % block >= channels - i / (block * spatial) % channels.div_ceil(block) * block {
                *b = 1e30;
            }
        }
        b
    };
    let xb = if x_blocked { padded(&x, g.c_in, spatial) } else { x.clone() };
    let rb = padded(&r, g.c_out, out_spatial);
    let clamp = [None, Some([0.0, f32::INFINITY]), Some([-0.5, 0.75])][trial % 3];
    let yb = conv_forward_blocked(g, &xb, x_blocked, &packed, Some(&b), Some(Cow::Borrowed(&rb)), clamp, None);
    assert_eq!(yb.len(), rb.len());
    // the residual given by value is summed in place, to the same bits
    let in_place =
        conv_forward_blocked(g, &xb, x_blocked, &packed, Some(&b), Some(Cow::Owned(rb.clone())), clamp, None);
    assert!(in_place.iter().zip(&yb).all(|(a, b)| a.to_bits() == b.to_bits()), "trial {trial}: {g:?} in place");
    let y = to_planar(&yb, g.batch, g.c_out, out_spatial, block);
    let naive = conv_forward_naive(g, &x, &w, Some(&b));
    let scale = conv_forward_naive(g, &abs(&x), &abs(&w), Some(&abs(&b)));
    let n = (g.weight_len() / g.c_out + 2) as f32;
    let at = |v: f32| clamp.map_or(v, |[lo, hi]| v.clamp(lo, hi));
    for (i, &got) in y.iter().enumerate() {
        let bound = n * f32::EPSILON * (scale[i] + r[i].abs());
        let want = at(naive[i] + r[i]);
        assert!(
            (got - want).abs() <= bound,
            "trial {trial}: {g:?} output {i}: {got} against {want} (x blocked: {x_blocked})"
        );
    }
    // the epilogue sees every output once, after its final value
    let then =
        |at: usize, run: &mut [f32]| run.iter_mut().enumerate().for_each(|(i, v)| *v = 2.0 * *v + (at + i) as f32);
    let fused =
        conv_forward_blocked(g, &xb, x_blocked, &packed, Some(&b), Some(Cow::Borrowed(&rb)), clamp, Some(&then));
    for (i, (&f, &p)) in fused.iter().zip(&yb).enumerate() {
        assert_eq!(f.to_bits(), (2.0 * p + i as f32).to_bits(), "trial {trial}: {g:?} epilogue at {i}");
    }
}

#[test]
fn winograd_convolution_equals_the_loop() {
    for_each_level(&TEST_THREADS, winograd_cases);
}

/// Winograd's F(2x2, 3x3) on blocked values at the AVX2 and AVX-512 levels equals the
/// loop within its rounding bound ([`winograd_scale`]), and gives the same bits on one
/// thread as on the level's threads: odd sizes (tiles past the last row and column),
/// padding 0, 1 and 2 before and more or less after, outputs of one position, channels
/// that do not fill their last block, a residual (by reference and in place) with each
/// clamp, an epilogue, more input channels than one chunk of weights at either level (the
/// sums carry over), and an empty batch. The thread counts split the work differently:
/// units of one tile to whole samples, starting within rows and across samples, output
/// channels in one part or several.
fn winograd_cases(level: Isa, _threads: usize) {
    use fovea::kernels::blocked::{block, to_blocked, to_planar};
    use fovea::kernels::conv::{winograd, WinogradWeights};
    use std::borrow::Cow;
    let Some(block) = block() else {
        assert!(level < Isa::Avx2, "no blocked layout at {level}");
        return;
    };
    let mut rng = Rng::new(23);
    // batch, input and output channels, input size, padding before and after
    let cases = [
        (1, 32, 32, [8, 8], [1, 1]),
        (2, 37, 45, [7, 9], [1, 1]),
        (3, 33, 64, [5, 6], [0, 0]),
        (1, 40, 48, [6, 5], [2, 1]),
        (2, 64, 40, [3, 3], [0, 0]),
        (1, 48, 33, [10, 11], [1, 0]),
        (1, 40, 48, [6, 5], [0, 2]),
        (1, 256, 256, [4, 130], [1, 1]),
        (2, 128, 128, [4, 170], [1, 1]),
        (1, 4200, 32, [4, 4], [1, 1]),
        (0, 32, 32, [4, 4], [1, 1]),
    ];
    for (trial, &(batch, c_in, c_out, [h, w], [before, after])) in cases.iter().enumerate() {
        let g = ConvGeometry {
            batch,
            c_in,
            c_out,
            groups: 1,
            input: [1, h, w],
            kernel: [1, 3, 3],
            stride: [1; 3],
            dilation: [1; 3],
            pad: [0, before, before],
            output: [1, h + before + after - 2, w + before + after - 2],
        };
        assert!(winograd::applies(&g), "{g:?} by Winograd's algorithm");
        let (spatial, out_spatial) = (g.in_spatial(), g.out_spatial());
        let x: Vec<f32> = (0..batch * c_in * spatial).map(|_| rng.normal()).collect();
        let wt: Vec<f32> = (0..g.weight_len()).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..c_out).map(|_| rng.normal()).collect();
        let r: Vec<f32> = (0..batch * c_out * out_spatial).map(|_| rng.normal()).collect();
        let weights = WinogradWeights::new(c_out, c_in, &wt).expect("weights transformed at AVX2 and above");
        assert!(weights.fit(&g));
        let xb = to_blocked(&x, batch, c_in, spatial, block);
        let rb = to_blocked(&r, batch, c_out, out_spatial, block);
        let clamp = [None, Some([0.0, f32::INFINITY]), Some([-0.5, 0.75])][trial % 3];
        let yb = winograd::forward(&g, &xb, &weights, Some(&b), Some(Cow::Borrowed(&rb)), clamp, None);
        let in_place = winograd::forward(&g, &xb, &weights, Some(&b), Some(Cow::Owned(rb.clone())), clamp, None);
        assert!(in_place.iter().zip(&yb).all(|(a, b)| a.to_bits() == b.to_bits()), "{g:?} in place");
        let one_thread = fovea::kernels::scoped(level, 1, || {
            winograd::forward(&g, &xb, &weights, Some(&b), Some(Cow::Borrowed(&rb)), clamp, None)
        });
        let one_thread = one_thread.expect("a level this CPU has");
        assert!(one_thread.iter().zip(&yb).all(|(a, b)| a.to_bits() == b.to_bits()), "{g:?} on one thread");
        let y = to_planar(&yb, batch, c_out, out_spatial, block);
        let naive = conv_forward_naive(&g, &x, &wt, Some(&b));
        let scale = winograd_scale(&g, &x, &wt);
        let at = |v: f32| clamp.map_or(v, |[lo, hi]| v.clamp(lo, hi));
        for (i, &got) in y.iter().enumerate() {
            let o = i / out_spatial % c_out;
            let bound = (c_in + 12) as f32 * f32::EPSILON * (scale[i] + b[o].abs() + r[i].abs());
            let want = at(naive[i] + r[i]);
            assert!((got - want).abs() <= bound, "{g:?} output {i}: {got} against {want} (bound {bound})");
        }
        let then =
            |at: usize, run: &mut [f32]| run.iter_mut().enumerate().for_each(|(i, v)| *v = 2.0 * *v + (at + i) as f32);
        let fused = winograd::forward(&g, &xb, &weights, Some(&b), Some(Cow::Borrowed(&rb)), clamp, Some(&then));
        for (i, (&f, &p)) in fused.iter().zip(&yb).enumerate() {
            assert_eq!(f.to_bits(), (2.0 * p + i as f32).to_bits(), "{g:?} epilogue at {i}");
        }
    }
}

/// What bounds the rounding of F(2x2, 3x3) at each output (`[N][C][H][W]`): the
/// algorithm run on absolute values, `Σ_c |Aᵀ| (|Bᵀ| |d| |B| ⊙ |G| |g| |Gᵀ|) |A|`, in
/// f64. Each transform and the sum over channels round its terms by at most
/// `(c_in + 12)·ε` of this in all (`c_in` for the sum, a few for each transform).
fn winograd_scale(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    const BT: [[f64; 4]; 4] = [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]];
    const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0.0, 0.0, 1.0]];
    const AT: [[f64; 4]; 2] = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]];
    let ([h, wd], [oh, ow], pad) = ([g.input[1], g.input[2]], [g.output[1], g.output[2]], [g.pad[1], g.pad[2]]);
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    let u: Vec<[f64; 16]> = w
        .chunks_exact(9)
        .map(|k| {
            std::array::from_fn(|xi| {
                let (a, b) = (xi / 4, xi % 4);
                (0..9).map(|t| G[a][t / 3] * (k[t] as f64).abs() * G[b][t % 3]).sum()
            })
        })
        .collect();
    let mut out = vec![0.0f32; g.batch * g.c_out * oh * ow];
    for n in 0..g.batch {
        for ti in 0..th {
            for tj in 0..tw {
                let v: Vec<[f64; 16]> = (0..g.c_in)
                    .map(|c| {
                        let d = |r: usize, s: usize| {
                            let (y, xx) = ((2 * ti + r).checked_sub(pad[0]), (2 * tj + s).checked_sub(pad[1]));
                            match (y, xx) {
                                (Some(y), Some(xx)) if y < h && xx < wd => {
                                    (x[((n * g.c_in + c) * h + y) * wd + xx] as f64).abs()
                                }
                                _ => 0.0,
                            }
                        };
                        std::array::from_fn(|xi| {
                            let (a, b) = (xi / 4, xi % 4);
                            (0..16).map(|t| BT[a][t / 4] * d(t / 4, t % 4) * BT[b][t % 4]).sum()
                        })
                    })
                    .collect();
                for o in 0..g.c_out {
                    let mut m = [0.0f64; 16];
                    for (c, v) in v.iter().enumerate() {
                        for xi in 0..16 {
                            m[xi] += v[xi] * u[o * g.c_in + c][xi];
                        }
                    }
                    for (i, row) in AT.iter().enumerate() {
                        for (j, col) in AT.iter().enumerate() {
                            let (y, xx) = (2 * ti + i, 2 * tj + j);
                            if y < oh && xx < ow {
                                let s: f64 = (0..16).map(|xi| row[xi / 4] * m[xi] * col[xi % 4]).sum();
                                out[((n * g.c_out + o) * oh + y) * ow + xx] = s as f32;
                            }
                        }
                    }
                }
            }
        }
    }
    out
}
