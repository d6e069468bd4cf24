//! Crashes never lose work: a child process trains and checkpoints in a loop and is killed
//! with SIGKILL at random (seeded) moments; after every kill the newest checkpoint loads and is
//! exactly the state of the last save the child reported or of the one after it, never a torn
//! mix. Resuming after all the kills ends bit for bit where an uninterrupted run ends. A
//! checkpoint whose counters cannot go on is refused with an error, never a panic.
//!
//! The child is this test binary itself, re-executed with `CHILD_DIR` set and filtered to the
//! ignored test `crash_child`. While it is being killed it has epochs to spare; the reference
//! (an uninterrupted run) is computed afterwards up to the epoch the last child ends at.

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::{Adam, Optimizer};
use nn::runtime::persist::{self, Checkpoint, Metadata};
use nn::runtime::train::{CheckpointEvery, Control, Progress, TrainError, Trainer};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

network! { Net < dense(8 -> 96, relu), dropout(0.1), dense(96 -> 96, tanh), dense(96 -> 4, softmax) > }

/// The directory the child trains in (set only in the child).
const CHILD_DIR: &str = "NN_CRASH_SAFETY_DIR";
/// The epochs the child trains for (set only in the child).
const CHILD_EPOCHS: &str = "NN_CRASH_SAFETY_EPOCHS";
/// Epochs the child could train for while being killed: more than it ever reaches.
const MANY_EPOCHS: usize = 1_000_000;
/// Epochs the last child trains for after the newest checkpoint.
const MORE_EPOCHS: usize = 3;
/// Kills.
const KILLS: usize = 30;
/// The longest a child lives after it reports its start.
const MAX_LIFE_MS: u64 = 150;
/// Set (only in the child) for a run whose learning rate turns infinite in f32 at
/// [`DIVERGES_AT`].
const CHILD_DIVERGES: &str = "NN_CRASH_SAFETY_DIVERGES";
/// The epoch whose step overflows the weights in a diverging run. Its epochs are one step
/// each (the whole data set in one batch), so the step that overflows is the last of its
/// epoch: only a check before the checkpoint can keep it off the disk.
const DIVERGES_AT: usize = 30;
/// The batch size of a diverging run: the whole data set.
const DIVERGING_BATCH: usize = 48;
/// Kills of diverging runs.
const DIVERGING_KILLS: usize = 12;

/// The learning-rate factor of a diverging run: Adam's 1e-3 until [`DIVERGES_AT`], then
/// 1e39, which is infinite in f32.
fn diverging(epoch: usize) -> f64 {
    if epoch + 1 < DIVERGES_AT {
        1.0
    } else {
        1e42
    }
}

fn data() -> Dataset<f32, 8> {
    let mut rng = StdRng::seed_from_u64(11);
    let n = 48;
    let x: Vec<f32> = (0..8 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let labels = (0..n)
        .map(|i| usize::from(x[8 * i] > 0.0) + 2 * usize::from(x[8 * i + 1] > 0.0))
        .collect();
    Dataset::from_slices(&x, Labels::Classes { labels, classes: 4 }).expect("valid data")
}

fn trainer<'a>(path: &Path, epochs: usize) -> Trainer<'a, CrossEntropy, Adam<f32>> {
    Trainer::new(CrossEntropy, Adam::new(1e-3))
        .epochs(epochs)
        .batch_size(16)
        .seed(3)
        .progress(Progress::Off)
        .checkpoint(path, CheckpointEvery::Epoch)
}

fn fresh() -> Net {
    Net::new(&mut StdRng::seed_from_u64(5))
}

/// A checkpoint's content: the parameters' bits and the rest.
#[derive(Debug, PartialEq)]
struct State {
    params: Vec<u32>,
    checkpoint: Checkpoint<f32>,
}

fn load(path: &Path) -> Result<State, persist::PersistError> {
    let mut net = fresh();
    let (meta, checkpoint) = persist::load_checkpoint_into(&mut net, path)?;
    assert_eq!(meta, Metadata::of::<Net, 8, 4>());
    let params = net.to_flat().iter().map(|v| v.to_bits()).collect();
    Ok(State { params, checkpoint })
}

fn temporary_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("readable directory")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().contains(".tmp"))
        })
        .count()
}

