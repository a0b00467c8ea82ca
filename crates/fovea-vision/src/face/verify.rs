//! Verification as binary classification (the notes, after DeepFace): a logistic unit over
//! what differs between two embeddings, ŷ = σ(Σ_k w_k φ(f(xi)_k, f(xj)_k) + b), learnt on
//! labelled pairs, where φ is |a - b| or the chi-square form (a - b)² / (a + b). And what it
//! is measured against: "same" when the squared distance is below a threshold.

use fovea::optim::{Optimizer, OptimizerConfig};
use fovea::{no_grad, ops, Error, Result, Rng, Tensor, Var};

/// What the logistic unit sees of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairFeature {
    /// |a_k - b_k|
    AbsDiff,
    /// (a_k - b_k)² / (|a_k| + |b_k|): DeepFace's chi-square similarity, for features of
    /// any sign (it equals (a - b)² / (a + b) on non-negative ones, which DeepFace's are);
    /// 0 where both are 0
    ChiSquare,
}

/// The features of the pair (a, b).
pub fn pair_features(a: &[f32], b: &[f32], kind: PairFeature) -> Vec<f32> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| match kind {
            PairFeature::AbsDiff => (x - y).abs(),
            PairFeature::ChiSquare => {
                let s = x.abs() + y.abs();
                if s > 0.0 {
                    (x - y) * (x - y) / s
                } else {
                    0.0
                }
            }
        })
        .collect()
}

/// Two pictures (row indices) and whether they show the same identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    /// row index of the first picture
    pub first: usize,
    /// row index of the second picture
    pub second: usize,
    /// whether both show the same identity
    pub same: bool,
}

/// `count` pairs of distinct pictures, alternately of the same identity and of two
/// different ones, each drawn uniformly from all such pairs.
pub fn sample_pairs(labels: &[usize], count: usize, rng: &mut Rng) -> Result<Vec<Pair>> {
    let mut by_identity: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &l) in labels.iter().enumerate() {
        by_identity.entry(l).or_default().push(i);
    }
    let (keys, groups): (Vec<usize>, Vec<Vec<usize>>) = by_identity.into_iter().unzip();
    let group_of: Vec<usize> = labels.iter().map(|l| keys.binary_search(l).expect("every label is a key")).collect();
    // same-identity pairs per group, cumulated, to draw a group in proportion to them
    let mut cumulative = Vec::with_capacity(groups.len());
    let mut total = 0usize;
    for g in &groups {
        total += g.len() * (g.len() - 1) / 2;
        cumulative.push(total);
    }
    if groups.len() < 2 || total == 0 {
        return Err(Error::Invalid(format!(
            "pairs need two or more identities, one of them with two or more pictures (identities: {}, pictures: {})",
            groups.len(),
            labels.len()
        )));
    }
    let mut pairs = Vec::with_capacity(count);
    while pairs.len() < count {
        let pair = if pairs.len() % 2 == 0 {
            let r = rng.below(total);
            let g = &groups[cumulative.partition_point(|&c| c <= r)];
            let first = rng.below(g.len());
            // any other picture of the group: skip over the first
            let second = (first + 1 + rng.below(g.len() - 1)) % g.len();
            Pair { first: g[first], second: g[second], same: true }
        } else {
            // a picture, then one of the pictures of all other identities
            let first = rng.below(labels.len());
            let own = group_of[first];
            let mut r = rng.below(labels.len() - groups[own].len());
            let other = (0..groups.len())
                .filter(|&k| k != own)
                .find_map(|k| {
                    let g = &groups[k];
                    if r < g.len() {
                        Some(g[r])
                    } else {
                        r -= g.len();
                        None
                    }
                })
                .expect("r counts the other identities' pictures");
            Pair { first, second: other, same: false }
        };
        pairs.push(pair);
    }
    Ok(pairs)
}

/// The share of `predictions` equal to `same`.
pub fn accuracy(predictions: &[bool], same: &[bool]) -> f64 {
    predictions.iter().zip(same).filter(|(p, s)| p == s).count() as f64 / same.len().max(1) as f64
}

