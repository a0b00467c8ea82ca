//! Learning an embedding with the triplet loss (the notes' Siamese network): one network,
//! shared weights, maps every picture to a point on the unit sphere; training pulls each
//! anchor towards a picture of the same identity (the positive) and pushes it away from a
//! picture of another (the negative) until the two squared distances differ by a margin.
//!
//! Triplets are mined inside each batch of P identities x K pictures, from the distances
//! the network gives now, the two ways the literature does it:
//! - batch-hard (Hermans et al. 2017, "In Defense of the Triplet Loss"): for every anchor,
//!   its farthest positive and its nearest negative;
//! - semi-hard (Schroff et al. 2015, FaceNet): for every anchor-positive pair, the nearest
//!   negative that is still farther than the positive; where there is none, the farthest
//!   negative (as TensorFlow Addons' `triplet_semihard_loss`).

use crate::data::Dataset;
use fovea::nn::{Mode, Module};
use fovea::optim::Optimizer;
use fovea::{no_grad, ops, Error, Result, Rng, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// How the triplets of a batch are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Mining {
    /// For every anchor, its farthest positive and its nearest negative (Hermans et al.).
    BatchHard,
    /// For every anchor-positive pair, the nearest negative farther than the positive, else
    /// the farthest (FaceNet).
    SemiHard,
}

/// Triplets as row indices into a batch: `anchors[t]`, `positives[t]`, `negatives[t]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Triplets {
    /// rows of the anchors
    pub anchors: Vec<usize>,
    /// rows of the same identity as their anchors
    pub positives: Vec<usize>,
    /// rows of another identity than their anchors
    pub negatives: Vec<usize>,
}

impl Triplets {
    /// The number of triplets.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }
    /// Whether there are no triplets.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
    fn push(&mut self, a: usize, p: usize, n: usize) {
        self.anchors.push(a);
        self.positives.push(p);
        self.negatives.push(n);
    }
}

/// Squared Euclidean distances between the rows of `e` (`[B, D]`), `B x B` row-major.
pub fn squared_distances(e: &Tensor) -> Vec<f32> {
    let d = e.shape()[1];
    let rows: Vec<&[f32]> = e.data().chunks_exact(d).collect();
    let mut out = vec![0.0; rows.len() * rows.len()];
    for (i, a) in rows.iter().enumerate() {
        for (j, b) in rows.iter().enumerate() {
            out[i * rows.len() + j] = a.iter().zip(*b).map(|(x, y)| (x - y) * (x - y)).sum();
        }
    }
    out
}

/// The triplets of a batch with `labels` and squared distances `dist` (`B x B`). Anchors
/// without a positive or without a negative in the batch give none. Ties go to the lowest
/// index, so mining is deterministic.
pub fn mine(dist: &[f32], labels: &[usize], mining: Mining) -> Triplets {
    let b = labels.len();
    assert_eq!(dist.len(), b * b, "mine: {b} labels need a {b}x{b} distance matrix");
    let mut t = Triplets::default();
    for a in 0..b {
        let row = &dist[a * b..(a + 1) * b];
        let positives: Vec<usize> = (0..b).filter(|&j| j != a && labels[j] == labels[a]).collect();
        let negatives: Vec<usize> = (0..b).filter(|&j| labels[j] != labels[a]).collect();
        if positives.is_empty() || negatives.is_empty() {
            continue;
        }
        // the first index among those with the extreme distance
        let farthest = |set: &[usize]| set.iter().copied().reduce(|m, j| if row[j] > row[m] { j } else { m });
        let nearest = |set: &[usize]| set.iter().copied().reduce(|m, j| if row[j] < row[m] { j } else { m });
        match mining {
            Mining::BatchHard => t.push(a, farthest(&positives).unwrap(), nearest(&negatives).unwrap()),
            Mining::SemiHard => {
                for &p in &positives {
                    let beyond: Vec<usize> = negatives.iter().copied().filter(|&n| row[n] > row[p]).collect();
                    let n = nearest(&beyond).or_else(|| farthest(&negatives)).unwrap();
                    t.push(a, p, n);
                }
            }
        }
    }
    t
}