/// The child: resumes from the newest checkpoint if there is one and trains on, saving after
/// every epoch. At the first batch of epoch `e` it reports `@@saved e-1`: the save of epoch
/// `e - 1` is complete.
#[test]
#[ignore = "run by crash_safety_under_sigkill as a child process"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let path = PathBuf::from(dir).join("ckpt.safetensors");
    let epochs = std::env::var(CHILD_EPOCHS)
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(MANY_EPOCHS);
    let data = data();
    let mut net = fresh();
    let mut t = trainer(&path, epochs).on_batch(|b| {
        if b.batch == 0 {
            println!("@@saved {}", b.epoch - 1);
        }
        Control::Continue
    });
    if std::env::var_os(CHILD_DIVERGES).is_some() {
        t = t
            .batch_size(DIVERGING_BATCH)
            .schedule(nn::runtime::schedule::Lambda(diverging));
    }
    if path.exists() {
        t = t.resume_from(&path);
    }
    println!("@@start");
    match t.fit(&mut net, &data, None) {
        Ok(_) => println!("@@done"),
        Err(TrainError::NonFinite { epoch, .. }) => println!("@@diverged {epoch}"),
        Err(e) => panic!("training: {e}"),
    }
}

/// Starts the child in `dir` for `epochs` epochs, its stdout piped.
fn spawn(dir: &Path, epochs: usize) -> std::process::Child {
    spawn_with(dir, epochs, false)
}

/// Starts the child, diverging at [`DIVERGES_AT`] if `diverges`.
fn spawn_with(dir: &Path, epochs: usize, diverges: bool) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    if diverges {
        command.env(CHILD_DIVERGES, "1");
    }
    command
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_EPOCHS, epochs.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child")
}

/// The epochs whose saves the child reported complete in `output`.
fn saved(output: &str) -> impl Iterator<Item = usize> + '_ {
    output.lines().filter_map(|l| {
        let (_, n) = l.split_once("@@saved ")?;
        n.trim().parse().ok()
    })
}

#[test]
fn crash_safety_under_sigkill() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("ckpt.safetensors");
    let mut rng = StdRng::seed_from_u64(2026);
    let started = Instant::now();
    let mut newest = 0usize;
    let (mut mid_save, mut max_temporary) = (0, 0);
    // Every kill: the last save the child reported, and the newest checkpoint.
    let mut seen_after_kills: Vec<(usize, Option<State>)> = Vec::with_capacity(KILLS);
    for kill in 0..KILLS {
        let mut child = spawn(dir.path(), MANY_EPOCHS);
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut seen = String::new();
        // Wait until the child runs, then let it live a random while.
        while !seen.contains("@@start") {
            let mut line = String::new();
            if out.read_line(&mut line).expect("child output") == 0 {
                let mut err = String::new();
                let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("the child ended before starting: {seen}{err}");
            }
            seen.push_str(&line);
        }
        std::thread::sleep(Duration::from_micros(
            rng.random_range(0..MAX_LIFE_MS * 1000),
        ));
        child.kill().expect("SIGKILL"); // SIGKILL on unix
        let status = child.wait().expect("the child's status");
        out.read_to_string(&mut seen).expect("child output");
        assert!(!status.success(), "kill {kill}: the child was not killed");

        let reported = saved(&seen).max().unwrap_or(0).max(newest);
        let state = if path.exists() {
            Some(load(&path).unwrap_or_else(|e| panic!("kill {kill}: torn checkpoint: {e}")))
        } else {
            None
        };
        let epoch = state.as_ref().map_or(0, |s| s.checkpoint.epoch as usize);
        // The newest checkpoint is the last save reported complete or the one after it.
        assert!(
            epoch == reported || epoch == reported + 1,
            "kill {kill}: checkpoint of epoch {epoch}, last save reported {reported}"
        );
        newest = epoch;
        let temporary = temporary_files(dir.path());
        mid_save += usize::from(temporary > 0);
        max_temporary = max_temporary.max(temporary);
        seen_after_kills.push((epoch, state));
    }
    let killing = started.elapsed();
    assert!(newest > 0, "no checkpoint was written before the kills");

    // Resuming after all the kills trains on to `end`.
    let end = newest + MORE_EPOCHS;
    let output = spawn(dir.path(), end)
        .wait_with_output()
        .expect("the last child");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = load(&path).expect("the final checkpoint");
    // The leftovers of the kills were removed by later saves.
    assert_eq!(temporary_files(dir.path()), 0);

    // The uninterrupted run, and the checkpoint of every epoch (read back at the first batch
    // of the next epoch, before it is overwritten).
    let reference_dir = tempfile::tempdir().expect("temporary directory");
    let reference_path = reference_dir.path().join("ckpt.safetensors");
    let mut reference: Vec<Option<State>> = vec![None];
    let mut net = fresh();
    trainer(&reference_path, end)
        .on_batch(|b| {
            if b.batch == 0 && b.epoch > 1 {
                reference.push(Some(load(&reference_path).expect("a checkpoint")));
            }
            Control::Continue
        })
        .fit(&mut net, &data(), None)
        .expect("training");
    reference.push(Some(load(&reference_path).expect("a checkpoint")));
    assert_eq!(reference.len(), end + 1);
    for (e, s) in reference.iter().enumerate().skip(1) {
        assert_eq!(s.as_ref().map(|s| s.checkpoint.epoch), Some(e as u64));
    }

    // Every checkpoint seen after a kill is the uninterrupted run's of its epoch, never torn
    // or mixed; the end of the killed and resumed run is the end of the uninterrupted one.
    for (kill, (epoch, state)) in seen_after_kills.iter().enumerate() {
        assert!(
            *state == reference[*epoch],
            "kill {kill}: epoch {epoch} differs from the uninterrupted run"
        );
    }
    assert!(
        Some(&last) == reference[end].as_ref(),
        "the resumed run ended elsewhere"
    );
    let uninterrupted: Vec<u32> = net.to_flat().iter().map(|v| v.to_bits()).collect();
    assert_eq!(last.params, uninterrupted);
    println!(
        "{KILLS} SIGKILLs survived in {:.1} s: {mid_save} kills left a temporary file (killed \
         mid-save; at most {max_temporary} at once, all removed by later saves); after the \
         kills the newest checkpoint was epoch {newest}, each equal to the uninterrupted run's; \
         resumed to epoch {end} bit for bit",
        killing.as_secs_f64()
    );
}

