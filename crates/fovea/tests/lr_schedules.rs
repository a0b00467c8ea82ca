//! Learning-rate schedules against PyTorch's schedulers (fixture made by
//! tools/gen_lr_schedules.py).

use fovea::optim::LrSchedule;

#[test]
fn schedules_give_pytorchs_rates_epoch_by_epoch() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lr_schedules.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let base = fixture["base"].as_f64().unwrap() as f32;
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let num = |k: &str| case[k].as_f64().unwrap();
        let schedule = match case["kind"].as_str().unwrap() {
            "step" => LrSchedule::Step { step_size: num("step_size") as usize, gamma: num("gamma") as f32 },
            "cosine" => LrSchedule::Cosine { t_max: num("t_max") as usize, eta_min: num("eta_min") as f32 },
            "linear" => LrSchedule::Linear {
                start_factor: num("start_factor") as f32,
                total_iters: num("total_iters") as usize,
            },
            other => panic!("unknown schedule {other}"),
        };
        for (t, want) in case["rates"].as_array().unwrap().iter().enumerate() {
            let (got, want) = (schedule.rate(base, t) as f64, want.as_f64().unwrap());
            // f32 arithmetic on a few terms: a few ulps of the base rate
            assert!(
                (got - want).abs() <= 4.0 * f32::EPSILON as f64 * base as f64,
                "{schedule:?} epoch {t}: {got} vs {want}"
            );
        }
    }
    assert_eq!(LrSchedule::Constant.rate(0.3, 7), 0.3);
}