/// The triplet loss of a batch of embeddings `[B, D]` with identity `labels`, over the
/// triplets `mining` finds (gradients flow through all three), with the number of triplets
/// and of those still violating the margin. `None` when the batch holds no triplet (no
/// identity with two pictures, or a single identity).
pub fn batch_triplet_loss(
    embeddings: &Var,
    labels: &[usize],
    mining: Mining,
    margin: f32,
) -> Result<Option<(Var, usize, usize)>> {
    let b = labels.len();
    let dist = squared_distances(&embeddings.value());
    let t = mine(&dist, labels, mining);
    if t.is_empty() {
        return Ok(None);
    }
    let active = (0..t.len())
        .filter(|&i| dist[t.anchors[i] * b + t.positives[i]] - dist[t.anchors[i] * b + t.negatives[i]] + margin > 0.0)
        .count();
    let pick = |idx: &[usize]| ops::index_select(embeddings, 0, idx);
    let loss = ops::triplet_loss(&pick(&t.anchors)?, &pick(&t.positives)?, &pick(&t.negatives)?, margin)?;
    Ok(Some((loss, t.len(), active)))
}

/// The embedding of a batch `[B, C, H, W]`: the network's output rows scaled to unit length.
pub fn embed(net: &dyn Module, x: &Var, mode: Mode) -> Result<Var> {
    ops::l2_normalize(&net.forward_mode(x, mode)?, 1, 1e-12)
}

/// Embeddings `[N, D]` of every picture of `data`, in evaluation mode.
pub fn embed_all(net: &dyn Module, data: &Dataset, batch_size: usize) -> Result<Tensor> {
    let mut rows = Vec::new();
    let mut dim = 0;
    no_grad(|| -> Result<()> {
        for idx in data.batch_indices(batch_size, None) {
            let (x, _) = data.batch(&idx);
            let e = embed(net, &Var::constant(x), Mode::Eval)?.tensor();
            if rows.is_empty() {
                dim = e.shape()[1];
                fovea::budget::check_shape(&format!("{} embeddings of length {dim}", data.len()), &[data.len(), dim])?;
            }
            rows.extend_from_slice(e.data());
        }
        Ok(())
    })?;
    Tensor::new(&[data.len(), dim], rows)
}

/// The batches of one epoch: as many as hold `labels.len()` pictures, each of `identities`
/// identities drawn at random (all of them if there are fewer) with `per_identity` distinct
/// pictures each (all of an identity's if it has fewer). Each identity's pictures are dealt
/// from a shuffled queue, reshuffled once used up.
pub fn identity_batches(labels: &[usize], identities: usize, per_identity: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut by_identity: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        by_identity.entry(l).or_default().push(i);
    }
    let mut queues: Vec<Vec<usize>> = by_identity.into_values().collect();
    let mut next = vec![0usize; queues.len()];
    for q in &mut queues {
        rng.shuffle(q);
    }
    let p = identities.clamp(1, queues.len().max(1));
    let k = per_identity.max(1);
    let batches = labels.len().div_ceil(p * k);
    let mut out = Vec::with_capacity(batches);
    let mut order: Vec<usize> = (0..queues.len()).collect();
    for _ in 0..batches {
        rng.shuffle(&mut order);
        let mut batch = Vec::with_capacity(p * k);
        for &id in &order[..p] {
            // an identity with fewer than K pictures gives each once
            let group_start = batch.len();
            for _ in 0..k.min(queues[id].len()) {
                if next[id] == queues[id].len() {
                    // a new round, which must not repeat what this group already holds
                    let q = &mut queues[id];
                    rng.shuffle(q);
                    let taken = &batch[group_start..];
                    q.sort_by_key(|i| taken.contains(i));
                    next[id] = 0;
                }
                batch.push(queues[id][next[id]]);
                next[id] += 1;
            }
        }
        out.push(batch);
    }
    out
}

/// Running totals of an embedding epoch.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmbeddingProgress {
    /// batches that held a triplet, so far
    pub batches: usize,
    /// pictures in those batches
    pub images: usize,
    /// sum of those batches' mean triplet losses
    pub loss_sum: f64,
    /// triplets mined, and those still violating the margin (loss > 0)
    pub triplets: usize,
    /// of those, the triplets still violating the margin
    pub active: usize,
}

