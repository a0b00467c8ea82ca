//! fovea's side of the benchmarks: prints one JSON object of median timings (seconds).
//! `bench/run.py` runs this and `bench/pytorch_side.py` and writes docs/benchmarks.md.

use fovea::kernels::gemm::{matmul, MatRef};

use fovea::nn::Mode;
use fovea::ops::{self, ConvOptions, Padding};
use fovea::{Rng, Tensor, Var};
use fovea_vision::data::{FashionMnist, Split};
use fovea_vision::detect::{nms, Corners, Detection, NmsOptions};
use fovea_vision::train;
use serde_json::{json, Value};
use std::time::Instant;

/// (name, N, C, H, W, O, k, stride, padding)
type ConvShape = (&'static str, usize, usize, usize, usize, usize, usize, usize, usize);

const CONV_SHAPES: [ConvShape; 6] = [
    ("8x3x224x224 -> 64 k7 s2 p3", 8, 3, 224, 224, 64, 7, 2, 3),
    ("8x64x56x56 -> 64 k3 p1", 8, 64, 56, 56, 64, 3, 1, 1),
    ("8x256x28x28 -> 512 k1", 8, 256, 28, 28, 512, 1, 1, 0),
    ("1x192x28x28 -> 32 k5 p2", 1, 192, 28, 28, 32, 5, 1, 2),
    ("64x1x28x28 -> 6 k5 p2", 64, 1, 28, 28, 6, 5, 1, 2),
    ("64x6x14x14 -> 16 k5", 64, 6, 14, 14, 16, 5, 1, 0),
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = args.iter().position(|a| a == "--threads").map(|i| args[i + 1].parse().unwrap());
    let epochs: usize = args.iter().position(|a| a == "--epochs").map_or(3, |i| args[i + 1].parse().unwrap());
    // `--isa LEVEL` caps the kernel level (as FOVEA_ISA does)
    let isa = args.iter().position(|a| a == "--isa").map(|i| args.get(i + 1).map_or("", String::as_str).parse());
    if let Err(e) = isa.transpose().and_then(fovea::kernels::isa::init) {
        eprintln!("error: --isa: {e}");
        std::process::exit(2);
    }
    // before the kernel threads start (and allocate)
    fovea::kernels::keep_freed_memory();
    if let Err(e) = fovea::kernels::init_threads(threads) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    // under an MPI launcher (bench/distributed.py): the ranks share each step's batch
    let world = fovea::dist::init().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    });
    if let Some(i) = args.iter().position(|a| a == "--train-steps") {
        // Only N training steps of a model on synthetic data, pictures 1x28x28 unless
        // `--size C,H,W`, batch 64 unless `--batch B`: a target for profilers, and the
        // process's peak memory for docs/benchmarks.md. On several ranks each takes its
        // shard of the batch and the gradients are summed as `fovea train` sums them.
        let (name, steps): (&str, usize) = (&args[i + 1], args[i + 2].parse().unwrap());
        let size: Vec<usize> = args
            .iter()
            .position(|a| a == "--size")
            .map_or(vec![1, 28, 28], |j| args[j + 1].split(',').map(|v| v.parse().unwrap()).collect());
        let batch: usize = args.iter().position(|a| a == "--batch").map_or(64, |j| args[j + 1].parse().unwrap());
        let model = fovea_vision::models::build(name, 10, &mut Rng::new(0)).unwrap();
        let params = fovea::nn::trainable_parameters(model.as_ref()).into_iter().map(|(_, v)| v).collect();
        let gradients = fovea::dist::GradientSync::new(params, fovea::dist::BUCKET_FLOATS);
        let mut opt = train::make_optimizer(model.as_ref(), fovea::optim::OptimizerConfig::adam(1e-3, 0.0)).unwrap();
        let shard = world.shard(batch);
        let x = Tensor::rand_uniform(&[shard.len(), size[0], size[1], size[2]], 0.0, 1.0, &mut Rng::new(1));
        let labels: Vec<usize> = shard.clone().map(|i| i % 10).collect();
        let mut times = Vec::new();
        // one step more than timed: the first allocates every buffer
        for step in 0..=steps {
            let started = Instant::now();
            let mode = Mode::train_shard(step as u64, shard.start as u64);
            let logits = model.forward_mode(&Var::constant(x.clone()), mode).unwrap();
            let loss = ops::cross_entropy(&logits, &labels).unwrap();
            opt.zero_grad();
            gradients.backward(Some(&loss), shard.len() as f32 / batch as f32).unwrap();
            opt.step().unwrap();
            times.push(started.elapsed().as_secs_f64());
        }
        // the kernel's high-water mark of resident memory (Linux)
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let peak = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: unknown");
        if world.is_root() {
            println!(
                "{:.1} ms per step of {batch} after the first (median {:.1} ms) on {} ranks of {} threads; peak \
                 resident memory {}",
                times[1..].iter().sum::<f64>() * 1e3 / steps.max(1) as f64,
                median(times[1..].to_vec()) * 1e3,
                world.size(),
                fovea::kernels::num_threads(),
                peak.trim_start_matches("VmHWM:").trim()
            );
        }
        fovea::dist::finish();
        return;
    }
    if args.iter().any(|a| a == "--allreduce") {
        // The time of summing N floats over the ranks, as training sums a gradient bucket
        // (through the MPI thread), for N of 1 (the latency) and from 60 K to 25 M: median of 9
        // after a warm-up.
        let mut rows = Vec::new();
        for n in [1usize, 60_000, 250_000, 1_000_000, 4_000_000, 11_700_000, 25_000_000] {
            let data = vec![1.0f32; n];
            let seconds = time(9, || {
                world.sum_f32(data.clone(), "the benchmark").unwrap();
            });
            rows.push(json!({"floats": n, "bytes": 4 * n, "seconds": seconds}));
        }
        if world.is_root() {
            println!("{}", json!({"ranks": world.size(), "allreduce": rows}));
        }
        fovea::dist::finish();
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--onnx") {
        // an ONNX model at batch B on 3x224x224 (or `--size C,H,W`, any rank) inputs: load time and
        // the median of REPS runs, as JSON (bench/onnx_runtimes.py)
        let (path, batch, reps): (&str, usize, usize) =
            (&args[i + 1], args[i + 2].parse().unwrap(), args[i + 3].parse().unwrap());
        let size: Vec<usize> = args
            .iter()
            .position(|a| a == "--size")
            .map_or(vec![3, 224, 224], |j| args[j + 1].split(',').map(|v| v.parse().unwrap()).collect());
        let shape: Vec<usize> = std::iter::once(batch).chain(size).collect();
        let model = fovea::io::onnx::load(std::path::Path::new(path)).unwrap();
        let started = Instant::now();
        let name = model.graph.inputs[0].name.clone();
        let graph = fovea::graph::Graph::from_onnx(&model, &[(name, shape.to_vec())]).unwrap();
        let load = started.elapsed().as_secs_f64();
        let x = fovea::graph::Value::float(Tensor::rand_uniform(&shape, -1.0, 1.0, &mut Rng::new(0)));
        let seconds = time(reps, || {
            graph.run(vec![x.clone()]).unwrap();
        });
        if args.iter().any(|a| a == "--profile") {
            // per step, the median over REPS runs, to stderr
            let mut whole = Vec::new();
            let runs: Vec<_> = (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    let r = graph.run_profiled(vec![x.clone()]).unwrap().1;
                    whole.push(t.elapsed().as_secs_f64() * 1e3);
                    r
                })
                .collect();
            let sums: Vec<f64> = runs.iter().map(|r| r.iter().map(|d| d.as_secs_f64() * 1e3).sum()).collect();
            eprintln!("whole runs {:.3} ms, steps {:.3} ms (medians)", median(whole), median(sums));
            for (s, step) in graph.steps().iter().enumerate() {
                let mut t: Vec<f64> = runs.iter().map(|r| r[s].as_secs_f64() * 1e3).collect();
                t.sort_by(f64::total_cmp);
                let shape = step.output_shapes.first().cloned().flatten().unwrap_or_default();
                eprintln!("{:8.3} {:20} {:?} {}", t[t.len() / 2], step.op_type, shape, step.name);
            }
        }
        println!("{}", serde_json::json!({"load": load, "seconds": seconds}));
        return;
    }
    let mut rng = Rng::new(0);
    if let Some(i) = args.iter().position(|a| a == "--gemm") {
        // one single-threaded GEMM of the given M K N, repeated: call overhead at small sizes
        let d: Vec<usize> = args[i + 1..i + 4].iter().map(|v| v.parse().unwrap()).collect();
        let (m, k, n) = (d[0], d[1], d[2]);
        let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
        let mut c = vec![0.0f32; m * n];
        let t = time(20, || {
            for _ in 0..100 {
                matmul(MatRef::new(&a, m, k), MatRef::new(&b, k, n), &mut c, false, false);
            }
        }) / 100.0;
        println!("{m}x{k}x{n}: {:.2} us, {:.1} GFLOP/s", t * 1e6, 2.0 * (m * k * n) as f64 / t / 1e9);
        return;
    }
    if args.iter().any(|a| a == "--ops") {
        // per-op forward timings at LeNet-5's first layers (batch 64)
        let x = Var::param(Tensor::randn(&[64, 6, 28, 28], 1.0, &mut rng));
        let pool = fovea::ops::PoolOptions::new(2);
        let relu = time(50, || {
            ops::relu(&x).unwrap();
        });
        let pooled = time(50, || {
            ops::max_pool(&x, &pool).unwrap();
        });
        let y = ops::max_pool(&x, &pool).unwrap();
        let pool_bwd = time(50, || {
            y.backward_with(Tensor::ones(&y.shape())).unwrap();
        });
        let g = fovea::kernels::pool::PoolGeometry {
            planes: 64 * 6,
            input: [1, 28, 28],
            kernel: [1, 2, 2],
            stride: [1, 2, 2],
            pad: [0, 0, 0],
            output: [1, 14, 14],
        };
        let xv = x.tensor();
        let (mut yk, mut ak) = (vec![0.0f32; 64 * 6 * 196], vec![0u32; 64 * 6 * 196]);
        let kernel = time(50, || fovea::kernels::pool::max_pool_forward(&g, xv.data(), &mut yk, &mut ak));
        println!(
            "relu {:.1} us, max_pool {:.1} us (kernel alone {:.1} us), max_pool backward {:.1} us",
            relu * 1e6,
            pooled * 1e6,
            kernel * 1e6,
            pool_bwd * 1e6
        );
        return;
    }
    if args.iter().any(|a| a == "--matmul") {
        println!("{}", matmul_2048(&mut rng));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--infer") {
        // N inference passes of a zoo model at 224x224: a target for profilers
        let (arch, batch, n): (&str, usize, usize) =
            (&args[i + 1], args[i + 2].parse().unwrap(), args[i + 3].parse().unwrap());
        let model = fovea_vision::models::build(arch, 1000, &mut Rng::new(0)).unwrap();
        let x = Var::constant(Tensor::randn(&[batch, 3, 224, 224], 1.0, &mut Rng::new(1)));
        // (as `fovea classify` runs it: the pool's threads kept awake through the forward)
        let t = time(n, || {
            fovea::no_grad(|| fovea::kernels::with_warm_threads(|| model.forward(&x).unwrap()));
        });
        println!("{arch} batch {batch}: median {:.1} ms", t * 1e3);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--conv") {
        // one convolution N,C,H,W,O,k,stride,padding: forward at batch N (a profiling target)
        let d: Vec<usize> = args[i + 1].split(',').map(|v| v.parse().unwrap()).collect();
        let [n, c, h, w, o, k, s, p] = d[..] else { panic!("--conv N,C,H,W,O,k,stride,padding") };
        let x = Var::constant(Tensor::randn(&[n, c, h, w], 1.0, &mut rng));
        let wt = Var::constant(Tensor::randn(&[o, c, k, k], 0.1, &mut rng));
        let opts = ConvOptions::default().stride(s).padding(Padding::symmetric(p));
        let t = time(51, || {
            ops::conv2d(&x, &wt, None, &opts).unwrap();
        });
        let flops = 2.0 * (n * o * c * k * k * ((h + 2 * p - k) / s + 1) * ((w + 2 * p - k) / s + 1)) as f64;
        println!("{:.3} ms, {:.0} GFLOP/s", t * 1e3, flops / t / 1e9);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--nms") {
        // greedy per-class NMS over the boxes of an .npy [N, 6] (x0 y0 x1 y1 score class)
        let t = fovea::io::read_npy(std::path::Path::new(&args[i + 1])).unwrap();
        let dets: Vec<Detection> = t
            .data()
            .chunks(6)
            .map(|r| Detection {
                bbox: Corners { x0: r[0], y0: r[1], x1: r[2], y1: r[3] }.center_form(),
                score: r[4],
                class: r[5] as usize,
            })
            .collect();
        let options = NmsOptions { max_detections: usize::MAX, ..Default::default() };
        let kept = nms(&dets, &options).len();
        let seconds = time(21, || {
            nms(&dets, &options);
        });
        println!("{}", json!({"nms": {"boxes": dets.len(), "kept": kept, "seconds": seconds}}));
        return;
    }
    if args.iter().any(|a| a == "--augment") {
        // `--augment --alone`: only the augmentation's own cost (a profiling target)
        println!("{}", json!({"augment": augment_epochs(!args.iter().any(|a| a == "--alone"))}));
        return;
    }
    if args.iter().any(|a| a == "--stylize") {
        println!("{}", json!({"stylize": stylize_step()}));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--load") {
        // `--load URL PICTURE CLIENTS REQUESTS`: the load generator of bench/serve.py
        let (url, picture) = (&args[i + 1], std::path::Path::new(&args[i + 2]));
        let (clients, requests) = (args[i + 3].parse().unwrap(), args[i + 4].parse().unwrap());
        println!("{}", load(url, picture, clients, requests));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--faces-from-file") {
        // `--faces-from-file N`: the CLI's in-process chain on sample N (decode the JPEG,
        // then the networks), milliseconds, median of 15 after a warm-up
        let photo: usize = args[i + 1].parse().unwrap();
        println!("{}", json!({"faces_from_file": faces_from_file(photo)}));
        return;
    }
    if args.iter().any(|a| a == "--faces") {
        println!("{}", json!({"faces": faces()}));
        return;
    }
    if args.iter().any(|a| a == "--zoo-only") {
        println!("{}", json!({"zoo": zoo()}));
        return;
    }
    let mut out = serde_json::Map::new();
    out.insert("threads".into(), json!(fovea::kernels::num_threads()));
    out.insert("isa".into(), json!(fovea::kernels::isa::current().name()));

    // `--shape TEXT`: only the shapes whose name contains TEXT (for profiling)
    let only = args.iter().position(|a| a == "--shape").map(|i| args[i + 1].clone());
    let mut convs = Vec::new();
    for (name, n, c, h, w, o, k, s, p) in CONV_SHAPES {
        if only.as_ref().is_some_and(|t| !name.contains(t.as_str())) {
            continue;
        }
        let x = Var::param(Tensor::randn(&[n, c, h, w], 1.0, &mut rng));
        let wt = Var::param(Tensor::randn(&[o, c, k, k], 0.1, &mut rng));
        let b = Var::param(Tensor::zeros(&[o]));
        let opts = ConvOptions::default().stride(s).padding(Padding::symmetric(p));
        let reps = if n * c * h * w > 1_000_000 { 15 } else { 20 };
        let fwd = time(reps, || {
            fovea::no_grad(|| ops::conv2d(&x, &wt, Some(&b), &opts).unwrap());
        });
        let fwd_bwd = time(reps, || {
            let y = ops::conv2d(&x, &wt, Some(&b), &opts).unwrap();
            y.backward_with(Tensor::ones(&y.shape())).unwrap();
        });
        let oh = (h + 2 * p - k) / s + 1;
        let flops = 2.0 * (n * o * oh * oh * c * k * k) as f64;
        convs.push(
            json!({"shape": name, "forward": fwd, "forward_backward": fwd_bwd, "gflops_forward": flops / fwd / 1e9}),
        );
    }
    out.insert("conv2d".into(), Value::Array(convs));
    if args.iter().any(|a| a == "--conv-only") {
        println!("{}", Value::Object(out));
        return;
    }
    out.insert("zoo".into(), zoo());

    out.insert("matmul_2048".into(), matmul_2048(&mut rng));

    let dir = FashionMnist::default_dir();
    let train_set = FashionMnist::load(&dir, Split::Train).unwrap();
    let test_set = FashionMnist::load(&dir, Split::Test).unwrap();
    let model = fovea_vision::models::lenet5(10, &mut Rng::new(0)).unwrap();
    let mut opt = train::make_optimizer(&model, fovea::optim::OptimizerConfig::adam(1e-3, 0.0)).unwrap();
    let epoch_times: Vec<f64> = (0..epochs)
        .map(|e| {
            let t = Instant::now();
            train::train_epoch(&model, &mut opt, &train_set, 64, &mut Rng::new(e as u64), None, &mut |_| {}).unwrap();
            t.elapsed().as_secs_f64()
        })
        .collect();
    out.insert("lenet_epoch".into(), json!(median(epoch_times)));
    let eval = time(5, || {
        train::evaluate(&model, &test_set, 1000).unwrap();
    });
    out.insert("lenet_eval".into(), json!(eval));
    println!("{}", Value::Object(out));
}

