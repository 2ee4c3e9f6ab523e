//! Tests of the generator: the tree's relations and the composition rules on hand-built and random trees,
//! determinism, and the shape of generated stories.

use super::*;
use crate::clutrr::kinship::resolve_chain;
use Relation::*;

/// Founders G1 (m) + G2 (f); their sons F (married to M, from outside) and U (married to W); F + M have A (f)
/// and B (m); U + W have C (m), A's cousin.
struct Family {
    tree: FamilyTree,
    g1: usize,
    g2: usize,
    f: usize,
    m: usize,
    u: usize,
    w: usize,
    a: usize,
    b: usize,
    c: usize,
}

fn family() -> Family {
    let mut tree = FamilyTree::default();
    let g1 = tree.add_person(Gender::Male);
    let g2 = tree.add_person(Gender::Female);
    tree.marry(g1, g2);
    let f = tree.add_child(g1, g2, Gender::Male);
    let u = tree.add_child(g2, g1, Gender::Male);
    let m = tree.add_person(Gender::Female);
    tree.marry(m, f);
    let w = tree.add_person(Gender::Female);
    tree.marry(u, w);
    let a = tree.add_child(f, m, Gender::Female);
    let b = tree.add_child(m, f, Gender::Male);
    let c = tree.add_child(u, w, Gender::Male);
    Family { tree, g1, g2, f, m, u, w, a, b, c }
}

#[test]
fn tree_relations_on_a_hand_built_family() {
    let Family { tree, g1, g2, f, m, u, w, a, b, c } = family();
    let r = |x, y| tree.relation(x, y);
    assert_eq!(tree.people[a].parents, Some([f, m]), "father first, whoever is named first");
    assert_eq!(r(a, f), Some(Father));
    assert_eq!(r(f, a), Some(Daughter));
    assert_eq!(r(a, b), Some(Brother));
    assert_eq!(r(b, a), Some(Sister));
    assert_eq!(r(f, m), Some(Wife));
    assert_eq!(r(a, g2), Some(Grandmother));
    assert_eq!(r(g1, b), Some(Grandson));
    assert_eq!(r(a, u), Some(Uncle));
    assert_eq!(r(u, a), Some(Niece));
    assert_eq!(r(m, g1), Some(FatherInLaw));
    assert_eq!(r(g2, w), Some(DaughterInLaw));
    assert_eq!(r(w, g2), Some(MotherInLaw));
    assert_eq!(r(a, w), None, "an uncle's wife is not a blood aunt");
    assert_eq!(r(a, c), None, "cousins are not a relation");
    assert_eq!(r(m, u), None, "nor brothers-in-law");
    assert_eq!(r(a, a), None);
}

#[test]
fn chains_on_the_hand_built_family_resolve_to_the_tree_relation() {
    let Family { tree, g1, f, m, u, a, b, .. } = family();
    // Each chain: people p0..pk with p_{i+1} = p_i's edges[i]; the answer is "pk is p0's ?".
    let chains: [(&[usize], &[Relation], Option<Relation>); 7] = [
        // A's father is F, F's brother is U: U is A's uncle.
        (&[a, f, u], &[Father, Brother], Some(Uncle)),
        (&[b, m, f], &[Mother, Husband], Some(Father)),
        (&[g1, f, m], &[Son, Wife], Some(DaughterInLaw)),
        (&[m, f, g1], &[Husband, Father], Some(FatherInLaw)),
        // U's father's son, distinct from U, is U's brother, whose son is U's nephew.
        (&[u, g1, f, b], &[Father, Son, Son], Some(Nephew)),
        (&[a, f, g1, u], &[Father, Father, Son], None), // a grandfather's son: a father or an uncle
        (&[b, a, f, u], &[Sister, Father, Brother], Some(Uncle)),
    ];
    for (people, edges, expected) in chains {
        for (i, &edge) in edges.iter().enumerate() {
            assert_eq!(tree.relation(people[i], people[i + 1]), Some(edge), "edge {i} of {edges:?}");
        }
        assert_eq!(resolve_chain(edges), expected, "{edges:?}");
        if let Some(target) = expected {
            assert_eq!(tree.relation(people[0], *people.last().unwrap()), Some(target), "{edges:?}");
        }
    }
}