impl EmbeddingProgress {
    /// Mean triplet loss per batch so far.
    pub fn loss(&self) -> f32 {
        (self.loss_sum / self.batches.max(1) as f64) as f32
    }
    /// The share of mined triplets that still violate the margin.
    pub fn active_fraction(&self) -> f32 {
        self.active as f32 / self.triplets.max(1) as f32
    }
}

/// How batches are formed and triplets chosen.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TripletConfig {
    /// How triplets are chosen in each batch (batch-hard tends to collapse every embedding
    /// to one point when a network starts from scratch: lower --lr for it)
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = crate::face::training::EmbeddingConfig::default().triplet.mining))]
    pub mining: Mining,
    /// The triplet loss's margin alpha (embeddings have unit length: squared distances are 0..4)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::non_negative::<f32>, long, default_value_t = crate::face::training::EmbeddingConfig::default().triplet.margin))]
    pub margin: f32,
    /// Identities per batch (P)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::whole(2, usize::MAX), long, default_value_t = crate::face::training::EmbeddingConfig::default().triplet.identities_per_batch))]
    pub identities_per_batch: usize,
    /// Pictures of each identity per batch (K)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::whole(2, usize::MAX), long, default_value_t = crate::face::training::EmbeddingConfig::default().triplet.per_identity))]
    pub per_identity: usize,
}

/// One epoch of triplet training on `data` (labels are identities), in training mode, with
/// batches and dropout masks drawn from `rng`.
///
/// On several processes ([`fovea::dist`]) each embeds its shard of every batch and the
/// embeddings are gathered, so that every rank mines the triplets of the whole batch and
/// computes its loss; each back-propagates through its own pictures, and the gradients
/// summed over the ranks are one process's.
pub fn train_embedding_epoch(
    net: &dyn Module,
    optimizer: &mut Optimizer,
    data: &Dataset,
    config: TripletConfig,
    rng: &mut Rng,
    on_batch: &mut dyn FnMut(&EmbeddingProgress),
) -> Result<EmbeddingProgress> {
    let world = fovea::dist::world();
    let dropout_seed = rng.next_u64();
    let mut p = EmbeddingProgress::default();
    let batches = identity_batches(&data.labels, config.identities_per_batch, config.per_identity, rng);
    let params = fovea::nn::trainable_parameters(net).into_iter().map(|(_, v)| v).collect();
    let gradients = fovea::dist::GradientSync::new(params, fovea::dist::BUCKET_FLOATS);
    let replicas = crate::train::Replicas::of(net);
    for (b, idx) in batches.into_iter().enumerate() {
        let labels: Vec<usize> = idx.iter().map(|&i| data.labels[i]).collect();
        // (decided alike on every rank: no rank may stop alone)
        if idx.len() < world.size() {
            return Err(Error::Invalid(format!(
                "a batch of {} pictures leaves one of the {} processes none; give more identities or pictures per \
                 batch",
                idx.len(),
                world.size()
            )));
        }
        let shard = world.shard(idx.len());
        let (x, _) = data.batch(&idx[shard.clone()]);
        let mode = Mode::train_shard(Rng::derive(dropout_seed, b as u64).next_u64(), shard.start as u64);
        let e = world.all_gather_rows(&embed(net, &Var::constant(x), mode)?, idx.len())?;
        let Some((loss, triplets, active)) = batch_triplet_loss(&e, &labels, config.mining, config.margin)? else {
            continue;
        };
        let lv = loss.value().item()?;
        if !lv.is_finite() {
            return Err(crate::train::non_finite_loss(
                "the triplet loss",
                lv,
                &format!("batch {}", p.batches + 1),
                optimizer,
            ));
        }
        p.triplets += triplets;
        p.active += active;
        optimizer.zero_grad();
        // every rank has the whole batch's loss: its gradients, of its own pictures, add up
        gradients.backward(Some(&loss), 1.0)?;
        optimizer.step()?;
        replicas.after_step()?;
        p.batches += 1;
        p.images += labels.len();
        p.loss_sum += lv as f64;
        on_batch(&p);
    }
    if p.batches == 0 {
        return Err(Error::Invalid(
            "no batch held two pictures of one identity and one of another: triplet training needs \
             two or more identities with two or more training pictures each"
                .into(),
        ));
    }
    Ok(p)
}