/// A run whose learning rate turns infinite in f32 at epoch [`DIVERGES_AT`], in the last
/// (only) step of that epoch, is killed at random moments before, during and after it, each
/// new child resuming from the newest checkpoint. Every checkpoint on disk loads, holds finite weights and
/// optimizer state, and is an epoch before the divergence; the last one is bit for bit the
/// uninterrupted run's checkpoint of the epoch before it.
#[test]
fn a_diverging_run_never_checkpoints_what_it_did_not_check() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("ckpt.safetensors");
    let mut rng = StdRng::seed_from_u64(2027);
    let finite = |s: &State| {
        s.params.iter().all(|&b| f32::from_bits(b).is_finite())
            && s.checkpoint
                .optimizer
                .buffers
                .iter()
                .all(|(_, v)| v.iter().all(|x| x.is_finite()))
    };
    let mut diverged = 0;
    for kill in 0..DIVERGING_KILLS {
        let mut child = spawn_with(dir.path(), MANY_EPOCHS, true);
        std::thread::sleep(Duration::from_micros(
            rng.random_range(0..MAX_LIFE_MS * 1000),
        ));
        let _ = child.kill(); // it may have ended already, by diverging
        let output = child.wait_with_output().expect("the child's output");
        let seen = String::from_utf8_lossy(&output.stdout);
        diverged += usize::from(seen.contains(&format!("@@diverged {DIVERGES_AT}")));
        if path.exists() {
            let state = load(&path).unwrap_or_else(|e| panic!("kill {kill}: {e}"));
            assert!(finite(&state), "kill {kill}: a non-finite checkpoint");
            assert!(
                (state.checkpoint.epoch as usize) < DIVERGES_AT,
                "kill {kill}: a checkpoint of epoch {}",
                state.checkpoint.epoch
            );
        }
    }
    // A child left alone resumes, diverges, and leaves the checkpoint as it was.
    let output = spawn_with(dir.path(), MANY_EPOCHS, true)
        .wait_with_output()
        .expect("the last child");
    let seen = String::from_utf8_lossy(&output.stdout);
    assert!(
        seen.contains(&format!("@@diverged {DIVERGES_AT}")),
        "{seen}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = load(&path).expect("the checkpoint before the divergence");
    assert!(finite(&last));
    assert_eq!(last.checkpoint.epoch as usize, DIVERGES_AT - 1);
    // The uninterrupted run's checkpoint of that epoch.
    let reference_dir = tempfile::tempdir().expect("temporary directory");
    let reference_path = reference_dir.path().join("ckpt.safetensors");
    let mut net = fresh();
    trainer(&reference_path, DIVERGES_AT - 1)
        .batch_size(DIVERGING_BATCH)
        .schedule(nn::runtime::schedule::Lambda(diverging))
        .fit(&mut net, &data(), None)
        .expect("training up to the divergence");
    assert!(last == load(&reference_path).expect("a checkpoint"));
    println!(
        "{DIVERGING_KILLS} kills of a run diverging at epoch {DIVERGES_AT} ({diverged} children \
         diverged before their kill): every checkpoint finite and before the divergence"
    );
}

