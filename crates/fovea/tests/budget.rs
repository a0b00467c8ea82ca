//! The memory budget counts live tensors (its own test binary: the count is process-wide,
//! and other tests allocating in parallel would move it).

use fovea::budget::in_use;
use fovea::Tensor;

#[test]
fn live_tensors_count_against_the_budget() {
    let before = in_use();
    let t = Tensor::zeros(&[1000]);
    let mut copy = t.clone(); // shares the values: nothing more
    assert_eq!(in_use(), before + 4000);
    copy.data_mut()[0] = 1.0; // now its own values
    assert_eq!(in_use(), before + 8000);
    let values = copy.into_vec(); // leaves the tensors' count
    assert_eq!(in_use(), before + 4000);
    drop((t, values));
    assert_eq!(in_use(), before);
}