/// One-shot identification, averaged over `trials`: each trial enrols one picture of every
/// identity (drawn at random) and identifies every other picture as the enrolled identity
/// nearest to it. `vectors` is `[N, D]`, one row per picture. An identity with a single
/// picture is only ever enrolled (a distractor for the others).
pub fn one_shot_accuracy(vectors: &Tensor, labels: &[usize], trials: usize, rng: &mut Rng) -> Result<f64> {
    if vectors.ndim() != 2 || vectors.shape()[0] != labels.len() {
        return Err(Error::Invalid(format!("{} labels for vectors {:?}", labels.len(), vectors.shape())));
    }
    let rows: Vec<&[f32]> = vectors.data().chunks_exact(vectors.shape()[1].max(1)).collect();
    let mut by_identity: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        by_identity.entry(l).or_default().push(i);
    }
    let (identities, members): (Vec<usize>, Vec<Vec<usize>>) = by_identity.into_iter().unzip();
    if identities.len() < 2 || members.iter().all(|m| m.len() < 2) || trials == 0 {
        return Err(Error::Invalid(format!(
            "one-shot identification needs two or more identities, one of them with a second picture to \
             identify ({} identities, at most {} picture(s) each)",
            identities.len(),
            members.iter().map(Vec::len).max().unwrap_or(0)
        )));
    }
    let distance = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
    let mut correct = 0usize;
    let mut queries = 0usize;
    for _ in 0..trials {
        let enrolled: Vec<usize> = members.iter().map(|m| m[rng.below(m.len())]).collect();
        for (i, row) in rows.iter().enumerate() {
            if enrolled.contains(&i) {
                continue;
            }
            let nearest = (0..enrolled.len())
                .min_by(|&a, &b| distance(row, rows[enrolled[a]]).total_cmp(&distance(row, rows[enrolled[b]])))
                .unwrap();
            correct += (identities[nearest] == labels[i]) as usize;
            queries += 1;
        }
    }
    Ok(correct as f64 / queries as f64)
}

/// What an embedding run was trained on and how, stored inside its safetensors file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EmbeddingRun {
    /// architecture, a name [`crate::models::build`] knows
    pub model: String,
    /// Input of one sample, `[C, H, W]`.
    pub input: Vec<usize>,
    /// length of the embedding
    pub dim: usize,
    /// how triplets were mined
    pub mining: Mining,
    /// the triplet loss's margin
    pub margin: f32,
    /// The data trained on: Fashion-MNIST's folder or an image folder.
    pub data: String,
    /// All identities of the data set, and which of them training never saw.
    pub identities: Vec<String>,
    /// indices into `identities`
    pub held_out: Vec<usize>,
    /// Adam's learning rate
    pub lr: f32,
    /// identities per batch (P)
    pub identities_per_batch: usize,
    /// pictures per identity in a batch (K)
    pub per_identity: usize,
    /// random seed: weights, batches, one-shot enrolment draws
    pub seed: u64,
    /// one entry per finished epoch
    pub history: Vec<EmbeddingEpoch>,
}

/// The figures of one epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EmbeddingEpoch {
    /// epoch number, from 1
    pub epoch: usize,
    /// mean triplet loss per batch
    pub loss: f32,
    /// share of mined triplets still violating the margin
    pub active_triplets: f32,
    /// One-shot identification accuracy over the held-out identities' test pictures.
    pub one_shot_accuracy: f64,
    /// The same over the trained identities' test pictures (seen identities, new pictures).
    pub seen_one_shot_accuracy: f64,
    /// seconds the epoch took, training and measuring
    pub seconds: f32,
}

const EMBEDDING_FILE: &str = "embedding.safetensors";
const EMBEDDING_KEY: &str = "fovea-embedding";
const MADE_BY: &str = "fovea faces train-embedding";

/// Writes the network and the run's description to `dir/embedding.safetensors` (atomically)
/// and a readable copy `dir/embedding.json`.
pub fn save_embedding_run(dir: &Path, net: &dyn Module, run: &EmbeddingRun) -> Result<()> {
    fovea::io::save_checkpoint(&dir.join(EMBEDDING_FILE), net, None, EMBEDDING_KEY, run)
}