/// A checkpoint of one epoch of training, then changed by `edit`.
fn edited_checkpoint(dir: &Path, edit: impl FnOnce(&mut Checkpoint<f32>)) -> PathBuf {
    let path = dir.join("ckpt.safetensors");
    let mut net = fresh();
    trainer(&path, 1)
        .fit(&mut net, &data(), None)
        .expect("training");
    let (meta, mut ck) = persist::load_checkpoint_into(&mut net, &path).expect("a checkpoint");
    edit(&mut ck);
    persist::save_checkpoint(&net, &meta, &ck, &path).expect("saved");
    path
}

#[test]
fn resuming_from_counters_that_would_overflow_is_an_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    type Edit = fn(&mut Checkpoint<f32>);
    let cases: [(Edit, &str); 6] = [
        (
            |c| c.extra = serde_json::json!({ "base_lr": -1.0 }),
            "Adam: invalid lr = -1",
        ),
        (
            |c| {
                c.extra = serde_json::json!({});
                c.optimizer.lr = f64::NAN;
            },
            "Adam: invalid lr = NaN",
        ),
        (|c| c.epoch = u64::MAX, "`nn.epoch` = 18446744073709551615"),
        (
            |c| c.optimizer.step = u64::MAX,
            "`nn.optim.step` = 18446744073709551615 overflows",
        ),
        (
            |c| {
                let (name, v) = &mut c.optimizer.buffers[1];
                assert_eq!(name, "dense0.weight.exp_avg_sq");
                v[3] = -1.0;
            },
            "optimizer state: buffer `dense0.weight.exp_avg_sq` holds -1 at index 3; its values \
             must be finite and at least 0",
        ),
        (
            |c| c.optimizer.step = u64::MAX - 5,
            "`nn.optim.step` = 18446744073709551610 overflows in the 2 remaining epochs of 3 steps",
        ),
    ];
    for (edit, needle) in cases {
        let path = edited_checkpoint(dir.path(), edit);
        let mut net = Net::new(&mut StdRng::seed_from_u64(99));
        let before = net.to_flat();
        let mut t = trainer(&dir.path().join("out.safetensors"), 3).resume_from(&path);
        let e = t
            .fit(&mut net, &data(), None)
            .expect_err("a checkpoint that cannot go on");
        assert_eq!(t.optimizer().state(), Adam::<f32>::new(1e-3).state());
        let message = e.to_string();
        let file = path.display();
        let expected = match e {
            TrainError::Persist(_) => format!("{file}: invalid checkpoint: {needle}"),
            _ => format!("invalid training setup: {file}: {needle}"),
        };
        assert!(message.starts_with(&expected), "{message}");
        assert_eq!(
            net.to_flat(),
            before,
            "a refused resume changed the network"
        );
    }
    // A counter that fits goes on: 2 epochs of 3 steps from step u64::MAX - 9 reach
    // u64::MAX - 3.
    let path = edited_checkpoint(dir.path(), |c| c.optimizer.step = u64::MAX - 9);
    let out = dir.path().join("out.safetensors");
    let mut net = fresh();
    let history = trainer(&out, 3)
        .resume_from(&path)
        .fit(&mut net, &data(), None)
        .expect("resumed");
    assert_eq!(history.epochs.len(), 2);
    let (_, ck) = persist::load_checkpoint_into(&mut net, &out).expect("a checkpoint");
    assert_eq!((ck.epoch, ck.optimizer.step), (3, u64::MAX - 3));
}