/// The distance threshold that best separates `same` pairs (distance below it) from the
/// others, and the accuracy it gives: the midpoint between two neighbouring sorted
/// distances (or just above the largest) that classifies most pairs right; the smallest
/// such threshold wins ties.
pub fn fit_threshold(distances: &[f32], same: &[bool]) -> (f32, f64) {
    let mut order: Vec<usize> = (0..distances.len()).collect();
    order.sort_by(|&a, &b| distances[a].total_cmp(&distances[b]));
    // threshold below everything: every pair is "different"
    let mut right = same.iter().filter(|s| !**s).count();
    let (mut best, mut best_right) = (distances.iter().copied().fold(f32::INFINITY, f32::min) - 1.0, right);
    for (k, &i) in order.iter().enumerate() {
        // moving the threshold past pair i makes it "same"
        right = if same[i] { right + 1 } else { right - 1 };
        let next = order.get(k + 1).map(|&j| distances[j]);
        if next == Some(distances[i]) {
            continue; // a threshold cannot fall between equal distances
        }
        if right > best_right {
            best_right = right;
            best = next.map_or(distances[i] + 1.0, |d| 0.5 * (distances[i] + d));
        }
    }
    (best, best_right as f64 / same.len().max(1) as f64)
}

/// The logistic unit: weights `[1, D]` and bias `[1]` over a pair's features.
pub struct Verifier {
    weight: Var,
    bias: Var,
}

impl Verifier {
    /// Learns from `features` `[N, D]` (one row per pair) and their labels with Adam on
    /// the binary cross-entropy, in shuffled mini-batches of 256 for `epochs` passes.
    pub fn train(features: &Tensor, same: &[bool], epochs: usize, lr: f32, rng: &mut Rng) -> Result<Verifier> {
        let (n, d) = (same.len(), features.shape()[1]);
        if features.shape()[0] != n || n == 0 {
            return Err(Error::Invalid(format!("{} feature rows for {n} labelled pairs", features.shape()[0])));
        }
        let v = Verifier { weight: Var::param(Tensor::zeros(&[1, d])), bias: Var::param(Tensor::zeros(&[1])) };
        let mut optimizer = Optimizer::new(
            OptimizerConfig::adam(lr, 0.0),
            vec![("weight".into(), v.weight.clone()), ("bias".into(), v.bias.clone())],
        )?;
        let targets: Vec<f32> = same.iter().map(|&s| s as u8 as f32).collect();
        let mut order: Vec<usize> = (0..n).collect();
        for _ in 0..epochs {
            rng.shuffle(&mut order);
            for idx in order.chunks(256) {
                let x = Var::constant(features.index_select(0, idx)?);
                let t = Tensor::new(&[idx.len(), 1], idx.iter().map(|&i| targets[i]).collect())?;
                let loss = ops::bce_with_logits(&ops::linear(&x, &v.weight, Some(&v.bias))?, &t)?;
                let lv = loss.value().item()?;
                if !lv.is_finite() {
                    return Err(crate::train::non_finite_loss("the verifier's loss", lv, "a batch", &optimizer));
                }
                optimizer.zero_grad();
                loss.backward()?;
                optimizer.step()?;
            }
        }
        // the unit starts at p = 0.5 everywhere (loss ln 2) and the problem is convex: ending
        // far above that means the steps overshot instead of learning
        let all = Tensor::new(&[n, 1], targets)?;
        let end = no_grad(|| {
            ops::bce_with_logits(&ops::linear(&Var::constant(features.clone()), &v.weight, Some(&v.bias))?, &all)
        })?
        .value()
        .item()?;
        if end.is_nan() || end > 2.0 * std::f32::consts::LN_2 {
            return Err(Error::Invalid(format!(
                "the verifier's loss on its training pairs is {end:.4e} after training, over twice the {:.3} it \
                 starts from: training diverged; lower the learning rate",
                std::f32::consts::LN_2
            )));
        }
        Ok(v)
    }