/// Reads a run folder written by [`save_embedding_run`] (or the file itself) and rebuilds
/// the network.
pub fn load_embedding_run(path: &Path) -> Result<(EmbeddingRun, Box<dyn Module>)> {
    let fovea::io::Checkpoint { meta: run, model: tensors, .. }: fovea::io::Checkpoint<EmbeddingRun> =
        crate::train::load_network(path, EMBEDDING_FILE, EMBEDDING_KEY, MADE_BY)?;
    if run.dim == 0 || run.dim > 65_536 || run.held_out.iter().any(|&h| h >= run.identities.len()) {
        return Err(Error::Invalid(format!("{}: embedding metadata is inconsistent", path.display())));
    }
    let named = crate::train::about_file(path, EMBEDDING_FILE);
    let net = crate::models::build(&run.model, run.dim, &mut Rng::new(0)).map_err(&named)?;
    fovea::nn::load_state_dict(net.as_ref(), &tensors).map_err(&named)?;
    Ok((run, net))
}

/// The embedding network of the run at `path` as an ONNX model
/// ([`fovea::graph::export`]): pictures in (as the run's input), unit-length embeddings out.
pub fn embedding_to_onnx(path: &Path) -> Result<fovea::io::onnx::Model> {
    let (run, net) = load_embedding_run(path)?;
    fovea::graph::export::export(&Normalized(net.as_ref()), &run.input, "fovea")
}

/// A network followed by [`embed`]'s L2 normalisation, for export.
struct Normalized<'a>(&'a dyn Module);

impl Module for Normalized<'_> {
    fn forward_mode(&self, x: &Var, mode: Mode) -> Result<Var> {
        embed(self.0, x, mode)
    }
    fn shapes(&self, name: &str, input: &[usize], hook: &mut fovea::nn::ShapeHook<'_>) -> Result<Vec<usize>> {
        self.0.shapes(name, input, hook)
    }
    /// `y / √(Σ y² + ε²)` along the embedding, as [`ops::l2_normalize`].
    fn export(&self, name: &str, x: &str, input: &[usize], ex: &mut fovea::graph::export::Exporter) -> Result<String> {
        use fovea::io::onnx::AttributeValue;
        let y = self.0.export(name, x, input, ex)?;
        let square = ex.node("Mul", "l2/square", &[&y, &y], vec![]);
        let axes = ex.ints("l2/axes", &[1]);
        let sum = ex.node("ReduceSum", "l2/sum", &[&square, &axes], vec![("keepdims", AttributeValue::Int(1))]);
        let eps = ex.weight("l2/eps2", &Tensor::scalar(1e-24));
        let sum = ex.node("Add", "l2/sum_eps", &[&sum, &eps], vec![]);
        let norm = ex.node("Sqrt", "l2/norm", &[&sum], vec![]);
        Ok(ex.node("Div", "l2/normalized", &[&y, &norm], vec![]))
    }
}

impl std::fmt::Display for EmbeddingEpoch {
    /// The epoch's figures, after `epoch N/M: `.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "triplet loss {:.4}, {:.0}% of triplets active | one-shot accuracy: held-out {:.2}%, seen {:.2}% | {:.1}s",
            self.loss,
            100.0 * self.active_triplets,
            100.0 * self.one_shot_accuracy,
            100.0 * self.seen_one_shot_accuracy,
            self.seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(points: &[f32]) -> Vec<f32> {
        squared_distances(&Tensor::new(&[points.len(), 1], points.to_vec()).unwrap())
    }

    #[test]
    fn batch_hard_takes_the_farthest_positive_and_the_nearest_negative() {
        // identity 0 at 0, 1, 3; identity 1 at 2, 10
        let d = dist(&[0.0, 1.0, 3.0, 2.0, 10.0]);
        let t = mine(&d, &[0, 0, 0, 1, 1], Mining::BatchHard);
        assert_eq!(t.anchors, vec![0, 1, 2, 3, 4]);
        assert_eq!(t.positives, vec![2, 2, 0, 4, 3]);
        // anchor 3 (at 2): negatives at 0, 1, 3 are 4, 1, 1 away: the first of the ties
        assert_eq!(t.negatives, vec![3, 3, 3, 1, 2]);
    }

