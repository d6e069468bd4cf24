//! Property tests: optimizer state round-trips exactly, clipping bounds the gradients,
//! penalty gradients agree with the penalty's finite differences.

use nn::runtime::optim::{AdaMax, Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
use nn::runtime::regularization::{
    add_penalty_grad_slice, clip_grad_norm_slices, clip_grad_value_slice, global_norm_slices,
    penalty_slice,
};
use nn::runtime::TensorInfo;
use proptest::prelude::*;

const TENSORS: [TensorInfo; 2] = [
    TensorInfo {
        index: 0,
        name: "dense0.weight",
        rows: 3,
        cols: 2,
        is_bias: false,
        trainable: true,
        l1: 0.0,
        l2: 0.0,
    },
    TensorInfo {
        index: 1,
        name: "dense0.bias",
        rows: 3,
        cols: 1,
        is_bias: true,
        trainable: true,
        l1: 0.0,
        l2: 0.0,
    },
];

/// Every optimizer in a non-default configuration, by number.
fn optimizer(which: u8) -> Box<dyn Optimizer<f64>> {
    match which % 9 {
        0 => Box::new(
            Sgd::new(0.1)
                .momentum(0.9)
                .dampening(0.1)
                .weight_decay(0.01),
        ),
        1 => Box::new(Sgd::new(0.1).momentum(0.9).nesterov(true)),
        2 => Box::new(
            Adagrad::new(0.1)
                .lr_decay(0.01)
                .initial_accumulator_value(0.1),
        ),
        3 => Box::new(RmsProp::new(0.01).momentum(0.9).centered(true)),
        4 => Box::new(RmsProp::new(0.01).weight_decay(0.1)),
        5 => Box::new(Adam::new(0.01).amsgrad(true).weight_decay(0.1)),
        6 => Box::new(Adam::new(0.01)),
        7 => Box::new(AdaMax::new(0.01).weight_decay(0.1)),
        _ => Box::new(AdamW::new(0.01).amsgrad(true)),
    }
}

fn run(opt: &mut dyn Optimizer<f64>, params: &mut [Vec<f64>; 2], grads: &[Vec<f64>]) {
    for g in grads.chunks(2) {
        opt.begin_step();
        for (t, g) in TENSORS.iter().zip(g) {
            opt.update(t, &mut params[t.index], g);
        }
    }
}

fn grads_strategy() -> impl Strategy<Value = Vec<Vec<f64>>> {
    (1usize..5).prop_flat_map(|steps| {
        prop::collection::vec(
            prop::collection::vec(-10.0f64..10.0, 6).prop_flat_map(|w| {
                prop::collection::vec(-10.0f64..10.0, 3).prop_map(move |b| vec![w.clone(), b])
            }),
            steps,
        )
        .prop_map(|v| v.into_iter().flatten().collect())
    })
}

proptest! {
    #[test]
    fn state_round_trips_and_resumes_exactly(
        which in 0u8..9,
        before in grads_strategy(),
        after in grads_strategy(),
    ) {
        let mut a = optimizer(which);
        let mut p = [vec![0.5, -0.25, 1.0, 0.0, -2.0, 0.75], vec![0.1, 0.0, -0.1]];
        run(a.as_mut(), &mut p, &before);
        let state = a.state();
        let mut b = optimizer(which);
        prop_assert!(b.load_state_for(&state, &TENSORS).is_ok());
        prop_assert_eq!(&b.state(), &state);
        let mut q = p.clone();
        run(a.as_mut(), &mut p, &after);
        run(b.as_mut(), &mut q, &after);
        prop_assert_eq!(p, q);
        prop_assert_eq!(a.state(), b.state());
    }

    #[test]
    fn clip_grad_norm_bounds_the_global_norm(
        mut a in prop::collection::vec(-100.0f64..100.0, 1..20),
        mut b in prop::collection::vec(-100.0f64..100.0, 1..20),
        max_norm in 1e-3f64..50.0,
    ) {
        let before = global_norm_slices(&[&a[..], &b[..]]);
        let (a0, b0) = (a.clone(), b.clone());
        let reported = clip_grad_norm_slices(&mut [&mut a[..], &mut b[..]], max_norm);
        prop_assert_eq!(reported, before);
        let after = global_norm_slices(&[&a[..], &b[..]]);
        prop_assert!(after <= max_norm * (1.0 + 1e-12), "{after} > {max_norm}");
        if before <= max_norm {
            prop_assert_eq!((a, b), (a0, b0));
        } else {
            // Direction kept: every value scaled by the same factor.
            let c = max_norm / (before + 1e-6);
            for (x, y) in a.iter().chain(&b).zip(a0.iter().chain(&b0)) {
                prop_assert!((x - y * c).abs() <= 1e-12 * y.abs());
            }
        }
    }

    #[test]
    fn clip_grad_value_bounds_every_value(
        mut g in prop::collection::vec(-100.0f32..100.0, 0..40),
        v in 0.0f64..10.0,
    ) {
        let g0 = g.clone();
        clip_grad_value_slice(&mut g, v);
        for (x, y) in g.iter().zip(&g0) {
            prop_assert!(x.abs() <= v as f32);
            if y.abs() <= v as f32 {
                prop_assert_eq!(x, y);
            }
        }
    }

    #[test]
    fn penalty_gradient_is_its_derivative(
        w in prop::collection::vec(prop_oneof![Just(0.0f64), -3.0f64..3.0], 1..12),
        l1 in 0.0f64..1.0,
        l2 in 0.0f64..1.0,
    ) {
        let mut g = vec![0.0; w.len()];
        add_penalty_grad_slice(&w, &mut g, l1, l2);
        let h = 1e-6;
        for i in 0..w.len() {
            if w[i] == 0.0 {
                // Subgradient at 0 is 0 for the L1 part.
                prop_assert_eq!(g[i], 0.0);
                continue;
            }
            if w[i].abs() < 2.0 * h {
                continue;
            }
            let mut up = w.clone();
            up[i] += h;
            let mut down = w.clone();
            down[i] -= h;
            let fd = (penalty_slice(&up, l1, l2) - penalty_slice(&down, l1, l2)) / (2.0 * h);
            prop_assert!((fd - g[i]).abs() < 1e-6, "{fd} vs {}", g[i]);
        }
    }
}
