//! The convolution playground through the library: the notes' 6x6 picture, bright on the
//! left and dark on the right, under the vertical edge detector, with "valid" and "same"
//! padding (what `fovea conv --filter vertical` prints).
//!
//!     cargo run --release -p fovea --example conv

use fovea::ops::{self, ConvOptions, Padding};
use fovea::{Tensor, Var};

fn main() -> fovea::Result<()> {
    let picture: Vec<f32> = (0..36).map(|i| if i % 6 < 3 { 10.0 } else { 0.0 }).collect();
    let x = Var::constant(Tensor::new(&[1, 1, 6, 6], picture)?);
    let vertical = Var::constant(Tensor::new(&[1, 1, 3, 3], vec![1.0, 0.0, -1.0, 1.0, 0.0, -1.0, 1.0, 0.0, -1.0])?);
    // valid: (6 - 3 + 1) = 4, the edge is the bright band in the middle
    let y = ops::conv2d(&x, &vertical, None, &ConvOptions::default())?;
    print(&y.tensor(), "valid");
    // same: padded with a ring of zeros, the output keeps the picture's 6x6
    let same = ConvOptions { padding: Padding::Same, ..ConvOptions::default() };
    print(&ops::conv2d(&x, &vertical, None, &same)?.tensor(), "same");
    Ok(())
}

fn print(t: &Tensor, what: &str) {
    let w = t.shape()[3];
    println!("{what} ({}x{w}):", t.shape()[2]);
    for row in t.data().chunks(w) {
        println!("  {}", row.iter().map(|v| format!("{v:>5}")).collect::<String>());
    }
}