/// The case-study networks at 224x224: inference at batch 1 and 8, and a ResNet-18
/// training step (SGD with momentum) at batch 8.
fn zoo() -> Value {
    let mut rows = Vec::new();
    for arch in ZOO {
        let model = fovea_vision::models::build(arch, 1000, &mut Rng::new(0)).unwrap();
        for batch in [1, 8] {
            let x = Var::constant(Tensor::randn(&[batch, 3, 224, 224], 1.0, &mut Rng::new(1)));
            let t = time(if batch == 1 { 11 } else { 5 }, || {
                fovea::no_grad(|| model.forward(&x).unwrap());
            });
            rows.push(json!({"arch": arch, "batch": batch, "seconds": t}));
        }
    }
    let model = fovea_vision::models::build("resnet18", 1000, &mut Rng::new(0)).unwrap();
    let mut opt = train::make_optimizer(model.as_ref(), fovea::optim::OptimizerConfig::sgd(0.01, 0.9, 0.0)).unwrap();
    let x = Var::constant(Tensor::randn(&[8, 3, 224, 224], 1.0, &mut Rng::new(1)));
    let labels: Vec<usize> = (0..8).collect();
    let step = time(5, || {
        let loss = ops::cross_entropy(&model.forward_mode(&x, Mode::train(0)).unwrap(), &labels).unwrap();
        opt.zero_grad();
        loss.backward().unwrap();
        opt.step().unwrap();
    });
    json!({"inference": rows, "resnet18_train_step_batch8": step})
}

