//! Optimizers with PyTorch's update rules and defaults.
//!
//! Every optimizer follows `torch.optim`'s single-tensor (`foreach=False`) algorithm
//! operation by operation, with the same hyperparameter names and defaults:
//!
//! | type | PyTorch | state buffers per tensor |
//! | --- | --- | --- |
//! | [`Sgd`] | `torch.optim.SGD` | `momentum_buffer` (when `momentum != 0`) |
//! | [`Adagrad`] | `torch.optim.Adagrad` | `sum` |
//! | [`RmsProp`] | `torch.optim.RMSprop` | `square_avg`, `momentum_buffer` (momentum > 0), `grad_avg` (centered) |
//! | [`Adam`] | `torch.optim.Adam` | `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` (amsgrad) |
//! | [`AdaMax`] | `torch.optim.Adamax` | `exp_avg`, `exp_inf` |
//! | [`AdamW`] | `torch.optim.AdamW` | as [`Adam`] |
//!
//! # Construction and validation
//!
//! Optimizers are built with a constructor taking the learning rate and builder methods for
//! the other hyperparameters (`Sgd::new(0.1).momentum(0.9).nesterov(true)`), or
//! `Default` for PyTorch's default learning rate. Builders never panic and never clamp: they
//! store what they are given, and [`Optimizer::validate`] checks every hyperparameter against
//! PyTorch's constraints, returning an [`OptimError`] naming the offending value. The trainer
//! calls `validate` before the first step; [`Optimizer::checked`] validates at construction
//! (`Adam::new(1e-3).betas(0.9, 0.999).checked()?`). An invalid optimizer that is stepped
//! anyway never panics (it may produce non-finite values).
//!
//! # State
//!
//! The step count is global (one [`Optimizer::begin_step`] per step); buffers live per tensor,
//! keyed by [`TensorInfo::index`], allocated the first time a tensor is seen. An update after
//! that allocates nothing and is one pass over contiguous memory. [`Optimizer::state`] names
//! each buffer `<tensor name>.<buffer>` (e.g. `dense0.weight.exp_avg`) with PyTorch's buffer
//! names; [`Optimizer::load_state`] restores it exactly (all or nothing) and rejects a state
//! of another optimizer, unknown or missing buffers, and names or lengths that do not match
//! tensors already seen. Loaded buffers attach to tensors by name on their first update;
//! [`Optimizer::load_state_for`] also checks names and lengths against a network's layout
//! up front.

use crate::network::{Network, TensorInfo};
use crate::scalar::Float;

mod adagrad;
mod adam;
mod adamax;
mod adamw;
mod error;
mod rmsprop;
mod sgd;
mod slots;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::AdaMax;
pub use adamw::AdamW;
pub use error::OptimError;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

/// An optimizer's state, for checkpoints: the step count and named per-tensor buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T> {
    /// Optimizer name, e.g. `Adam`.
    pub name: String,
    /// Steps taken.
    pub step: u64,
    /// Current learning rate.
    pub lr: f64,
    /// Buffers, named `<tensor>.<buffer>` (e.g. `dense0.weight.exp_avg`), column-major.
    pub buffers: Vec<(String, Vec<T>)>,
}

