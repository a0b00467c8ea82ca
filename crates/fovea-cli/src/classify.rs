//! `fovea train`, `fovea eval`, `fovea predict`: Fashion-MNIST classifiers.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use fovea::nn::{parameter_count, Module};
use fovea::{Rng, Var};
use fovea_vision::augment::Augment;
use fovea_vision::data::image_folder::fit_image;
use fovea_vision::data::{self, Dataset, FashionMnist, Split};
use fovea_vision::train::{self, RunMeta};
use fovea_vision::transfer::{self, Frozen};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Copy, ValueEnum)]
pub enum OptimizerName {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Architecture: lenet5 (the default), cnn-bn, or any of the zoo (resnet18, vgg11_bn, googlenet, ...)
    #[arg(long)]
    model: Option<String>,
    /// Side of the square images the model is trained on (default: 28 for lenet5 and cnn-bn;
    /// for the ImageNet architectures 32 on Fashion-MNIST, 64 for alexnet, 224 on image folders)
    #[arg(value_parser = crate::range::whole(8, 1024), long)]
    image_size: Option<usize>,
    /// Epochs in all (default 10; with --resume, the run's own plan)
    #[arg(value_parser = crate::range::count, long)]
    epochs: Option<usize>,
    /// Pictures per batch [default: 64]
    #[arg(value_parser = crate::range::count, long)]
    batch_size: Option<usize>,
    /// [default: adam]
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerName>,
    /// Learning rate (default: 0.001 for Adam/AdamW, 0.01 for SGD; with --resume, overrides the run's)
    #[arg(value_parser = crate::range::positive::<f32>, long)]
    lr: Option<f32>,
    /// SGD momentum [default: 0.9]
    #[arg(value_parser = crate::range::fraction::<f32>, long)]
    momentum: Option<f32>,
    /// [default: 0]
    #[arg(value_parser = crate::range::non_negative::<f32>, long)]
    weight_decay: Option<f32>,
    /// [default: 0]
    #[arg(long)]
    seed: Option<u64>,
    /// Run folder (default: runs/<model>-<unix time>)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its last completed epoch (up to --epochs in all),
    /// with the run's own data, model and optimizer settings (a new --lr may be given)
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Use only N training images (Fashion-MNIST's first N; an image folder's from each class in turn)
    #[arg(value_parser = crate::range::count, long)]
    train_size: Option<usize>,
    /// Fashion-MNIST's IDX files (default: the repository's data/fashion-mnist), or an image
    /// folder with one sub-folder per class (optionally split into train/ and val/)
    #[arg(long)]
    data: Option<PathBuf>,
    /// Augment the training pictures on the loader thread: a comma-separated list of
    /// mirror, crop[:MIN_AREA], color[:SHIFT], pca[:SIGMA], rotate[:DEGREES], shear[:FACTOR],
    /// warp[:STRENGTH], e.g. mirror,crop,color,rotate:15,shear:0.2,warp
    #[arg(long)]
    augment: Option<String>,
    /// Start from pretrained weights (a run folder or a safetensors file with the model's
    /// tensor names); every layer but the classifier head is copied, the head is new
    #[arg(long)]
    init: Option<PathBuf>,
    /// Freeze the layers up to and including this one (no gradient, no update, evaluation
    /// mode); `none` fine-tunes everything
    #[arg(long)]
    freeze: Option<String>,
    /// The classes of the new head; must match the classes in --data
    #[arg(value_parser = crate::range::count, long)]
    num_classes: Option<usize>,
    /// With --freeze: compute the frozen layers' outputs once (kept in the run folder as
    /// features.safetensors) and train the rest on them
    #[arg(long)]
    cache_features: bool,
    /// Print one JSON object per epoch instead of a progress bar
    #[arg(long)]
    json: bool,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long, conflicts_with = "resume")]
    force: bool,
}

/// The model tensors of a run folder or checkpoint (its optimizer state left out), or of
/// any safetensors file.
fn pretrained_tensors(path: &Path) -> Result<BTreeMap<String, fovea::Tensor>> {
    let file = if path.is_dir() { path.join(train::CHECKPOINT_FILE) } else { path.to_path_buf() };
    let (tensors, _) = fovea::io::read_safetensors(&file)?;
    Ok(tensors.into_iter().filter(|(name, _)| !name.starts_with("optimizer.")).collect())
}

