//! Checks a network's backward pass against central finite differences.

use crate::network::{Batch, GradientOf, Network, Parameters, Tape};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// The outcome of [`gradcheck`].
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheck {
    /// The largest error found, `|a - f| / max(|a|, |f|, 1e-3)` for analytic `a` and finite
    /// difference `f` (relative, or absolute where both are below 1e-3).
    pub max_error: f64,
    /// The tensor where it was found, e.g. `dense1.weight`.
    pub tensor: &'static str,
    /// The element (column-major) within that tensor.
    pub element: usize,
    /// Parameters compared.
    pub compared: usize,
}

/// Compares `backward` with central finite differences of `L = Σ c ⊙ forward_train(x)` for a
/// fixed pseudo-random `c`, over every parameter, in `f64`.
///
/// Dropout masks are drawn from an rng seeded with `seed` afresh for every evaluation, so all
/// evaluations see the same masks. Each derivative is `(L(p + h) - L(p - h)) / 2h` with
/// `h = 1e-6`.
pub fn gradcheck<N, const IN: usize, const OUT: usize>(
    net: &mut N,
    x: &Batch<f64, IN>,
    seed: u64,
) -> GradCheck
where
    N: Network<IN, OUT, Scalar = f64>,
{
    let analytic = analytic_gradient(net, x, seed);
    compare_with_finite_differences(net, x, seed, &analytic)
}

/// The gradient of [`gradcheck`]'s probe loss by the network's own backward pass, flat in
/// [`Parameters::to_flat`] order.
pub fn analytic_gradient<N, const IN: usize, const OUT: usize>(
    net: &mut N,
    x: &Batch<f64, IN>,
    seed: u64,
) -> Vec<f64>
where
    N: Network<IN, OUT, Scalar = f64>,
{
    let c = output_weights(OUT * x.ncols(), seed);
    let mut tape = net.new_tape();
    net.forward_train(x.as_view(), &mut tape, &mut StdRng::seed_from_u64(seed));
    tape.output_parts().grad.copy_from_slice(&c);
    let mut grads = net.zero_gradients();
    net.backward(x.as_view(), &mut tape, GradientOf::Output, &mut grads);
    grads.to_flat()
}

/// The weights `c` of the probe loss `L = Σ c ⊙ output`, uniform in [-1, 1).
fn output_weights(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Compares a given flat gradient (in [`Parameters::to_flat`] order) of the probe loss of
/// [`gradcheck`] with central finite differences. `gradcheck` passes the gradient its
/// backward pass computed; a test can pass a wrong one and see it caught.
pub fn compare_with_finite_differences<N, const IN: usize, const OUT: usize>(
    net: &mut N,
    x: &Batch<f64, IN>,
    seed: u64,
    analytic: &[f64],
) -> GradCheck
where
    N: Network<IN, OUT, Scalar = f64>,
{
    const H: f64 = 1e-6;
    assert_eq!(
        analytic.len(),
        N::PARAMS,
        "one analytic derivative per parameter"
    );
    let c = output_weights(OUT * x.ncols(), seed);
    let mut tape = net.new_tape();
    let loss = |net: &mut N, tape: &mut N::Tape| -> f64 {
        net.forward_train(x.as_view(), tape, &mut StdRng::seed_from_u64(seed));
        let parts = tape.output_parts();
        parts.output.iter().zip(&c).map(|(o, c)| o * c).sum()
    };

    let base = net.to_flat();
    let mut probe = base.clone();
    let mut worst = GradCheck {
        max_error: 0.0,
        tensor: "",
        element: 0,
        compared: 0,
    };
    // `k` counts the network's values (statistics included), `a` the analytic gradient's
    // (trainable tensors only).
    let (mut k, mut a) = (0, 0);
    for info in N::TENSORS {
        if !info.trainable {
            k += info.len();
            continue;
        }
        for element in 0..info.len() {
            probe[k] = base[k] + H;
            net.copy_from_flat(&probe);
            let plus = loss(net, &mut tape);
            probe[k] = base[k] - H;
            net.copy_from_flat(&probe);
            let minus = loss(net, &mut tape);
            probe[k] = base[k];
            let numeric = (plus - minus) / (2.0 * H);
            let grad = analytic[a];
            let err = (grad - numeric).abs() / grad.abs().max(numeric.abs()).max(1e-3);
            if err > worst.max_error || worst.tensor.is_empty() {
                worst.max_error = err;
                worst.tensor = info.name;
                worst.element = element;
            }
            worst.compared += 1;
            k += 1;
            a += 1;
        }
    }
    net.copy_from_flat(&base);
    worst
}