/// face-api's chain on the sample photos: tiny detector (416), 68 landmarks and a
/// descriptor per face; milliseconds per photo (median of 5 after a warm-up).
fn faces() -> Value {
    use fovea_vision::face::{default_models_dir, Detector, Pipeline, Stage};
    let pipeline = Pipeline::load(&default_models_dir(), Detector::Tiny { input_size: 416 }, Stage::Embed).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/faces");
    let mut photos = serde_json::Map::new();
    for i in 1..=6 {
        let rgb = fovea_vision::image::load_rgb(&dir.join(format!("sample{i}.jpg"))).unwrap();
        let t = time(5, || {
            pipeline.run(&rgb, 0.5).unwrap();
        });
        photos.insert(format!("sample{i}"), json!(t * 1e3));
    }
    Value::Object(photos)
}

/// [`faces`] from the JPEG file `sample<photo>.jpg`, as `fovea faces identify` runs it:
/// decode, then the networks; milliseconds (median of 15 after a warm-up).
fn faces_from_file(photo: usize) -> f64 {
    use fovea_vision::face::{default_models_dir, Detector, Pipeline, Stage};
    let pipeline = Pipeline::load(&default_models_dir(), Detector::Tiny { input_size: 416 }, Stage::Embed).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../data/faces/sample{photo}.jpg"));
    1e3 * time(15, || {
        pipeline.run(&fovea_vision::image::load_rgb(&path).unwrap(), 0.5).unwrap();
    })
}

