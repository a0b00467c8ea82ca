//! Generated data for the notes' 1-D and 3-D generalisations: ECG-like signals in four
//! rhythm classes, and volumes that do or do not hold a small sphere. Each sample depends
//! only on (seed, index), and classes take turns, so every set is balanced.

use super::Dataset;
use fovea::{Result, Rng, Tensor};
use std::f32::consts::TAU;

/// The rhythm classes of [`ecg_signals`].
pub const RHYTHMS: [&str; 4] = ["normal", "atrial fibrillation", "premature beats", "tachycardia"];
/// Samples per second of the generated ECG.
pub const ECG_RATE: f32 = 100.0;
/// Samples per signal: 5 seconds.
pub const ECG_LENGTH: usize = 500;

/// One wave of a heartbeat: a Gaussian bump (amplitude, centre in seconds from the R peak,
/// width in seconds).
type Wave = (f32, f32, f32);

/// P, Q, R, S and T waves of a normal beat.
const NORMAL_BEAT: [Wave; 5] =
    [(0.12, -0.16, 0.022), (-0.12, -0.025, 0.008), (1.0, 0.0, 0.01), (-0.22, 0.025, 0.009), (0.28, 0.26, 0.045)];
/// A premature ventricular beat: no P wave, a wide QRS, an inverted T.
const VENTRICULAR_BEAT: [Wave; 3] = [(1.3, 0.0, 0.035), (-0.4, 0.07, 0.03), (-0.35, 0.3, 0.06)];

/// `count` signals `[count, 1, ECG_LENGTH]` with labels indexing [`RHYTHMS`].
pub fn ecg_signals(count: usize, seed: u64) -> Result<Dataset> {
    let mut data = Vec::with_capacity(count * ECG_LENGTH);
    let labels: Vec<usize> = (0..count).map(|i| i % RHYTHMS.len()).collect();
    for (i, &class) in labels.iter().enumerate() {
        data.extend(ecg_signal(class, &mut Rng::derive(seed, i as u64)));
    }
    Ok(Dataset { images: Tensor::new(&[count, 1, ECG_LENGTH], data)?, labels })
}

fn ecg_signal(class: usize, rng: &mut Rng) -> Vec<f32> {
    let duration = ECG_LENGTH as f32 / ECG_RATE;
    // beat times and kinds (true: ventricular)
    let mut beats: Vec<(f32, bool)> = Vec::new();
    let rate = match class {
        1 => rng.uniform_range(70.0, 130.0),
        3 => rng.uniform_range(110.0, 160.0),
        _ => rng.uniform_range(55.0, 95.0),
    };
    let rr = 60.0 / rate;
    // premature beats replace these beats (counted from the first one inside the strip)
    let premature: Vec<usize> = match class {
        2 => {
            let first = 1 + rng.below(2);
            if rng.uniform() < 0.5 {
                vec![first]
            } else {
                vec![first, first + 3 + rng.below(2)]
            }
        }
        _ => vec![],
    };
    let mut t = -rng.uniform() * rr;
    let mut inside = 0;
    while t < duration + 0.5 {
        if t > 0.0 {
            inside += 1;
        }
        if premature.contains(&inside) && t > 0.0 {
            // comes 40% early; the pause after it makes up for it (the next normal beat
            // comes two intervals after the one before it)
            beats.push((t - 0.4 * rr, true));
            t += rr * rng.uniform_range(0.97, 1.03);
            continue;
        }
        beats.push((t, false));
        t += match class {
            1 => rr * rng.uniform_range(0.6, 1.4), // irregularly irregular
            _ => rr * rng.uniform_range(0.97, 1.03),
        };
    }
    let gain = rng.uniform_range(0.7, 1.3);
    let (wander, wander_hz, wander_phase) =
        (rng.uniform_range(0.0, 0.2), rng.uniform_range(0.15, 0.5), rng.uniform() * TAU);
    let noise = rng.uniform_range(0.02, 0.06);
    // atrial fibrillation: fast irregular atrial waves instead of P waves
    let fibrillation: Vec<(f32, f32, f32)> =
        (0..3).map(|_| (rng.uniform_range(0.02, 0.05), rng.uniform_range(4.0, 8.0), rng.uniform() * TAU)).collect();
    (0..ECG_LENGTH)
        .map(|k| {
            let s = k as f32 / ECG_RATE;
            let mut v = 0.0;
            for &(tb, ventricular) in &beats {
                if (s - tb).abs() > 0.7 {
                    continue;
                }
                let waves: &[Wave] = if ventricular { &VENTRICULAR_BEAT } else { &NORMAL_BEAT };
                for (i, &(a, c, w)) in waves.iter().enumerate() {
                    if class == 1 && !ventricular && i == 0 {
                        continue; // no P wave in atrial fibrillation
                    }
                    v += a * (-0.5 * ((s - tb - c) / w).powi(2)).exp();
                }
            }
            if class == 1 {
                v += fibrillation.iter().map(|&(a, f, p)| a * (TAU * f * s + p).sin()).sum::<f32>();
            }
            gain * v + wander * (TAU * wander_hz * s + wander_phase).sin() + noise * rng.normal()
        })
        .collect()
}

