//! Param: a shared handle that enters a tape without a copy and is updated in place, copy-on-write.

use autograd::Tape;
use models::{Grads, Param, Scope};
use ndarray::{array, ArrayD};
use std::rc::Rc;

#[test]
fn clones_share_the_value_and_the_identity() {
    let p = Param::<f64>::new(array![1.0, 2.0].into_dyn());
    let q = p.clone();
    assert!(p.ptr_eq(&q) && p.id() == q.id());
    q.set(array![3.0, 4.0].into_dyn());
    assert_eq!(*p.value(), array![3.0, 4.0].into_dyn());
    let r = p.deep_clone();
    assert!(!r.ptr_eq(&p) && r.id() != p.id());
    r.set(array![0.0, 0.0].into_dyn());
    assert_eq!(*p.value(), array![3.0, 4.0].into_dyn());
}

#[test]
fn entering_a_tape_does_not_copy() {
    let p = Param::<f64>::new(ArrayD::ones(vec![3, 2]));
    let tape = Tape::new();
    let v = p.var(&tape);
    assert!(Rc::ptr_eq(&v.value(), &p.value()));
    assert!(v.requires_grad());
    let c = p.constant(&tape);
    assert!(Rc::ptr_eq(&c.value(), &p.value()) && !c.requires_grad());
}

#[test]
fn update_is_in_place_when_no_tape_holds_the_value() {
    let p = Param::<f64>::new(ArrayD::ones(vec![4]));
    let before = Rc::as_ptr(&p.value());
    p.update(|w| *w *= 2.0);
    assert_eq!(Rc::as_ptr(&p.value()), before, "no copy");
    assert_eq!(*p.value(), ArrayD::from_elem(vec![4], 2.0));
}

#[test]
fn update_copies_when_a_tape_still_holds_the_value() {
    let p = Param::<f64>::new(ArrayD::ones(vec![4]));
    let tape = Tape::new();
    let v = p.var(&tape);
    p.update(|w| *w += 1.0);
    assert_eq!(*v.value(), ArrayD::<f64>::ones(vec![4]), "the tape keeps the value it computed with");
    assert_eq!(*p.value(), ArrayD::from_elem(vec![4], 2.0));
    assert!(!Rc::ptr_eq(&v.value(), &p.value()));
}

#[test]
#[should_panic(expected = "Param::set: parameter of shape [2] given a value of shape [3]")]
fn set_rejects_another_shape() {
    Param::<f32>::new(ArrayD::zeros(vec![2])).set(ArrayD::zeros(vec![3]));
}

#[test]
fn non_standard_layouts_are_stored_row_major() {
    let t = array![[1.0, 2.0], [3.0, 4.0]].reversed_axes().into_dyn();
    let p = Param::<f64>::new(t.clone());
    assert!(p.value().is_standard_layout());
    assert_eq!(*p.value(), t);
}

#[test]
fn grads_insert_accumulate_and_scale() {
    let (a, b) = (Param::<f64>::new(ArrayD::zeros(vec![2])), Param::<f64>::new(ArrayD::zeros(vec![1])));
    let mut g = Grads::new();
    g.insert(&a, array![1.0, 2.0].into_dyn());
    g.accumulate(&a, &array![0.5, 0.5].into_dyn());
    g.accumulate(&b, &array![3.0].into_dyn());
    let mut h = Grads::new();
    h.insert(&b, array![1.0].into_dyn());
    g.add(&h);
    g.scale(2.0);
    assert_eq!(g.get(&a).unwrap(), &array![3.0, 5.0].into_dyn());
    assert_eq!(g.get(&b).unwrap(), &array![8.0].into_dyn());
    assert_eq!(g.len(), 2);
    assert!(g.get(&Param::new(ArrayD::zeros(vec![2]))).is_none());
}

#[test]
fn scope_grad_vars_differentiate_again() {
    // d/dp of (d/dp sum(p^3)) . 1 = 6 p.
    let p = Param::<f64>::new(array![1.0, -2.0].into_dyn());
    let tape = Tape::new();
    let s = Scope::new(&tape);
    let x = s.param(&p);
    let y = (x * x * x).sum();
    let (q, g) = s.grad_vars(&[y], true).remove(0);
    assert!(q.ptr_eq(&p));
    let h = s.grads(&[g.sum()]);
    assert_eq!(h.get(&p).unwrap(), &array![6.0, -12.0].into_dyn());
}