    #[test]
    fn semi_hard_takes_the_nearest_negative_beyond_the_positive() {
        // anchor 0 at 0: positive 1 at 1 (d = 1), positive 2 at 3 (d = 9);
        // negatives at 2 (d = 4) and 10 (d = 100)
        let d = dist(&[0.0, 1.0, 3.0, 2.0, 10.0]);
        let t = mine(&d, &[0, 0, 0, 1, 1], Mining::SemiHard);
        let of_anchor0: Vec<(usize, usize)> =
            (0..t.len()).filter(|&i| t.anchors[i] == 0).map(|i| (t.positives[i], t.negatives[i])).collect();
        // for positive 1 the negative at 2 is beyond it; for positive 2 only the one at 10
        assert_eq!(of_anchor0, vec![(1, 3), (2, 4)]);
        // every ordered same-identity pair is an anchor-positive pair: 3*2 + 2*1
        assert_eq!(t.len(), 8);
    }

    #[test]
    fn semi_hard_falls_back_to_the_farthest_negative() {
        // anchor 0 at 0, positive at 5 (d = 25); negatives at 1 and 2, both nearer
        let d = dist(&[0.0, 5.0, 1.0, 2.0]);
        let t = mine(&d, &[0, 0, 1, 1], Mining::SemiHard);
        assert_eq!((t.anchors[0], t.positives[0], t.negatives[0]), (0, 1, 3));
    }

    #[test]
    fn batches_without_two_pictures_of_an_identity_give_no_triplets() {
        let d = dist(&[0.0, 1.0, 2.0]);
        assert!(mine(&d, &[0, 1, 2], Mining::BatchHard).is_empty());
        assert!(mine(&d[..4], &[0, 0], Mining::SemiHard).is_empty());
    }

    #[test]
    fn identity_batches_hold_p_identities_of_k_pictures() {
        let labels: Vec<usize> = (0..60).map(|i| i % 5).collect();
        let batches = identity_batches(&labels, 3, 4, &mut Rng::new(7));
        assert_eq!(batches.len(), 5); // 60 pictures / 12 per batch
        for b in &batches {
            assert_eq!(b.len(), 12);
            let mut ids: Vec<usize> = b.iter().map(|&i| labels[i]).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 3);
            for id in ids {
                let mine: Vec<usize> = b.iter().copied().filter(|&i| labels[i] == id).collect();
                assert_eq!(mine.len(), 4);
                let mut distinct = mine.clone();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct.len(), 4, "a picture twice in one identity's group");
            }
        }
        assert_eq!(batches, identity_batches(&labels, 3, 4, &mut Rng::new(7)), "same seed, same batches");
        // 17 pictures in groups of 16: a group that starts a new round repeats nothing
        let labels = vec![0; 17];
        for b in identity_batches(&labels, 1, 16, &mut Rng::new(3)) {
            let mut distinct = b.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), 16);
        }
    }

    #[test]
    fn one_shot_accuracy_is_exact_on_separated_points() {
        let v = Tensor::new(&[5, 1], vec![0.0, 0.1, 0.2, 5.0, 5.1]).unwrap();
        assert_eq!(one_shot_accuracy(&v, &[0, 0, 0, 1, 1], 10, &mut Rng::new(1)).unwrap(), 1.0);
        // identity 1 sits between identity 0's two pictures: whatever is enrolled, identity
        // 0's query is nearer identity 1's picture and identity 1's query is right
        let v = Tensor::new(&[4, 1], vec![0.0, 10.0, 4.0, 6.0]).unwrap();
        assert_eq!(one_shot_accuracy(&v, &[0, 0, 1, 1], 10, &mut Rng::new(1)).unwrap(), 0.5);
        // an identity with one picture is always enrolled, a distractor only: identity 0's
        // query is nearer to it than to identity 0's enrolled picture, whichever that is
        let v = Tensor::new(&[3, 1], vec![0.0, 6.0, 4.0]).unwrap();
        assert_eq!(one_shot_accuracy(&v, &[0, 0, 1], 10, &mut Rng::new(1)).unwrap(), 0.0);
        assert!(one_shot_accuracy(&v, &[0, 1, 2], 1, &mut Rng::new(1)).is_err(), "nobody to identify");
    }
}
