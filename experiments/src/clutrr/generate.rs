//! A CLUTRR-style story generator, so tests, CI and runs without the released data have stories of any k.
//!
//! 1. **A random family tree** ([`FamilyTree::random`]): a founding couple; each couple has
//!    `min_children..=max_children` children of random gender; each child short of the last generation marries
//!    (with probability `p_marry`) a newcomer of the other gender from outside the tree, and that couple has
//!    children in turn. So everyone has at most one spouse and every child both parents of one couple, the
//!    family model under which [`super::kinship`]'s rules are forced.
//! 2. **A chain of k edges** ([`sample_chain`]): a path from a random person (a randomised depth-first search), each step to a new person
//!    related by one of [`EDGE_KINDS`] (the edge relations of the released stories: parents, children, spouses,
//!    siblings, grandparents, grandchildren, uncles and aunts), taking only steps whose composition with the
//!    relation so far is defined by [`compose`]. The target, "last is first's ?", is that left fold, which is
//!    also the tree's own relation between the two (checked by the tests on many trees). A tree that gives no chain
//!    from a few starts is replaced.
//! 3. **Sentences**: one per edge from templates written for this project (generic ones usable with any
//!    relation word and a few per kind of relation), in chain order or shuffled. Only the chain's people are
//!    named, each with a distinct name; the query is (first, last).
//!
//! Everything is drawn from one `StdRng` seeded with the seed, so the same seed and configuration give the same
//! stories. The text then goes through [`Story::new`] exactly like a released row.

use super::kinship::{compose, Gender, Kind, Relation};
use super::Story;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Edge relations of generated stories (those of the released stories' `edge_types`).
pub const EDGE_KINDS: [Kind; 7] =
    [Kind::Parent, Kind::Child, Kind::Spouse, Kind::Sibling, Kind::Grandparent, Kind::Grandchild, Kind::ParentSibling];

/// Searches (from random starts) tried on one tree before a new tree is drawn, and trees tried before giving up.
const WALKS_PER_TREE: usize = 5;
const TREES: usize = 200;

/// How stories are generated.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorConfig {
    /// The k of each story is drawn uniformly from these.
    pub ks: Vec<usize>,
    /// Generations of the tree, the founders' included.
    pub generations: usize,
    pub min_children: usize,
    pub max_children: usize,
    /// Probability that a child short of the last generation marries (and so has children).
    pub p_marry: f64,
    /// Shuffle the sentences instead of telling the chain in order.
    pub shuffle: bool,
}

impl Default for GeneratorConfig {
    /// The released training mix, k = 2, 3, 4, in trees of four generations of 2 to 4 children a couple: with
    /// 1 to 3 children chains longer than k = 8 are rare, since the relation to the chain's start must stay one
    /// of the twenty; with 2 to 4 about one tree in four has a chain of k = 10.
    fn default() -> Self {
        GeneratorConfig {
            ks: vec![2, 3, 4],
            generations: 4,
            min_children: 2,
            max_children: 4,
            p_marry: 0.9,
            shuffle: true,
        }
    }
}

/// One person of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub gender: Gender,
    /// Father and mother, `None` for founders and people who married in.
    pub parents: Option<[usize; 2]>,
    pub spouse: Option<usize>,
}

/// A family tree under the model of the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FamilyTree {
    pub people: Vec<Person>,
}

impl FamilyTree {
    /// Adds a person without parents in the tree.
    pub fn add_person(&mut self, gender: Gender) -> usize {
        self.people.push(Person { gender, parents: None, spouse: None });
        self.people.len() - 1
    }

    /// Marries two unmarried people of different genders.
    pub fn marry(&mut self, a: usize, b: usize) {
        assert!(self.people[a].spouse.is_none() && self.people[b].spouse.is_none(), "one spouse each");
        assert_ne!(self.people[a].gender, self.people[b].gender, "couples are a man and a woman");
        self.people[a].spouse = Some(b);
        self.people[b].spouse = Some(a);
    }