    /// The probability that each pair (row of `features`) shows one identity.
    pub fn probabilities(&self, features: &Tensor) -> Result<Vec<f32>> {
        let x = Var::constant(features.clone());
        let p = no_grad(|| ops::linear(&x, &self.weight, Some(&self.bias)).and_then(|z| ops::sigmoid(&z)))?;
        Ok(p.tensor().data().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learning_rate_that_overshoots_is_an_error() {
        // pairs no threshold separates: the best unit says 0.5 everywhere, and steps of 1e30
        // throw it far from there
        let features = Tensor::new(&[4, 1], vec![0.1, 0.2, 0.9, 1.0]).unwrap();
        let same = [true, false, true, false];
        assert!(Verifier::train(&features, &same, 20, 0.01, &mut Rng::new(0)).is_ok());
        let err = Verifier::train(&features, &same, 2, 1e30, &mut Rng::new(0)).err().expect("diverges").to_string();
        assert!(err.contains("training diverged"), "{err}");
    }

    #[test]
    fn pair_features_by_hand() {
        let (a, b) = ([1.0, -2.0, 0.0, 3.0], [3.0, 1.0, 0.0, 3.0]);
        assert_eq!(pair_features(&a, &b, PairFeature::AbsDiff), vec![2.0, 3.0, 0.0, 0.0]);
        // (1-3)²/4, (-2-1)²/3, 0 for 0/0, 0
        assert_eq!(pair_features(&a, &b, PairFeature::ChiSquare), vec![1.0, 3.0, 0.0, 0.0]);
    }

    #[test]
    fn the_threshold_is_the_best_midpoint() {
        // same pairs at 0.1, 0.3, 0.9; different at 0.5, 0.7, 1.2: below 0.4 gets 5 of 6
        let d = [0.5, 0.1, 0.9, 0.3, 1.2, 0.7];
        let same = [false, true, true, true, false, false];
        let (t, acc) = fit_threshold(&d, &same);
        assert!((t - 0.4).abs() < 1e-6, "threshold {t}");
        assert!((acc - 5.0 / 6.0).abs() < 1e-12);
        // all pairs different: a threshold below every distance
        let (t, acc) = fit_threshold(&[0.2, 0.4], &[false, false]);
        assert!(t < 0.2 && acc == 1.0);
    }

    #[test]
    fn pairs_alternate_same_and_different_of_distinct_pictures() {
        let labels = [0, 0, 0, 1, 1, 2];
        let pairs = sample_pairs(&labels, 200, &mut Rng::new(3)).unwrap();
        assert_eq!(pairs.len(), 200);
        for (k, p) in pairs.iter().enumerate() {
            assert_eq!(p.same, k % 2 == 0);
            assert_eq!(p.same, labels[p.first] == labels[p.second]);
            assert_ne!(p.first, p.second);
        }
        // same pairs in proportion to how many there are: 1 of identity 0's, 6 of identity 1's
        let labels = [0, 0, 1, 1, 1, 1];
        let pairs = sample_pairs(&labels, 14_000, &mut Rng::new(4)).unwrap();
        let of_zero = pairs.iter().filter(|p| p.same && labels[p.first] == 0).count();
        assert!((850..1150).contains(&of_zero), "{of_zero} of 7000 same pairs are identity 0's, not about 1000");
        assert!(sample_pairs(&[0, 1, 2], 4, &mut Rng::new(3)).is_err(), "nobody has two pictures");
        assert!(sample_pairs(&[4, 4], 4, &mut Rng::new(3)).is_err(), "one identity");
    }

    #[test]
    fn the_logistic_unit_learns_which_feature_matters() {
        // feature 0 is small for same pairs, feature 1 is noise
        let mut rng = Rng::new(5);
        let n = 400;
        let same: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let data: Vec<f32> =
            same.iter().flat_map(|&s| [if s { 0.2 } else { 0.8 } + 0.25 * rng.normal(), rng.uniform()]).collect();
        let x = Tensor::new(&[n, 2], data).unwrap();
        let v = Verifier::train(&x, &same, 60, 0.05, &mut Rng::new(1)).unwrap();
        let p = v.probabilities(&x).unwrap();
        let acc = accuracy(&p.iter().map(|&p| p > 0.5).collect::<Vec<_>>(), &same);
        // the Bayes rate of this problem is Φ(0.3 / 0.25) = 88%
        assert!(acc > 0.82, "accuracy {acc}");
        let w = v.weight.tensor();
        assert!(w.data()[0] < -1.0 && w.data()[0].abs() > 3.0 * w.data()[1].abs(), "weights {:?}", w.data());
    }
}