/// The classes of [`volumes`].
pub const VOLUME_CLASSES: [&str; 2] = ["no sphere", "sphere"];

/// `count` volumes `[count, 1, side, side, side]` of noise with one to three solid boxes of
/// random proportions; class 1 also holds a small sphere.
pub fn volumes(count: usize, side: usize, seed: u64) -> Result<Dataset> {
    let mut data = Vec::with_capacity(count * side * side * side);
    let labels: Vec<usize> = (0..count).map(|i| i % 2).collect();
    for (i, &class) in labels.iter().enumerate() {
        data.extend(volume(class == 1, side, &mut Rng::derive(seed, i as u64)));
    }
    Ok(Dataset { images: Tensor::new(&[count, 1, side, side, side], data)?, labels })
}

fn volume(sphere: bool, side: usize, rng: &mut Rng) -> Vec<f32> {
    let n = side as f32;
    let noise = rng.uniform_range(0.05, 0.15);
    let mut v: Vec<f32> = (0..side * side * side).map(|_| noise * rng.normal()).collect();
    let boxes = 1 + rng.below(3);
    for o in 0..boxes + usize::from(sphere) {
        let brightness = rng.uniform_range(0.6, 1.0);
        let centre = [0; 3].map(|_| rng.uniform_range(3.5, n - 3.5));
        let inside: Box<dyn Fn([f32; 3]) -> bool> = if o == boxes {
            let r = rng.uniform_range(2.0, 3.0);
            Box::new(move |p: [f32; 3]| (0..3).map(|a| (p[a] - centre[a]).powi(2)).sum::<f32>() <= r * r)
        } else {
            // a box at least twice as long on one side as on another: never sphere-like
            let mut half = [0; 3].map(|_| rng.uniform_range(0.5, 1.5));
            half[rng.below(3)] = rng.uniform_range(2.5, 3.5);
            Box::new(move |p: [f32; 3]| (0..3).all(|a| (p[a] - centre[a]).abs() <= half[a]))
        };
        for z in 0..side {
            for y in 0..side {
                for x in 0..side {
                    if inside([z as f32 + 0.5, y as f32 + 0.5, x as f32 + 0.5]) {
                        v[(z * side + y) * side + x] += brightness;
                    }
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_balanced_reproducible_and_have_the_right_rhythm() {
        let a = ecg_signals(8, 1).unwrap();
        assert_eq!(a.images.shape(), [8, 1, ECG_LENGTH]);
        assert_eq!(a.labels, [0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(a.images.data(), ecg_signals(8, 1).unwrap().images.data());
        // R peaks (local maxima above 0.5 of the strip's top) counted: tachycardia beats faster
        let peaks = |i: usize| {
            let s = &a.images.data()[i * ECG_LENGTH..(i + 1) * ECG_LENGTH];
            let top = s.iter().fold(0f32, |m, &v| m.max(v));
            (1..s.len() - 1).filter(|&k| s[k] > 0.6 * top && s[k] >= s[k - 1] && s[k] > s[k + 1]).count()
        };
        assert!(peaks(3) > peaks(0), "tachycardia {} beats vs normal {}", peaks(3), peaks(0));
    }

    #[test]
    fn volumes_are_balanced_and_hold_bright_objects() {
        let v = volumes(4, 16, 2).unwrap();
        assert_eq!(v.images.shape(), [4, 1, 16, 16, 16]);
        assert_eq!(v.labels, [0, 1, 0, 1]);
        // every volume holds at least one bright object
        for volume in v.images.data().chunks_exact(4096) {
            assert!(volume.iter().filter(|&&x| x > 0.5).count() >= 8);
        }
    }
}
