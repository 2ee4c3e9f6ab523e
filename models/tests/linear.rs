//! Linear and Mlp: forward against hand computations, first- and second-order gradient checks with the
//! parameters as inputs, parameter names and gradient collection through a Scope.

use autograd::check::uniform;
use autograd::{grad_tests, Tape, Var};
use models::{Activation, Linear, Mlp, Module, Scope};
use ndarray::{array, ArrayD};
use rand::{rngs::StdRng, SeedableRng};

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn hand_layer() -> Linear<f64> {
    Linear::from_arrays(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn(), Some(array![0.5, -1.0].into_dyn()))
}

fn run(layer: &Linear<f64>, x: ArrayD<f64>) -> ArrayD<f64> {
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let y = layer.forward(&scope, tape.constant(x));
    (*y.value()).clone()
}

#[test]
fn forward_matches_a_hand_computation() {
    // Row 0: [1*1 + 2*0 + 3*(-1) + 0.5, 4*1 + 5*0 + 6*(-1) - 1] = [-1.5, -3];
    // row 1: [1*2 + 2*1 + 0 + 0.5, 4*2 + 5*1 + 0 - 1] = [4.5, 12].
    let x = array![[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]];
    assert_eq!(run(&hand_layer(), x.clone().into_dyn()), array![[-1.5, -3.0], [4.5, 12.0]].into_dyn());
    // Any rank: [2, 1, 3] -> [2, 1, 2], and a single vector [3] -> [2].
    let x3 = x.clone().into_shape_with_order((2, 1, 3)).unwrap().into_dyn();
    assert_eq!(run(&hand_layer(), x3), array![[[-1.5, -3.0]], [[4.5, 12.0]]].into_dyn());
    assert_eq!(run(&hand_layer(), array![1.0, 0.0, -1.0].into_dyn()), array![-1.5, -3.0].into_dyn());
    // Without a bias.
    let no_bias = Linear::from_arrays(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn(), None);
    assert_eq!(run(&no_bias, x.into_dyn()), array![[-2.0, -2.0], [4.0, 13.0]].into_dyn());
}

#[test]
fn bound_variables_replace_the_parameters() {
    // The gradient checks bind their inputs as the parameters: the forward must really use them.
    let layer = Linear::<f64>::new(3, 2, &mut rng());
    let tape = Tape::new();
    let s = Scope::new(&tape);
    s.bind(&layer.weight, tape.leaf(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn()));
    s.bind(layer.bias.as_ref().unwrap(), tape.leaf(array![0.5, -1.0].into_dyn()));
    let y = layer.forward(&s, tape.constant(array![[1.0, 0.0, -1.0]].into_dyn()));
    assert_eq!(*y.value(), array![[-1.5, -3.0]].into_dyn());
}

#[test]
#[should_panic(expected = "already bound")]
fn binding_a_parameter_twice_panics() {
    let layer = Linear::<f64>::new(3, 2, &mut rng());
    let tape = Tape::new();
    let s = Scope::new(&tape);
    s.param(&layer.weight);
    s.bind(&layer.weight, tape.leaf(ArrayD::zeros(vec![2, 3])));
}

#[test]
#[should_panic(expected = "Linear(3 -> 2): input of shape [2, 4]")]
fn a_wrong_input_width_names_the_layer_and_shape() {
    run(&hand_layer(), ArrayD::zeros(vec![2, 4]));
}

#[test]
fn mlp_forward_is_the_composition_of_its_layers() {
    let mlp = Mlp::<f64>::with_activations(&[3, 4, 2], Activation::Relu, Activation::Sigmoid, &mut rng());
    let x = uniform(&[5, 3], -1.0, 1.0, 1);
    let tape = Tape::new();
    let s = Scope::new(&tape);
    let xv = tape.constant(x.clone());
    let y = mlp.forward(&s, xv);
    let by_hand = mlp.layers[1].forward(&s, mlp.layers[0].forward(&s, xv).relu()).sigmoid();
    assert_eq!(*y.value(), *by_hand.value());
    // Relu really clips: some hidden unit is zero somewhere, and the output is in (0, 1).
    assert!(mlp.layers[0].forward(&s, xv).relu().value().iter().any(|&h| h == 0.0));
    assert!(y.value().iter().all(|&v| v > 0.0 && v < 1.0));
}

#[test]
fn parameter_names_and_counts() {
    let mlp = Mlp::<f32>::new(&[3, 4, 2], &mut rng());
    let names: Vec<String> = mlp.params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "1.weight", "1.bias"]);
    assert_eq!(mlp.num_params(), 3 * 4 + 4 + 4 * 2 + 2);
    let stack = vec![Mlp::<f32>::new(&[2, 2], &mut rng()), Mlp::new(&[2, 3], &mut rng())];
    let names: Vec<String> = models::prefixed("encoder", stack.params()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["encoder.0.0.weight", "encoder.0.0.bias", "encoder.1.0.weight", "encoder.1.0.bias"]);
    let no_bias = Linear::<f32>::with_bias(3, 2, false, &mut rng());
    assert_eq!(no_bias.params().len(), 1);
    // A layer shared by two entries is counted once.
    let layer = Linear::<f32>::new(3, 2, &mut rng());
    assert_eq!(vec![layer.clone(), layer].num_params(), 8);
}