/// An optimizer over the parameter tensors of any network.
///
/// State lives per tensor (keyed by [`TensorInfo::index`]), is allocated the first time a
/// tensor is seen, and an update after that allocates nothing.
pub trait Optimizer<T: Float>: Send {
    /// Name, e.g. `Adam`.
    fn name(&self) -> &'static str;
    /// The learning rate in force.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate (schedules call this before each step).
    fn set_learning_rate(&mut self, lr: f64);
    /// Starts a step: called once before the step's [`Optimizer::update`] calls.
    fn begin_step(&mut self);
    /// Updates one tensor in place from its gradient.
    fn update(&mut self, tensor: &TensorInfo, param: &mut [T], grad: &[T]);
    /// `Some(s)` when this optimizer's next step is `θ ← θ + s·g` for every tensor and keeps
    /// no state but the step count: plain SGD (`s = −lr`, or `lr` when maximizing). The
    /// trainer then fuses the step into the backward pass
    /// ([`Network::backward_sgd`]) and calls only
    /// [`Optimizer::begin_step`]. The default is `None`.
    fn linear_step(&self) -> Option<f64> {
        None
    }
    /// Every hyperparameter but the learning rate, as PyTorch names them, e.g.
    /// `SGD(momentum=0.9, dampening=0, weight_decay=0, nesterov=false, maximize=false)`.
    /// Checkpoints record it, and resuming refuses an optimizer whose settings differ. The
    /// default is the name.
    fn settings(&self) -> String {
        self.name().to_owned()
    }
    /// The state, for a checkpoint.
    fn state(&self) -> OptimizerState<T>;
    /// Writes the state into `out`, reusing its buffers: once `out` holds a state of the same
    /// shape, a snapshot allocates nothing (the trainer takes one every epoch). The default
    /// is `*out = self.state()`.
    fn state_into(&self, out: &mut OptimizerState<T>) {
        *out = self.state();
    }
    /// Whether every value of the state's buffers is finite (the trainer checks it every
    /// epoch). The default checks [`Optimizer::state`].
    fn state_is_finite(&self) -> bool {
        self.state()
            .buffers
            .iter()
            .all(|(_, b)| crate::kernel::all_finite(b))
    }
    /// Restores a state saved by [`Optimizer::state`], refusing a buffer with a NaN or
    /// infinite value (or a negative accumulated square, such as Adam's `exp_avg_sq`).
    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<(), OptimError>;

    /// Checks every hyperparameter (including the learning rate in force) against PyTorch's
    /// constraints. The default accepts everything.
    fn validate(&self) -> Result<(), OptimError> {
        Ok(())
    }

    /// The optimizer itself if [`Optimizer::validate`] accepts it.
    fn checked(self) -> Result<Self, OptimError>
    where
        Self: Sized,
    {
        self.validate()?;
        Ok(self)
    }

    /// [`Optimizer::load_state`] after checking that every buffer belongs to one of `tensors`
    /// (by name: `<tensor name>.<buffer>`) and has that tensor's length, e.g. with a network's
    /// `N::TENSORS`. Nothing changes on error.
    fn load_state_for(
        &mut self,
        state: &OptimizerState<T>,
        tensors: &[TensorInfo],
    ) -> Result<(), OptimError> {
        for (name, values) in &state.buffers {
            let tensor = tensors.iter().filter(|t| t.trainable).find(|t| {
                name.strip_prefix(t.name)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|buffer| !buffer.is_empty() && !buffer.contains('.'))
            });
            match tensor {
                None => {
                    return Err(OptimError::State(format!(
                        "buffer `{name}` names no tensor of the network"
                    )))
                }
                Some(t) if t.len() != values.len() => {
                    return Err(OptimError::State(format!(
                        "buffer `{name}` has {} values, tensor `{}` has {}",
                        values.len(),
                        t.name,
                        t.len()
                    )))
                }
                Some(_) => {}
            }
        }
        self.load_state(state)
    }

    /// One step over a whole network: every parameter from its gradient.
    fn step<N, const IN: usize, const OUT: usize>(&mut self, net: &mut N, grads: &N::Gradients)
    where
        N: Network<IN, OUT, Scalar = T>,
        Self: Sized,
    {
        self.begin_step();
        net.for_each_param_grad(grads, &mut |t, p, g| self.update(t, p, g));
    }
}

/// Checks `value` against a predicate, naming it in the error.
pub(crate) fn require(
    optimizer: &'static str,
    name: &'static str,
    value: f64,
    ok: bool,
    requirement: &'static str,
) -> Result<(), OptimError> {
    if ok {
        Ok(())
    } else {
        Err(OptimError::Hyperparameter {
            optimizer,
            name,
            value,
            requirement,
        })
    }
}

