//! CSV files, read as three features and a class label, and as two features and two targets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nn::runtime::data::csv::{load, CsvOptions, Target, TargetColumn};
use nn_fuzz::{named, write};

fuzz_target!(|data: &[u8]| {
    let f = write("data.csv", data);
    if let Some(d) = named(load::<f32, 3>(&f, &CsvOptions::classes(3)), &f) {
        assert!(d.inputs().iter().all(|v| v.is_finite()));
    }
    let values = CsvOptions {
        target_column: TargetColumn::Index(0),
        target: Target::Values { rows: 2 },
        ..CsvOptions::values(2)
    };
    named(load::<f64, 2>(&f, &values), &f);
});
