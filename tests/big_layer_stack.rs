//! Parameters never live on the stack: a 4096 x 4096 layer (64 MiB of weights) constructs and
//! trains in a debug build on a 2 MiB thread stack.

use nn::prelude::*;

network! { Big < dense(4096 -> 4096, relu), dense(4096 -> 2) > }

#[test]
fn a_4096_wide_layer_trains_on_a_2_mib_stack() {
    let worker = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let mut rng = StdRng::seed_from_u64(1);
            let mut net = Big::new(&mut rng);
            let x = Batch::<f32, 4096>::from_fn(2, |i, j| ((i * 7 + j) % 13) as f32 / 13.0);
            let mut tape = net.new_tape();
            net.forward_train(x.as_view(), &mut tape, &mut rng);
            tape.output_parts().grad.fill(1.0);
            let mut grads = net.zero_gradients();
            net.backward(x.as_view(), &mut tape, GradientOf::Output, &mut grads);
            // One plain gradient-descent step through the parameter visitor.
            net.for_each_param_grad(&grads, &mut |_, p, g| {
                for (p, g) in p.iter_mut().zip(g) {
                    *p -= 0.01 * g;
                }
            });
            let y = net.predict(&SVector::<f32, 4096>::repeat(0.5));
            (
                Big::PARAMS,
                y.iter().all(|v| v.is_finite()),
                grads.dense0.weight.as_slice().iter().any(|g| *g != 0.0),
            )
        })
        .expect("spawn a thread with a 2 MiB stack");
    let (params, finite, nonzero) = worker.join().expect("no stack overflow");
    assert_eq!(params, 4096 * 4096 + 4096 + 4096 * 2 + 2);
    assert!(finite && nonzero);
}