/// `value >= 0` and finite (false for NaN).
pub(crate) fn non_negative(value: f64) -> bool {
    value >= 0.0 && value.is_finite()
}

/// `0 <= value < 1` (false for NaN).
pub(crate) fn unit_interval(value: f64) -> bool {
    (0.0..1.0).contains(&value)
}

/// `base^step` for bias corrections, as Python's `beta ** step` (C `pow`).
#[inline]
pub(crate) fn pow_step(base: f64, step: u64) -> f64 {
    base.powf(step.max(1) as f64)
}

#[cfg(test)]
mod tests {
    //! Paths the PyTorch fixture does not cover, against naive per-element transcriptions of
    //! the algorithms in the type docs (scalar state, no slices, no hoisting).
    use super::*;

    const T0: TensorInfo = TensorInfo {
        index: 0,
        name: "dense0.weight",
        rows: 2,
        cols: 2,
        is_bias: false,
        trainable: true,
        l1: 0.0,
        l2: 0.0,
    };
    const T1: TensorInfo = TensorInfo {
        index: 1,
        name: "dense0.bias",
        rows: 2,
        cols: 1,
        is_bias: true,
        trainable: true,
        l1: 0.0,
        l2: 0.0,
    };

    fn grads(step: usize, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let x = (step * 7 + i * 3) as f64;
                (x * 0.37).sin() * if i == 1 { 0.0 } else { 1.0 + step as f64 }
            })
            .collect()
    }

    /// Runs `opt` for `steps` over two tensors and `naive` element by element; compares.
    fn check(
        mut opt: impl Optimizer<f64>,
        steps: usize,
        naive: impl Fn(usize, f64, f64, &mut [f64; 4]) -> f64,
    ) {
        let mut w = vec![0.5, -1.0, 0.0, 2.0];
        let mut b = vec![0.1, -0.2];
        let mut w_ref = w.clone();
        let mut b_ref = b.clone();
        let mut sw = [[0.0; 4]; 4];
        let mut sb = [[0.0; 4]; 2];
        for t in 1..=steps {
            let gw = grads(t, 4);
            let gb = grads(t + 100, 2);
            opt.begin_step();
            opt.update(&T0, &mut w, &gw);
            opt.update(&T1, &mut b, &gb);
            for i in 0..4 {
                w_ref[i] = naive(t, w_ref[i], gw[i], &mut sw[i]);
            }
            for i in 0..2 {
                b_ref[i] = naive(t, b_ref[i], gb[i], &mut sb[i]);
            }
            for (x, y) in w.iter().chain(&b).zip(w_ref.iter().chain(&b_ref)) {
                assert!(
                    (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                    "step {t}: {x} vs {y}"
                );
            }
        }
    }

    #[test]
    fn sgd_dampening_weight_decay_maximize() {
        let (lr, mu, tau, wd) = (0.1, 0.8, 0.3, 0.05);
        let opt = Sgd::new(lr)
            .momentum(mu)
            .dampening(tau)
            .weight_decay(wd)
            .maximize(true);
        check(opt, 6, |t, p, g, s| {
            let g = -g + wd * p;
            s[0] = if t == 1 {
                g
            } else {
                mu * s[0] + (1.0 - tau) * g
            };
            p - lr * s[0]
        });
    }

    #[test]
    fn sgd_nesterov() {
        let (lr, mu) = (0.05, 0.9);
        check(Sgd::new(lr).momentum(mu).nesterov(true), 6, |t, p, g, s| {
            s[0] = if t == 1 { g } else { mu * s[0] + g };
            p - lr * (g + mu * s[0])
        });
    }

    #[test]
    fn only_plain_sgd_is_a_linear_step() {
        let linear = |o: &dyn Optimizer<f64>| o.linear_step();
        assert_eq!(linear(&Sgd::new(0.1)), Some(-0.1));
        assert_eq!(linear(&Sgd::new(0.1).maximize(true)), Some(0.1));
        // Dampening and Nesterov only matter with momentum.
        assert_eq!(linear(&Sgd::new(0.1).dampening(0.5)), Some(-0.1));
        assert_eq!(linear(&Sgd::new(0.1).momentum(0.9)), None);
        assert_eq!(linear(&Sgd::new(0.1).weight_decay(1e-4)), None);
        assert_eq!(linear(&Adam::new(0.1)), None);
        assert_eq!(linear(&Adagrad::new(0.1)), None);
        assert_eq!(linear(&RmsProp::new(0.1)), None);
        assert_eq!(linear(&AdaMax::new(0.1)), None);
        assert_eq!(linear(&AdamW::new(0.1)), None);
    }

    #[test]
    fn adagrad_lr_decay_initial_accumulator_weight_decay() {
        let (lr, eta, s0, wd, eps) = (0.1, 0.2, 0.3, 0.01, 1e-10);
        let opt = Adagrad::new(lr)
            .lr_decay(eta)
            .initial_accumulator_value(s0)
            .weight_decay(wd);
        check(opt, 6, |t, p, g, s| {
            if t == 1 {
                s[0] = s0;
            }
            let g = g + wd * p;
            s[0] += g * g;
            p - lr / (1.0 + (t as f64 - 1.0) * eta) * g / (s[0].sqrt() + eps)
        });
    }

    fn rms(momentum: f64, centered: bool) {
        let (lr, a, eps, wd) = (0.01, 0.9, 1e-8, 0.02);
        let opt = RmsProp::new(lr)
            .alpha(a)
            .weight_decay(wd)
            .momentum(momentum)
            .centered(centered);
        check(opt, 6, |_, p, g, s| {
            let g = g + wd * p;
            s[0] = a * s[0] + (1.0 - a) * g * g;
            let d = if centered {
                s[1] = a * s[1] + (1.0 - a) * g;
                (s[0] - s[1] * s[1]).sqrt() + eps
            } else {
                s[0].sqrt() + eps
            };
            if momentum > 0.0 {
                s[2] = momentum * s[2] + g / d;
                p - lr * s[2]
            } else {
                p - lr * g / d
            }
        });
    }

    #[test]
    fn rmsprop_every_combination() {
        rms(0.0, false);
        rms(0.7, false);
        rms(0.0, true);
        rms(0.7, true);
    }

    fn adam_naive(
        lr: f64,
        b1: f64,
        b2: f64,
        wd: f64,
        amsgrad: bool,
        decoupled: bool,
    ) -> impl Fn(usize, f64, f64, &mut [f64; 4]) -> f64 {
        move |t, p, g, s| {
            let mut p = p;
            let mut g = g;
            if decoupled {
                p *= 1.0 - lr * wd;
            } else {
                g += wd * p;
            }
            s[0] = b1 * s[0] + (1.0 - b1) * g;
            s[1] = b2 * s[1] + (1.0 - b2) * g * g;
            s[2] = s[2].max(s[1]);
            let v = if amsgrad { s[2] } else { s[1] };
            let t = t as f64;
            let d = v.sqrt() / (1.0 - b2.powf(t)).sqrt() + 1e-8;
            p - lr / (1.0 - b1.powf(t)) * s[0] / d
        }
    }

    #[test]
    fn adam_amsgrad_and_weight_decay() {
        let opt = Adam::new(0.05)
            .betas(0.8, 0.9)
            .weight_decay(0.1)
            .amsgrad(true);
        check(opt, 8, adam_naive(0.05, 0.8, 0.9, 0.1, true, false));
        let opt = Adam::new(0.05).betas(0.8, 0.9).weight_decay(0.1);
        check(opt, 8, adam_naive(0.05, 0.8, 0.9, 0.1, false, false));
    }

    #[test]
    fn adamw_is_adam_with_decoupled_decay() {
        let opt = AdamW::new(0.05)
            .betas(0.3, 0.9)
            .weight_decay(0.1)
            .amsgrad(true);
        check(opt, 8, adam_naive(0.05, 0.3, 0.9, 0.1, true, true));
        let opt = Adam::new(0.05)
            .weight_decay(0.1)
            .decoupled_weight_decay(true);
        check(opt, 8, adam_naive(0.05, 0.9, 0.999, 0.1, false, true));
        assert_eq!(Optimizer::<f64>::name(&AdamW::<f64>::default()), "AdamW");
    }

    #[test]
    fn adamax_weight_decay() {
        let (lr, b1, b2, wd, eps) = (0.02, 0.85, 0.95, 0.1, 1e-8);
        check(
            AdaMax::new(lr).betas(b1, b2).weight_decay(wd),
            8,
            |t, p, g, s| {
                let g = g + wd * p;
                s[0] = b1 * s[0] + (1.0 - b1) * g;
                s[1] = (b2 * s[1]).max(g.abs() + eps);
                p - lr / (1.0 - b1.powi(t as i32)) * s[0] / s[1]
            },
        );
    }

    #[test]
    fn defaults_are_pytorch() {
        assert_eq!(
            Optimizer::<f64>::learning_rate(&Sgd::<f64>::default()),
            1e-3
        );
        assert_eq!(
            Optimizer::<f64>::learning_rate(&Adagrad::<f64>::default()),
            1e-2
        );
        assert_eq!(
            Optimizer::<f64>::learning_rate(&RmsProp::<f64>::default()),
            1e-2
        );
        assert_eq!(
            Optimizer::<f64>::learning_rate(&Adam::<f64>::default()),
            1e-3
        );
        assert_eq!(
            Optimizer::<f64>::learning_rate(&AdaMax::<f64>::default()),
            2e-3
        );
        assert_eq!(
            Optimizer::<f64>::learning_rate(&AdamW::<f64>::default()),
            1e-3
        );
    }

    #[test]
    fn invalid_hyperparameters_are_errors() {
        fn bad(o: &dyn Optimizer<f32>) {
            assert!(o.validate().is_err(), "{} accepted", o.name());
        }
        bad(&Sgd::new(-0.1));
        bad(&Sgd::new(f64::NAN));
        bad(&Sgd::new(0.1).nesterov(true));
        bad(&Sgd::new(0.1).momentum(0.9).dampening(0.1).nesterov(true));
        bad(&Sgd::new(0.1).momentum(-0.9));
        bad(&Adagrad::new(0.1).lr_decay(-1.0));
        bad(&Adagrad::new(0.1).initial_accumulator_value(-1.0));
        bad(&RmsProp::new(0.1).alpha(1.5));
        bad(&RmsProp::new(0.1).eps(-1.0));
        bad(&Adam::new(0.1).betas(1.0, 0.999));
        bad(&Adam::new(0.1).betas(0.9, -0.1));
        bad(&AdaMax::new(0.1).weight_decay(-1.0));
        bad(&AdamW::new(0.1).betas(0.9, 1.0));
        let e = Adam::<f32>::new(1e-3).betas(0.9, 1.0).checked().err();
        assert_eq!(
            e.map(|e| e.to_string()).unwrap_or_default(),
            "Adam: invalid betas[1] = 1: must be in [0, 1)"
        );
        // Stepping an invalid optimizer does not panic.
        let mut o = Sgd::<f32>::new(0.1).nesterov(true);
        let mut p = [1.0f32; 4];
        o.begin_step();
        o.update(&T0, &mut p, &[1.0; 4]);
    }

    #[test]
    fn state_names_and_load_errors() {
        let mut o = Adam::<f64>::new(0.1).amsgrad(true);
        let mut w = [1.0; 4];
        let mut b = [1.0; 2];
        o.begin_step();
        o.update(&T0, &mut w, &[0.1; 4]);
        o.update(&T1, &mut b, &[0.1; 2]);
        let s = o.state();
        let names: Vec<&str> = s.buffers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "dense0.weight.exp_avg",
                "dense0.weight.exp_avg_sq",
                "dense0.weight.max_exp_avg_sq",
                "dense0.bias.exp_avg",
                "dense0.bias.exp_avg_sq",
                "dense0.bias.max_exp_avg_sq"
            ]
        );
        assert_eq!((s.name.as_str(), s.step, s.lr), ("Adam", 1, 0.1));

        let reject = |o: &mut Adam<f64>, state: &OptimizerState<f64>, needle: &str| {
            let before = o.state();
            let e = o
                .load_state(state)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(needle), "`{e}` lacks `{needle}`");
            assert_eq!(o.state(), before, "a failed load changed the state");
        };
        let mut wrong = s.clone();
        wrong.name = "SGD".into();
        reject(&mut o, &wrong, "SGD");
        let mut wrong = s.clone();
        wrong.buffers[0].1.push(0.0);
        reject(&mut o, &wrong, "dense0.weight");
        let mut wrong = s.clone();
        wrong.buffers[1].0 = "dense0.weight.momentum".into();
        reject(&mut o, &wrong, "unknown buffer");
        let mut wrong = s.clone();
        wrong.buffers.truncate(5);
        reject(&mut o, &wrong, "max_exp_avg_sq");
        let mut wrong = s.clone();
        wrong.buffers.truncate(3);
        reject(&mut o, &wrong, "dense0.bias");
        let mut wrong = s.clone();
        wrong.buffers.push(wrong.buffers[0].clone());
        reject(&mut o, &wrong, "twice");
        // Lengths that disagree with the network's layout, for a fresh optimizer.
        let mut fresh = Adam::<f64>::new(0.1).amsgrad(true);
        let mut short = s.clone();
        for (n, v) in &mut short.buffers {
            if n.starts_with("dense0.bias") {
                v.push(0.0);
            }
        }
        assert!(
            fresh.load_state(&short).is_ok(),
            "self-consistent, layout unknown"
        );
        let mut fresh = Adam::<f64>::new(0.1).amsgrad(true);
        let e = fresh
            .load_state_for(&short, &[T0, T1])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("dense0.bias"), "{e}");
        assert!(fresh.load_state_for(&s, &[T0, T1]).is_ok());
        assert_eq!(fresh.state(), s);
        assert!(fresh.load_state_for(&s, &[T0]).is_err());
    }

    #[test]
    fn state_into_reuses_its_buffers_and_equals_state() {
        let mut o = Adam::<f64>::new(0.1).amsgrad(true);
        let mut out = OptimizerState {
            name: String::new(),
            step: 0,
            lr: 0.0,
            buffers: vec![("stale".into(), vec![9.0; 7]); 9],
        };
        let (mut w, mut b) = ([1.0; 4], [1.0; 2]);
        for step in 0..3 {
            o.begin_step();
            o.update(&T0, &mut w, &grads(step, 4));
            o.update(&T1, &mut b, &grads(step + 50, 2));
            o.state_into(&mut out);
            assert_eq!(out, o.state(), "after step {step}");
        }
        let ptr = out.buffers[0].1.as_ptr();
        o.begin_step();
        o.update(&T0, &mut w, &[0.5; 4]);
        o.state_into(&mut out);
        assert_eq!(out.buffers[0].1.as_ptr(), ptr, "buffers are reused");
        assert!(o.state_is_finite());
    }

    #[test]
    fn non_finite_or_negative_state_is_refused_and_detected() {
        let mut o = Adam::<f32>::new(0.1);
        let mut w = [1.0f32; 4];
        o.begin_step();
        o.update(&T0, &mut w, &[0.5; 4]);
        let good = o.state();
        let names: Vec<&str> = good.buffers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["dense0.weight.exp_avg", "dense0.weight.exp_avg_sq"]);
        for (buffer, at, value, needle) in [
            (
                0,
                2,
                f32::NAN,
                "`dense0.weight.exp_avg` holds NaN at index 2",
            ),
            (
                1,
                3,
                f32::INFINITY,
                "`dense0.weight.exp_avg_sq` holds inf at index 3",
            ),
            (
                1,
                1,
                -1e-3,
                "`dense0.weight.exp_avg_sq` holds -0.001 at index 1",
            ),
        ] {
            let mut bad = good.clone();
            bad.buffers[buffer].1[at] = value;
            let e = o
                .load_state(&bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(needle), "`{e}` lacks `{needle}`");
            assert_eq!(o.state(), good, "a refused load changed the state");
        }
        // A negative first moment is an ordinary state.
        let mut fine = good.clone();
        fine.buffers[0].1[0] = -2.0;
        assert!(o.load_state(&fine).is_ok());
        // A step that overflows the second moment ((1 - β₂) g² > f32::MAX) leaves the weight finite
        // (the update is m / ∞ = 0) but not the state.
        let mut o = Adam::<f32>::new(0.1);
        o.begin_step();
        o.update(&T0, &mut w, &[1e22; 4]);
        assert!(w.iter().all(|v| v.is_finite()), "{w:?}");
        assert!(!o.state_is_finite());
        let mut o = Sgd::<f32>::new(0.1).momentum(0.9);
        o.begin_step();
        o.update(&T0, &mut w, &[0.5; 4]);
        assert!(o.state_is_finite());
    }

    #[test]
    fn loaded_state_of_wrong_length_starts_afresh_without_panicking() {
        let mut o = Sgd::<f64>::new(0.1).momentum(0.9);
        let state = OptimizerState {
            name: "SGD".into(),
            step: 3,
            lr: 0.1,
            buffers: vec![("dense0.weight.momentum_buffer".into(), vec![1.0; 3])],
        };
        assert!(o.load_state(&state).is_ok());
        let mut w = [0.0; 4];
        o.begin_step();
        o.update(&T0, &mut w, &[1.0; 4]);
        assert_eq!(w, [-0.1; 4]);
    }

    #[test]
    fn a_loaded_step_count_at_the_top_of_the_range_saturates() {
        // A checkpoint may hold any u64 step; stepping on from u64::MAX must not overflow.
        fn check(mut o: impl Optimizer<f64>, buffers: Vec<(String, Vec<f64>)>) {
            let mut state = o.state();
            state.step = u64::MAX;
            state.buffers = buffers;
            o.load_state(&state).expect("a valid state");
            let mut w = [0.5; 4];
            for _ in 0..2 {
                o.begin_step();
                o.update(&T0, &mut w, &[0.25; 4]);
            }
            assert_eq!(o.state().step, u64::MAX, "{}", o.name());
            assert!(
                w.iter().all(|v| v.is_finite() && *v < 0.5),
                "{}: {w:?}",
                o.name()
            );
        }
        let b = |n: &str| (format!("dense0.weight.{n}"), vec![0.0; 4]);
        check(Sgd::new(0.1), vec![]);
        check(Adagrad::new(0.1), vec![b("sum")]);
        check(RmsProp::new(0.1), vec![b("square_avg")]);
        check(Adam::new(0.1), vec![b("exp_avg"), b("exp_avg_sq")]);
        check(AdaMax::new(0.1), vec![b("exp_avg"), b("exp_inf")]);
        check(AdamW::new(0.1), vec![b("exp_avg"), b("exp_avg_sq")]);
    }

    #[test]
    fn buffers_and_step_count_stable_after_first_sight() {
        let mut o = Adam::<f32>::new(0.1);
        let mut w = [1.0f32; 4];
        o.begin_step();
        o.update(&T0, &mut w, &[0.5; 4]);
        let ptr = o.state().buffers.len();
        for _ in 0..3 {
            o.begin_step();
            o.update(&T0, &mut w, &[0.5; 4]);
        }
        assert_eq!(o.state().buffers.len(), ptr);
        assert_eq!(o.state().step, 4);
    }
}