    /// Adds a child of the married couple `a`, `b`.
    pub fn add_child(&mut self, a: usize, b: usize, gender: Gender) -> usize {
        assert_eq!(self.people[a].spouse, Some(b), "children belong to a couple");
        let [father, mother] = if self.people[a].gender == Gender::Male { [a, b] } else { [b, a] };
        self.people.push(Person { gender, parents: Some([father, mother]), spouse: None });
        self.people.len() - 1
    }

    fn parents(&self, x: usize) -> &[usize] {
        self.people[x].parents.as_ref().map_or(&[], |p| p.as_slice())
    }

    fn is_sibling(&self, x: usize, y: usize) -> bool {
        x != y && self.people[x].parents.is_some() && self.people[x].parents == self.people[y].parents
    }

    fn is_grandparent(&self, x: usize, y: usize) -> bool {
        self.parents(x).iter().any(|&p| self.parents(p).contains(&y))
    }

    fn is_parent_sibling(&self, x: usize, y: usize) -> bool {
        self.parents(x).iter().any(|&p| self.is_sibling(p, y))
    }

    /// The relation "`y` is `x`'s ?" read off the tree, `None` if it is none of the [`Relation`]s.
    pub fn relation(&self, x: usize, y: usize) -> Option<Relation> {
        if x == y {
            return None;
        }
        let spouse = self.people[x].spouse;
        let kind = if self.parents(x).contains(&y) {
            Kind::Parent
        } else if self.parents(y).contains(&x) {
            Kind::Child
        } else if spouse == Some(y) {
            Kind::Spouse
        } else if self.is_sibling(x, y) {
            Kind::Sibling
        } else if self.is_grandparent(x, y) {
            Kind::Grandparent
        } else if self.is_grandparent(y, x) {
            Kind::Grandchild
        } else if self.is_parent_sibling(x, y) {
            Kind::ParentSibling
        } else if self.is_parent_sibling(y, x) {
            Kind::SiblingChild
        } else if spouse.is_some_and(|s| self.parents(s).contains(&y)) {
            Kind::ParentInLaw
        } else if self.people[y].spouse.is_some_and(|s| self.parents(s).contains(&x)) {
            Kind::ChildInLaw
        } else {
            return None;
        };
        Some(Relation::of(kind, self.people[y].gender))
    }

    /// A random tree (see the module docs).
    pub fn random(config: &GeneratorConfig, rng: &mut impl Rng) -> FamilyTree {
        let mut tree = FamilyTree::default();
        let founder = tree.add_person(Gender::Male);
        let partner = tree.add_person(Gender::Female);
        tree.marry(founder, partner);
        let mut couples = vec![(founder, partner)];
        for generation in 1..config.generations {
            let mut next = Vec::new();
            for &(a, b) in &couples {
                for _ in 0..rng.gen_range(config.min_children..=config.max_children.max(config.min_children)) {
                    let child = tree.add_child(a, b, random_gender(rng));
                    if generation + 1 < config.generations && rng.gen_bool(config.p_marry) {
                        let other = match tree.people[child].gender {
                            Gender::Male => Gender::Female,
                            Gender::Female => Gender::Male,
                        };
                        let spouse = tree.add_person(other);
                        tree.marry(child, spouse);
                        next.push((child, spouse));
                    }
                }
            }
            couples = next;
        }
        tree
    }
}

fn random_gender(rng: &mut impl Rng) -> Gender {
    if rng.gen_bool(0.5) {
        Gender::Male
    } else {
        Gender::Female
    }
}

/// A chain `people[0] -edges[0]-> people[1] ... -> people[k]`: `people[i+1]` is `people[i]`'s `edges[i]`, and
/// `people[k]` is `people[0]`'s `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub people: Vec<usize>,
    pub edges: Vec<Relation>,
    pub target: Relation,
}

/// Steps a [`sample_chain`] search may take before giving up on a tree.
const SEARCH_BUDGET: usize = 5_000;