/// The frozen layers' outputs for the training and test pictures: read from the run
/// folder's `features.safetensors` when it holds them for these pictures, else computed
/// and written there.
fn cached_features(
    run_dir: &Path,
    frozen: &Frozen,
    train_set: &Dataset,
    test_set: &Dataset,
    quiet: bool,
) -> Result<(fovea::Tensor, fovea::Tensor)> {
    let path = run_dir.join("features.safetensors");
    // what the cache was made from: the frozen weights and the pictures, summarised
    let sum = |data: &[f32]| data.iter().map(|&v| v as f64).sum::<f64>();
    let mut weights = 0.0;
    frozen.visit_frozen(&mut |_, v| weights += sum(v.value().data()));
    let fingerprint = format!(
        "{weights:e} {} {:e} {} {:e}",
        train_set.len(),
        sum(train_set.images.data()),
        test_set.len(),
        sum(test_set.images.data())
    );
    if let Ok((mut t, meta)) = fovea::io::read_safetensors(&path) {
        if let (Some(tr), Some(te), Some(true)) =
            (t.remove("train"), t.remove("test"), meta.get("made_from").map(|m| *m == fingerprint))
        {
            return Ok((tr, te));
        }
    }
    let start = Instant::now();
    let train_features = frozen.features_all(&train_set.images, 500)?;
    let test_features = frozen.features_all(&test_set.images, 500)?;
    std::fs::create_dir_all(run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    fovea::io::write_safetensors(
        &path,
        &[("train".into(), train_features.clone()), ("test".into(), test_features.clone())],
        [("made_from".to_string(), fingerprint)].into(),
    )?;
    if !quiet {
        eprintln!(
            "frozen layers' outputs computed once in {:.1} s, cached in {}",
            start.elapsed().as_secs_f32(),
            path.display()
        );
    }
    Ok((train_features, test_features))
}

pub(crate) fn data_dir(arg: &Option<PathBuf>) -> PathBuf {
    arg.clone().unwrap_or_else(FashionMnist::default_dir)
}

/// The input `[C, H, W]` a new run of `model` trains on.
pub(crate) fn training_input(model: &str, fashion: bool, image_size: Option<usize>) -> Result<[usize; 3]> {
    let [c, h, _] = fovea_vision::models::default_input(model);
    let size = image_size.unwrap_or(match (fashion, c, model) {
        (false, _, _) | (true, 1, _) => h,
        (true, _, "alexnet") => 64,
        (true, _, _) => 32,
    });
    if !(8..=1024).contains(&size) {
        bail!("--image-size must be between 8 and 1024, got {size}");
    }
    Ok([c, size, size])
}

/// Refuses an option given with `--resume` whose value differs from the run's own.
fn keeps<T: PartialEq + std::fmt::Display>(option: &str, given: Option<T>, run: T) -> Result<()> {
    match given {
        Some(v) if v != run => {
            bail!("--{option} {v} differs from the run's {run}; a resumed run keeps its own (start a new run to change it)")
        }
        _ => Ok(()),
    }
}

pub fn train(a: TrainArgs) -> Result<()> {
    if a.resume.is_some() && (a.init.is_some() || a.freeze.is_some() || a.cache_features) {
        bail!("--init, --freeze and --cache-features start a run; a resumed run keeps its own");
    }
    let freezes = a.freeze.as_deref().is_some_and(|f| f != "none");
    if a.cache_features && !freezes {
        bail!("--cache-features needs --freeze LAYER: only frozen layers' outputs can be cached");
    }
    if a.cache_features && a.augment.is_some() {
        bail!("--cache-features cannot go with --augment: the cache holds the pictures' features unaugmented");
    }
    let resumed = a.resume.as_ref().map(|r| train::load_checkpoint(r)).transpose()?;
    let optimizer_name = a.optimizer.map(|o| match o {
        OptimizerName::Sgd => "sgd",
        OptimizerName::Adam => "adam",
        OptimizerName::Adamw => "adamw",
    });
    if let Some(ckpt) = &resumed {
        let run = &ckpt.meta;
        keeps("batch-size", a.batch_size, run.batch_size)?;
        keeps("optimizer", optimizer_name, run.optimizer.as_str())?;
        keeps("momentum", a.momentum, run.momentum)?;
        keeps("weight-decay", a.weight_decay, run.weight_decay)?;
        keeps("seed", a.seed, run.seed)?;
        if let Some(n) = run.train_size {
            keeps("train-size", a.train_size, n)?;
        }
    }
    // runs made before the size was recorded take it from the option, as they did then
    let train_size = resumed.as_ref().and_then(|ckpt| ckpt.meta.train_size).or(a.train_size);
    let model_name = match (&a.model, &resumed) {
        (Some(m), Some(ckpt)) if *m != ckpt.meta.model => {
            bail!("the run to resume trains {}; it cannot continue as --model {m}", ckpt.meta.model)
        }
        (_, Some(ckpt)) => ckpt.meta.model.clone(),
        (m, None) => m.clone().unwrap_or_else(|| "lenet5".into()),
    };
    let dir = match (&a.data, &resumed) {
        (given, Some(ckpt)) => {
            let run = ckpt.meta.data.as_ref().map(PathBuf::from).unwrap_or_else(FashionMnist::default_dir);
            match given {
                // the run's folder may have moved: then --data says where to (a Fashion-MNIST
                // run records none)
                Some(given)
                    if ckpt.meta.data.is_some()
                        && run.exists()
                        && std::fs::canonicalize(given).ok() != std::fs::canonicalize(&run).ok() =>
                {
                    bail!(
                        "--data {} differs from the run's {}; a resumed run keeps its own",
                        given.display(),
                        run.display()
                    )
                }
                Some(given) => given.clone(),
                None => run,
            }
        }
        (given, None) => data_dir(given),
    };
    let fashion = data::is_fashion_mnist(&dir);
    let shape = match &resumed {
        Some(ckpt) => {
            let shape = ckpt.meta.input_shape()?;
            if a.image_size.is_some_and(|s| s != shape[1]) {
                bail!("the run to resume trains on {}x{} images; --image-size cannot change that", shape[1], shape[2]);
            }
            shape
        }
        None => {
            let shape = training_input(&model_name, fashion, a.image_size)?;
            // before any data is loaded: does the network take this input at all?
            let probe = fovea_vision::models::build(&model_name, 2, &mut Rng::new(0))?;
            fovea::nn::summary::summarize(probe.as_ref(), &shape).with_context(|| {
                format!("{model_name} cannot take {}x{} images; choose another --image-size", shape[1], shape[2])
            })?;
            shape
        }
    };
    let (train_set, class_names) = data::load(&dir, Split::Train, shape, train_size)?;
    if class_names.len() < 2 {
        bail!("{} holds one class ({}); a classifier needs two or more", dir.display(), class_names.join(""));
    }
    if let Some(ckpt) = &resumed {
        if class_names != ckpt.meta.class_names {
            bail!(
                "{} has the classes {class_names:?}, but the run was trained on {:?}",
                dir.display(),
                ckpt.meta.class_names
            );
        }
    }
    if let Some(k) = a.num_classes {
        if k != class_names.len() {
            bail!(
                "--num-classes {k}, but {} holds {} classes ({})",
                dir.display(),
                class_names.len(),
                class_names.join(", ")
            );
        }
    }
    let (test_set, _) = data::load(&dir, Split::Test, shape, None)?;
    // an absolute path, so that eval and resume work from any folder
    let data_path = (!fashion).then(|| std::fs::canonicalize(&dir).unwrap_or(dir.clone()).display().to_string());

    let (run_dir, mut meta, model, mut optimizer) = if let (Some(resume), Some(ckpt)) = (&a.resume, resumed) {
        let model = train::model_from_checkpoint(&ckpt)?;
        let mut meta = ckpt.meta.clone();
        meta.epochs = a.epochs.unwrap_or(meta.epochs);
        meta.data = data_path;
        // A new learning rate may be given when resuming; everything else comes from the run.
        if let Some(lr) = a.lr {
            meta.lr = lr;
        }
        if let Some(layer) = &meta.freeze {
            Frozen::new(model.as_ref(), layer)?;
        }
        let mut opt = train::make_optimizer(model.as_ref(), meta.optimizer_config()?)?;
        opt.load_state(&ckpt.optimizer, meta.optimizer_steps)?;
        (resume.clone(), meta, model, opt)
    } else {
        let optimizer = optimizer_name.unwrap_or("adam");
        let lr = a.lr.unwrap_or(if optimizer == "sgd" { 0.01 } else { 0.001 });
        let seed = a.seed.unwrap_or(0);
        let meta = RunMeta {
            model: model_name.clone(),
            input: shape.to_vec(),
            data: data_path,
            train_size: Some(train_set.len()),
            classes: class_names.len(),
            class_names,
            optimizer: optimizer.into(),
            lr,
            momentum: a.momentum.unwrap_or(0.9),
            weight_decay: a.weight_decay.unwrap_or(0.0),
            batch_size: a.batch_size.unwrap_or(64),
            seed,
            augment: a.augment.as_deref().map(Augment::parse).transpose()?.map(|p| p.spec()),
            init: a.init.as_ref().map(|p| p.display().to_string()),
            freeze: a.freeze.clone().filter(|f| f != "none"),
            cache_features: a.cache_features,
            epochs: a.epochs.unwrap_or(10),
            epoch: 0,
            optimizer_steps: 0,
            history: vec![],
        };
        let model = fovea_vision::models::build(&model_name, meta.classes, &mut Rng::derive(seed, u64::MAX))?;
        if let Some(init) = &a.init {
            let context = || format!("--init {}", init.display());
            let tensors = pretrained_tensors(init).with_context(context)?;
            let (copied, head) = transfer::load_pretrained(model.as_ref(), &tensors).with_context(context)?;
            if !a.json {
                eprintln!("{copied} tensors from {}; a new head {head} for {} classes", init.display(), meta.classes);
            }
        }
        if let Some(layer) = &meta.freeze {
            Frozen::new(model.as_ref(), layer)?;
        }
        let opt = train::make_optimizer(model.as_ref(), meta.optimizer_config()?)?;
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let run_dir = a.out.clone().unwrap_or_else(|| PathBuf::from(format!("runs/{model_name}-{secs}")));
        // never overwrite a run that is already there
        if run_dir.join(train::CHECKPOINT_FILE).exists() && !a.force {
            bail!(
                "{} already holds a run; continue it with --resume {0}, choose another --out, or give --force to replace it",
                run_dir.display()
            );
        }
        train::check_new_folder(&run_dir, a.force)?;
        (run_dir, meta, model, opt)
    };
    let asked = a.augment.as_deref().map(Augment::parse).transpose()?.map(|p| p.spec());
    if a.resume.is_some() && asked.is_some() && asked != meta.augment {
        bail!(
            "the run to resume trains with --augment {:?}; it cannot change",
            meta.augment.as_deref().unwrap_or("(none)")
        );
    }
    let augment = match &meta.augment {
        Some(spec) => {
            let mut pipeline = Augment::parse(spec)?;
            pipeline.fit(&train_set.images)?;
            Some(pipeline)
        }
        None => None,
    };
    if meta.epoch >= meta.epochs {
        bail!("{} already completed {} epochs; pass a larger --epochs to continue", run_dir.display(), meta.epoch);
    }
    if !a.json {
        eprintln!(
            "training {} ({} parameters) on {} images, testing on {}, {} threads, {} kernels; run folder {}",
            meta.model,
            parameter_count(model.as_ref()),
            train_set.len(),
            test_set.len(),
            fovea::kernels::num_threads(),
            fovea::kernels::isa::current(),
            run_dir.display()
        );
    }
    let frozen = meta.freeze.as_deref().map(|layer| Frozen::new(model.as_ref(), layer)).transpose()?;
    let tail = frozen.as_ref().map(|f| f.tail());
    // what trains: the whole network, the part after the frozen layers, or that part alone
    // on the frozen layers' cached outputs
    let (trained, train_set, test_set): (&dyn Module, Dataset, Dataset) = match (&frozen, &tail) {
        (Some(f), Some(tail)) if meta.cache_features => {
            let (train_features, test_features) = cached_features(&run_dir, f, &train_set, &test_set, a.json)?;
            (
                tail,
                Dataset { images: train_features, labels: train_set.labels },
                Dataset { images: test_features, labels: test_set.labels },
            )
        }
        (Some(f), _) => (f, train_set, test_set),
        _ => (model.as_ref(), train_set, test_set),
    };
    for epoch in meta.epoch + 1..=meta.epochs {
        // Randomness derives from (seed, epoch), so a resumed run draws what an uninterrupted one would.
        let mut rng = Rng::derive(meta.seed, epoch as u64);
        let bar = crate::progress_bar(train_set.len(), a.json, format!("epoch {epoch}/{}", meta.epochs));
        let start = Instant::now();
        let progress = train::train_epoch(
            trained,
            &mut optimizer,
            &train_set,
            meta.batch_size,
            &mut rng,
            augment.as_ref(),
            &mut |p| {
                bar.set_position(p.seen as u64);
                bar.set_message(format!("loss {:.4} acc {:.4}", p.loss(), p.accuracy()));
            },
        );
        bar.finish_and_clear();
        let progress = progress.with_context(|| {
            format!("training stopped in epoch {epoch}; the last good checkpoint in {} is unchanged", run_dir.display())
        })?;
        let train_seconds = start.elapsed().as_secs_f32();
        let (test, _) = train::evaluate(trained, &test_set, 1000)?;
        let m = train::EpochMetrics {
            epoch,
            train_loss: progress.loss(),
            train_accuracy: progress.accuracy(),
            test_loss: test.loss(),
            test_accuracy: test.accuracy(),
            seconds: start.elapsed().as_secs_f32(),
            images_per_second: train_set.len() as f32 / train_seconds,
            isa: fovea::kernels::isa::current().to_string(),
            threads: fovea::kernels::num_threads(),
        };
        meta.epoch = epoch;
        meta.optimizer_steps = optimizer.steps;
        meta.history.push(m.clone());
        train::save_checkpoint(&run_dir, model.as_ref(), Some(&optimizer), &meta)?;
        train::write_metrics_csv(&run_dir.join("metrics.csv"), &meta.history)?;
        fovea_vision::plot::training_curves(&run_dir.join("plot.png"), &meta.history)?;
        if a.json {
            println!("{}", serde_json::to_string(&m)?);
        } else {
            eprintln!(
                "epoch {epoch}/{}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% | {:.1}s, {:.0} img/s",
                meta.epochs,
                m.train_loss,
                100.0 * m.train_accuracy,
                m.test_loss,
                100.0 * m.test_accuracy,
                m.seconds,
                m.images_per_second
            );
        }
    }
    let last = meta.history.last().expect("at least one epoch ran");
    if a.json {
        let mut summary = serde_json::to_value(last)?;
        summary["run"] = json!(run_dir.display().to_string());
        summary["final"] = json!(true);
        println!("{summary}");
    } else {
        eprintln!(
            "done: test accuracy {:.2}%; checkpoint, metrics.csv and plot.png in {}",
            100.0 * last.test_accuracy,
            run_dir.display()
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct EvalArgs {
    /// Run folder (or checkpoint.safetensors) written by `fovea train`
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where to write the confusion matrix picture (default: <run>/confusion.png)
    #[arg(long)]
    png: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let ckpt = train::load_checkpoint(&a.checkpoint)?;
    let model = train::model_from_checkpoint(&ckpt)?;
    let dir = a.data.clone().or(ckpt.meta.data.as_ref().map(PathBuf::from)).unwrap_or_else(FashionMnist::default_dir);
    let (test_set, names) = data::load(&dir, Split::Test, ckpt.meta.input_shape()?, None)?;
    if names != ckpt.meta.class_names {
        bail!("{} has the classes {names:?}, but the run was trained on {:?}", dir.display(), ckpt.meta.class_names);
    }
    let (p, predictions) = train::evaluate(model.as_ref(), &test_set, 1000)?;
    let classes = ckpt.meta.classes;
    let cm = train::confusion_matrix(&test_set.labels, &predictions, classes);
    let per_class: Vec<f32> =
        cm.iter().enumerate().map(|(i, row)| row[i] as f32 / row.iter().sum::<usize>().max(1) as f32).collect();
    let names = &ckpt.meta.class_names;
    let png = a.png.clone().unwrap_or_else(|| {
        if a.checkpoint.is_dir() {
            a.checkpoint.join("confusion.png")
        } else {
            PathBuf::from("confusion.png")
        }
    });
    draw_confusion(&png, &cm, names)?;
    if a.json {
        println!(
            "{}",
            json!({"accuracy": p.accuracy(), "loss": p.loss(), "per_class_accuracy": names.iter().zip(&per_class).map(|(n, a)| json!({"class": n, "accuracy": a})).collect::<Vec<_>>(), "confusion_matrix": cm, "png": png.display().to_string()})
        );
        return Ok(());
    }
    println!("accuracy {:.2}% (loss {:.4}) on {} test images", 100.0 * p.accuracy(), p.loss(), test_set.len());
    println!("\nper-class accuracy:");
    for (n, acc) in names.iter().zip(&per_class) {
        println!("  {n:<12} {:6.2}%", 100.0 * acc);
    }
    println!("\nconfusion matrix (rows: true class, columns: predicted):");
    print!("{:>12}", "");
    for i in 0..classes {
        print!("{i:>6}");
    }
    println!();
    for (i, row) in cm.iter().enumerate() {
        print!("{:>9} {i:>2}", names[i].chars().take(9).collect::<String>());
        for v in row {
            print!("{v:>6}");
        }
        println!();
    }
    println!("\nconfusion matrix picture: {}", png.display());
    Ok(())
}

fn draw_confusion(path: &Path, cm: &[Vec<usize>], names: &[String]) -> Result<()> {
    use fovea_vision::draw::Canvas;
    let n = cm.len() as i64;
    let cell = 44;
    let (left, top) = (110, 40);
    let mut c = Canvas::new((left + n * cell + 20) as usize, (top + n * cell + 20) as usize, [255, 255, 255]);
    c.text(left, 12, "TRUE (ROWS) VS PREDICTED (COLUMNS)", 1, [0, 0, 0]);
    for (i, row) in cm.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f32;
        c.text(4, top + i as i64 * cell + cell / 2 - 3, &names[i].chars().take(16).collect::<String>(), 1, [0, 0, 0]);
        for (j, &v) in row.iter().enumerate() {
            let shade = 255 - (v as f32 / total * 255.0) as u8;
            let (x, y) = (left + j as i64 * cell, top + i as i64 * cell);
            c.fill_rect(x, y, cell - 1, cell - 1, [shade, shade, 255]);
            let txt = v.to_string();
            let color = if shade < 128 { [255, 255, 255] } else { [0, 0, 0] };
            c.text(x + (cell - Canvas::text_width(&txt, 1)) / 2, y + cell / 2 - 3, &txt, 1, color);
        }
    }
    Ok(c.save_png(path)?)
}

#[derive(Args)]
pub struct PredictArgs {
    /// Run folder (or checkpoint.safetensors) written by `fovea train`
    #[arg(long)]
    checkpoint: PathBuf,
    /// PNG or JPEG pictures, prepared as the run's training images were (for Fashion-MNIST
    /// runs: grey, light on dark, 28x28, then the run's input size)
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[arg(value_parser = crate::range::count, long, default_value_t = 3)]
    top: usize,
    #[arg(long)]
    json: bool,
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let ckpt = train::load_checkpoint(&a.checkpoint)?;
    let model = train::model_from_checkpoint(&ckpt)?;
    let shape = ckpt.meta.input_shape()?;
    for path in &a.images {
        let x = if ckpt.meta.data.is_none() {
            // as Fashion-MNIST's pictures are: grey 28x28, light on dark; then as the model takes it
            fit_image(&fovea_vision::image::load_fashion_input(path)?.reshape(&[1, 28, 28])?, shape)?
        } else {
            fit_image(&fovea_vision::image::load_rgb(path)?, shape)?
        };
        let x = x.reshape(&[1, shape[0], shape[1], shape[2]])?;
        let logits = fovea::no_grad(|| model.forward(&Var::constant(x)))?;
        let top = &train::top_k(&logits, a.top.min(ckpt.meta.classes))?[0];
        if a.json {
            let preds: Vec<_> = top
                .iter()
                .map(|&(c, p)| json!({"class": c, "name": ckpt.meta.class_names[c], "probability": p}))
                .collect();
            println!("{}", json!({"image": path.display().to_string(), "top": preds}));
        } else {
            println!("{}", path.display());
            for &(c, p) in top {
                println!("  {:<12} {:6.2}%", ckpt.meta.class_names[c], 100.0 * p);
            }
        }
    }
    Ok(())
}