#[test]
fn a_layer_used_twice_gets_one_summed_gradient() {
    let layer = Linear::<f64>::new(3, 3, &mut rng());
    let x = uniform(&[4, 3], -1.0, 1.0, 2);
    let grads_of = |uses: usize| {
        let tape = Tape::new();
        let s = Scope::new(&tape);
        let xv = tape.constant(x.clone());
        let ys: Vec<_> = (0..uses).map(|_| layer.forward(&s, xv).tanh().sum()).collect();
        assert_eq!(s.len(), 2, "one leaf per parameter however often it is used");
        let g = s.grads(&ys);
        (g.get(&layer.weight).unwrap().clone(), g.get(layer.bias.as_ref().unwrap()).unwrap().clone())
    };
    let (w1, b1) = grads_of(1);
    let (w2, b2) = grads_of(2);
    assert!(w1.iter().any(|&g| g != 0.0));
    assert_eq!(w2, &w1 * 2.0);
    assert_eq!(b2, &b1 * 2.0);
}

#[test]
fn module_grads_give_zero_for_an_unused_parameter() {
    let mlp = Mlp::<f64>::new(&[2, 3, 1], &mut rng());
    let tape = Tape::new();
    let s = Scope::new(&tape);
    let y = mlp.layers[0].forward(&s, tape.constant(uniform(&[2, 2], -1.0, 1.0, 3))).sum();
    let g = mlp.grads(&s, &[y]);
    assert_eq!(g.len(), 4);
    assert!(g.get(&mlp.layers[0].weight).unwrap().iter().any(|&v| v != 0.0));
    assert!(g.get(&mlp.layers[1].weight).unwrap().iter().all(|&v| v == 0.0));
}

/// A Linear(4 -> 5) whose weight and bias are the inputs `x[1]` and `x[2]`, applied to `x[0]`.
fn linear_with<'t>(t: &'t Tape<f64>, x: &[Var<'t, f64>]) -> Var<'t, f64> {
    let layer = Linear::<f64>::new(4, 5, &mut rng());
    let s = Scope::new(t);
    s.bind(&layer.weight, x[1]);
    s.bind(layer.bias.as_ref().unwrap(), x[2]);
    layer.forward(&s, x[0])
}

/// An Mlp 3 -> 4 -> 2 with the given activations and its parameters bound to `x[1..]`, applied to `x[0]`.
fn mlp_with<'t>(t: &'t Tape<f64>, x: &[Var<'t, f64>], hidden: Activation, last: Activation) -> Var<'t, f64> {
    let mlp = Mlp::<f64>::with_activations(&[3, 4, 2], hidden, last, &mut rng());
    let s = Scope::new(t);
    for ((_, p), v) in mlp.params().iter().zip(&x[1..]) {
        s.bind(p, *v);
    }
    mlp.forward(&s, x[0])
}

fn mlp_params(seed: u64) -> [ArrayD<f64>; 4] {
    [
        uniform(&[4, 3], -1.0, 1.0, seed),
        uniform(&[4], -0.5, 0.5, seed + 1),
        uniform(&[2, 4], -1.0, 1.0, seed + 2),
        uniform(&[2], -0.5, 0.5, seed + 3),
    ]
}

grad_tests! {
    linear_rank3: |t, x| linear_with(t, x),
        [uniform(&[2, 3, 4], -1.0, 1.0, 10), uniform(&[5, 4], -1.0, 1.0, 11), uniform(&[5], -1.0, 1.0, 12)];
    linear_rank1: |t, x| linear_with(t, x).tanh(),
        [uniform(&[4], -1.0, 1.0, 13), uniform(&[5, 4], -1.0, 1.0, 14), uniform(&[5], -1.0, 1.0, 15)];
    mlp_tanh: |t, x| mlp_with(t, x, Activation::Tanh, Activation::None),
        [uniform(&[5, 3], -1.0, 1.0, 20), mlp_params(21)[0].clone(), mlp_params(21)[1].clone(),
         mlp_params(21)[2].clone(), mlp_params(21)[3].clone()];
    mlp_relu_sigmoid: |t, x| mlp_with(t, x, Activation::Relu, Activation::Sigmoid),
        [uniform(&[5, 3], -1.0, 1.0, 30), mlp_params(31)[0].clone(), mlp_params(31)[1].clone(),
         mlp_params(31)[2].clone(), mlp_params(31)[3].clone()];
    mlp_used_twice: |t, x| {
        let mlp = Mlp::<f64>::with_activations(&[3, 3], Activation::Tanh, Activation::Tanh, &mut rng());
        let s = Scope::new(t);
        s.bind(&mlp.layers[0].weight, x[1]);
        s.bind(mlp.layers[0].bias.as_ref().unwrap(), x[2]);
        mlp.forward(&s, mlp.forward(&s, x[0]))
    }, [uniform(&[2, 3], -1.0, 1.0, 40), uniform(&[3, 3], -1.0, 1.0, 41), uniform(&[3], -1.0, 1.0, 42)];
}