/// A random chain of `k` edges on `tree` (see the module docs), `None` if none is found within
/// [`SEARCH_BUDGET`] steps. A depth-first search from a random person that tries the allowed next people in
/// random order and backtracks when stuck: a plain random walk rarely reaches k = 10, since the relation to the
/// start must stay one of the twenty.
pub fn sample_chain(tree: &FamilyTree, k: usize, rng: &mut impl Rng) -> Option<Chain> {
    let start = rng.gen_range(0..tree.people.len());
    let mut chain = Chain { people: vec![start], edges: Vec::with_capacity(k), target: Relation::Father };
    let mut budget = SEARCH_BUDGET;
    extend(tree, k, None, &mut chain, &mut budget, rng).then_some(chain)
}

/// Extends `chain`, whose last person is `so_far` to its first, by the remaining edges; `false` (and `chain`
/// as it was) if no extension exists or the budget runs out.
fn extend(
    tree: &FamilyTree,
    k: usize,
    so_far: Option<Relation>,
    chain: &mut Chain,
    budget: &mut usize,
    rng: &mut impl Rng,
) -> bool {
    if chain.edges.len() == k {
        chain.target = so_far.expect("k > 0");
        return true;
    }
    let here = *chain.people.last().expect("the chain has a start");
    let mut steps: Vec<(usize, Relation, Relation)> = (0..tree.people.len())
        .filter(|y| !chain.people.contains(y))
        .filter_map(|y| {
            let edge = tree.relation(here, y).filter(|r| EDGE_KINDS.contains(&r.kind()))?;
            let total = match so_far {
                None => edge,
                Some(r) => compose(r, edge)?,
            };
            Some((y, edge, total))
        })
        .collect();
    steps.shuffle(rng);
    for (y, edge, total) in steps {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        chain.people.push(y);
        chain.edges.push(edge);
        if extend(tree, k, Some(total), chain, budget, rng) {
            return true;
        }
        chain.people.pop();
        chain.edges.pop();
    }
    false
}

/// Generic templates: `{A}` and `{B}` are the edge's two people ("`B` is `A`'s `{rel}`"), `{pos}` and `{obj}`
/// `A`'s possessive and object pronouns.
const GENERIC: [&str; 6] = [
    "{B} is {A}'s {rel}.",
    "{A} went to the market with {pos} {rel}, {B}.",
    "{A}'s {rel} {B} phoned {obj} on Sunday evening.",
    "{A} and {pos} {rel} {B} watched a film together.",
    "{A} baked bread with {pos} {rel} {B} on a rainy afternoon.",
    "{B}, who is {A}'s {rel}, sent {obj} a postcard from the coast.",
];

/// Templates for one kind of relation.
fn specific(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Parent => &[
            "{A} asked {pos} {rel} {B} for advice about school.",
            "{A} helped {pos} {rel} {B} paint the garden fence.",
        ],
        Kind::Child => &["{A} picked up {pos} {rel} {B} from school.", "{A} read a bedtime story to {pos} {rel} {B}."],
        Kind::Spouse => &[
            "{A} and {pos} {rel} {B} celebrated their anniversary at a quiet restaurant.",
            "{A} surprised {pos} {rel} {B} with flowers.",
        ],
        Kind::Sibling => &["{A} and {pos} {rel} {B} grew up sharing a room.", "{A} lent {pos} {rel} {B} a bicycle."],
        Kind::Grandparent => {
            &["{A} visited {pos} {rel} {B} over the holidays.", "{A}'s {rel} {B} taught {obj} to play chess."]
        }
        Kind::Grandchild => {
            &["{A} knitted a scarf for {pos} {rel} {B}.", "{A} took {pos} {rel} {B} fishing at the lake."]
        }
        Kind::ParentSibling => {
            &["{A} spent the summer on the farm of {pos} {rel} {B}.", "{A}'s {rel} {B} came to {pos} birthday party."]
        }
        _ => &[],
    }
}