#[test]
fn every_defined_rule_matches_the_tree_on_random_trees() {
    // The rules are sound for the family model: wherever x -r1-> y -r2-> z with x, y, z distinct and a rule
    // for (r1, r2), the tree's relation of z to x is the rule's answer.
    let config =
        GeneratorConfig { generations: 4, min_children: 1, max_children: 3, p_marry: 0.8, ..Default::default() };
    let mut rng = StdRng::seed_from_u64(3);
    let mut checked = 0;
    let mut used = std::collections::HashSet::new();
    for _ in 0..30 {
        let tree = FamilyTree::random(&config, &mut rng);
        let n = tree.people.len();
        for x in 0..n {
            for y in 0..n {
                let Some(r1) = tree.relation(x, y) else { continue };
                for z in (0..n).filter(|&z| z != x && z != y) {
                    let Some(r2) = tree.relation(y, z) else { continue };
                    if let Some(r) = compose(r1, r2) {
                        assert_eq!(tree.relation(x, z), Some(r), "{x} -{r1}-> {y} -{r2}-> {z}");
                        checked += 1;
                        used.insert((r1.kind(), r2.kind()));
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "only {checked} compositions checked");
    // Every kind rule fired at least once, so none is untested.
    assert_eq!(used.len(), 27, "{used:?}");
}

#[test]
fn sampled_chains_are_real_paths_with_the_tree_relation_as_target() {
    let config = GeneratorConfig::default();
    let mut rng = StdRng::seed_from_u64(11);
    let mut found = 0;
    for _ in 0..200 {
        let tree = FamilyTree::random(&config, &mut rng);
        for k in 1..=6 {
            let Some(chain) = sample_chain(&tree, k, &mut rng) else { continue };
            found += 1;
            assert_eq!(chain.edges.len(), k);
            let mut distinct = chain.people.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), k + 1, "people of a chain are distinct");
            for (i, &edge) in chain.edges.iter().enumerate() {
                assert_eq!(tree.relation(chain.people[i], chain.people[i + 1]), Some(edge));
                assert!(EDGE_KINDS.contains(&edge.kind()));
            }
            assert_eq!(resolve_chain(&chain.edges), Some(chain.target));
            assert_eq!(tree.relation(chain.people[0], chain.people[k]), Some(chain.target));
        }
    }
    assert!(found > 500, "{found}");
}

#[test]
fn generation_is_deterministic_per_seed() {
    let config = GeneratorConfig::default();
    let a = generate(40, &config, 7).unwrap();
    assert_eq!(a, generate(40, &config, 7).unwrap());
    assert_ne!(a, generate(40, &config, 8).unwrap());
    // A longer run starts with the shorter one: each story draws from the stream in turn.
    assert_eq!(a[..10], generate(10, &config, 7).unwrap()[..]);
}

#[test]
fn generated_stories_have_k_sentences_and_named_queries() {
    let config = GeneratorConfig { ks: (2..=10).collect(), shuffle: false, ..Default::default() };
    let stories = generate(300, &config, 1).unwrap();
    let mut targets = std::collections::HashSet::new();
    for s in &stories {
        assert!((2..=10).contains(&s.k));
        assert_eq!(s.sentences.len(), s.k, "one sentence per edge: {}", s.text);
        assert_eq!(s.entities.len(), s.k + 1, "every chain person is named: {}", s.text);
        assert_ne!(s.query[0], s.query[1]);
        // Unshuffled, the first sentence tells the first edge, which names the first queried person.
        let first = crate::clutrr::text::placeholder(s.query[0]);
        assert!(s.sentences[0].contains(&first), "{}", s.text);
        targets.insert(s.target);
    }
    assert!(targets.len() >= 16, "targets drawn: {targets:?}");
    assert!(generate(1, &GeneratorConfig { ks: vec![], ..Default::default() }, 0).is_err());
    assert!(generate(1, &GeneratorConfig { ks: vec![0], ..Default::default() }, 0).is_err());
}