/// `clients` threads POSTing `picture` as the multipart field `image` to `url`,
/// `requests` times in all: latency percentiles (ms), throughput (requests/s) and the
/// statuses of the answers that were not 200.
fn load(url: &str, picture: &std::path::Path, clients: usize, requests: usize) -> Value {
    let bytes = std::fs::read(picture).unwrap();
    let boundary = "fovea-bench-load";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"photo.jpg\"\r\n\
         Content-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend(&bytes);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    let results: Vec<(f64, u16)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < requests {
                        let t = Instant::now();
                        let status = match agent.post(url).header("Content-Type", &content_type).send(&body[..]) {
                            Ok(mut r) => {
                                let _ = r.body_mut().read_to_string();
                                r.status().as_u16()
                            }
                            Err(_) => 0,
                        };
                        mine.push((t.elapsed().as_secs_f64() * 1e3, status));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut ok: Vec<f64> = results.iter().filter(|r| r.1 == 200).map(|r| r.0).collect();
    ok.sort_by(f64::total_cmp);
    let percentile = |q: f64| ok.get(((ok.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied();
    let failed: Vec<u16> = results.iter().filter(|r| r.1 != 200).map(|r| r.1).collect();
    json!({
        "clients": clients,
        "requests": requests,
        "p50_ms": percentile(0.5),
        "p99_ms": percentile(0.99),
        "per_second": ok.len() as f64 / seconds,
        "failed": failed,
    })
}

/// Median seconds of a LeNet-5 epoch without and with augmentation on the loader thread
/// (every transform but PCA), alternating so that machine noise hits both alike.
fn augment_epochs(with_epochs: bool) -> Value {
    const SPEC: &str = "mirror,crop,color,rotate,shear,warp";
    let train_set = FashionMnist::load(&FashionMnist::default_dir(), Split::Train).unwrap();
    let pipeline = fovea_vision::augment::Augment::parse(SPEC).unwrap();
    let model = fovea_vision::models::lenet5(10, &mut Rng::new(0)).unwrap();
    let mut opt = train::make_optimizer(&model, fovea::optim::OptimizerConfig::adam(1e-3, 0.0)).unwrap();
    let (mut plain, mut augmented) = (Vec::new(), Vec::new());
    for e in 0..if with_epochs { 6 } else { 0 } {
        for (times, augment) in [(&mut plain, None), (&mut augmented, Some(&pipeline))] {
            let t = Instant::now();
            train::train_epoch(&model, &mut opt, &train_set, 64, &mut Rng::new(e), augment, &mut |_| {}).unwrap();
            times.push(t.elapsed().as_secs_f64());
        }
    }
    // the augmentation alone, one core, every training picture
    let indices: Vec<usize> = (0..train_set.len()).collect();
    let alone = time(3, || {
        for (b, chunk) in indices.chunks(64).enumerate() {
            pipeline.batch(&train_set, chunk, b as u64).unwrap();
        }
    });
    if !with_epochs {
        return json!({"spec": SPEC, "augment_only": alone});
    }
    json!({"spec": SPEC, "plain": median(plain), "augmented": median(augmented), "augment_only": alone})
}

/// Median seconds per style-transfer step at 256x170 (the README's example, default layers).
fn stylize_step() -> Value {
    use fovea_vision::style::{stylize, Features, Start, StyleConfig};
    let net = Features::mobilenet().unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/images");
    let content = fovea_vision::image::load_rgb(&dir.join("chelsea.png")).unwrap();
    let content = fovea_vision::image::resize_bilinear(&content, 170, 256).unwrap();
    let style = fovea_vision::image::load_rgb(&dir.join("hubble.jpg")).unwrap();
    let style = fovea_vision::image::resize_bilinear(&style, 170, 256).unwrap();
    // conv5 for content, conv1, conv3, conv5, conv7, conv9 for style: MobileNet's defaults
    let config = StyleConfig { steps: 21, start: Start::Content, ..StyleConfig::default() };
    let mut stamps = vec![Instant::now()];
    stylize(&net, &content, &style, &config, &mut |_, _| {
        stamps.push(Instant::now());
        Ok(())
    })
    .unwrap();
    let mut steps: Vec<f64> = stamps.windows(2).skip(1).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    steps.sort_by(f64::total_cmp);
    json!({"width": 256, "height": 170, "seconds_per_step": steps[steps.len() / 2]})
}

const ZOO: [&str; 5] = ["resnet18", "resnet50", "vgg16", "googlenet", "alexnet"];

fn matmul_2048(rng: &mut Rng) -> Value {
    let n = 2048;
    let a: Vec<f32> = (0..n * n).map(|_| rng.normal()).collect();
    let bm: Vec<f32> = (0..n * n).map(|_| rng.normal()).collect();
    let mut cm = vec![0.0f32; n * n];
    let t = time(7, || matmul(MatRef::new(&a, n, n), MatRef::new(&bm, n, n), &mut cm, false, true));
    json!({"seconds": t, "gflops": 2.0 * (n as f64).powi(3) / t / 1e9})
}