/// Names handed out to the chain's people, distinct within a story.
const MALE_NAMES: [&str; 24] = [
    "Aaron", "Bruno", "Caleb", "Dmitri", "Elias", "Felix", "Gideon", "Hugo", "Ivan", "Jonas", "Kofi", "Lorenzo",
    "Mateo", "Nikhil", "Oscar", "Pavel", "Quentin", "Rafael", "Silas", "Tobias", "Umar", "Viktor", "Wendell", "Yusuf",
];
const FEMALE_NAMES: [&str; 24] = [
    "Adela", "Beatrix", "Clara", "Dalia", "Esme", "Freya", "Greta", "Hana", "Ingrid", "Jasmin", "Kalina", "Leona",
    "Maren", "Nadia", "Odette", "Priya", "Rosalind", "Sabine", "Thea", "Ursula", "Vera", "Wilma", "Yara", "Zofia",
];

/// The sentence of edge `b is a's relation`.
fn sentence(a: &str, a_gender: Gender, relation: Relation, b: &str, rng: &mut impl Rng) -> String {
    let specific = specific(relation.kind());
    let pick = rng.gen_range(0..GENERIC.len() + specific.len());
    let template = GENERIC.get(pick).copied().unwrap_or_else(|| specific[pick - GENERIC.len()]);
    let (pos, obj) = match a_gender {
        Gender::Male => ("his", "him"),
        Gender::Female => ("her", "her"),
    };
    template
        .replace("{A}", &format!("[{a}]"))
        .replace("{B}", &format!("[{b}]"))
        .replace("{rel}", relation.name())
        .replace("{pos}", pos)
        .replace("{obj}", obj)
}

/// A story from one chain: names, sentences, query.
fn tell(tree: &FamilyTree, chain: &Chain, config: &GeneratorConfig, id: String, rng: &mut impl Rng) -> Story {
    let mut male = MALE_NAMES.to_vec();
    let mut female = FEMALE_NAMES.to_vec();
    male.shuffle(rng);
    female.shuffle(rng);
    let names: Vec<&str> = chain
        .people
        .iter()
        .map(|&p| match tree.people[p].gender {
            Gender::Male => male.pop().expect("a chain names at most 24 men"),
            Gender::Female => female.pop().expect("a chain names at most 24 women"),
        })
        .collect();
    let mut sentences: Vec<String> = (0..chain.edges.len())
        .map(|i| sentence(names[i], tree.people[chain.people[i]].gender, chain.edges[i], names[i + 1], rng))
        .collect();
    if config.shuffle {
        sentences.shuffle(rng);
    }
    let query = [names[0], names[chain.edges.len()]];
    Story::new(id, sentences.join(" "), query, chain.target, chain.edges.len())
        .expect("generated text is well formed and names both queried people")
}

/// `n` stories drawn from `seed` (see the module docs). Fails only if some k of `config.ks` finds no chain in
/// many trees (k too long for the trees, or an empty `ks`).
pub fn generate(n: usize, config: &GeneratorConfig, seed: u64) -> Result<Vec<Story>, String> {
    if config.ks.is_empty() || config.ks.contains(&0) || config.ks.iter().any(|&k| k >= MALE_NAMES.len()) {
        return Err(format!("generator: every k must be in 1..{}, got {:?}", MALE_NAMES.len(), config.ks));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut stories = Vec::with_capacity(n);
    for index in 0..n {
        let k = config.ks[rng.gen_range(0..config.ks.len())];
        let found = (0..TREES).find_map(|_| {
            let tree = FamilyTree::random(config, &mut rng);
            (0..WALKS_PER_TREE).find_map(|_| sample_chain(&tree, k, &mut rng)).map(|chain| (tree, chain))
        });
        let (tree, chain) = found.ok_or_else(|| {
            format!("generator: no chain of k = {k} in {TREES} trees of {} generations", config.generations)
        })?;
        stories.push(tell(&tree, &chain, config, format!("gen-{seed}-{index}"), &mut rng));
    }
    Ok(stories)
}

#[cfg(test)]
mod tests;
