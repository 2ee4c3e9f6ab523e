//! The CLUTRR data layer on the released archives (read in place from `../shared/data/clutrr`, never copied)
//! and on broken inputs built here, plus the generated stories through the same batching.

use experiments::clutrr::text::placeholder;
use experiments::clutrr::{
    batch, generate, load_released, GeneratorConfig, Relation, RelationVocab, Released, Vocabulary,
    DEFAULT_ENTITY_SLOTS, SRN_SET_SIZE,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The released archives' folder, `None` (with a printed note) only when it is absent.
fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/clutrr");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("SKIPPED: no released CLUTRR data at {}", dir.display());
        None
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("srn-clutrr-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every story's query placeholders name the queried people, and occur in the story's tokens.
fn check_placeholders(data: &Released) {
    for story in data.train.iter().chain(data.tests.iter().flat_map(|t| &t.stories)) {
        for &q in &story.query {
            let name = &story.entities[q];
            assert!(story.text.contains(&format!("[{name}]")), "{}: {name} not in the text", story.id);
            assert!(story.sentences.iter().flatten().any(|w| *w == placeholder(q)), "{}", story.id);
        }
        assert_ne!(story.query[0], story.query[1]);
        // No bracket or raw name survives tokenisation.
        assert!(story.sentences.iter().flatten().all(|w| !w.contains('[') && !w.contains(']')), "{}", story.id);
    }
}

#[test]
fn released_k234_archive_parses_with_18_targets() {
    let Some(dir) = data_dir() else { return };
    let data = load_released(&dir.join("data_db9b8f04.zip")).unwrap();
    assert!(data.train_file.ends_with("data_db9b8f04.zip:1.2,1.3,1.4_train.csv"));
    assert_eq!(data.train.len(), 15_083);
    let mut by_k = BTreeMap::new();
    for s in &data.train {
        *by_k.entry(s.k).or_insert(0) += 1;
    }
    assert_eq!(by_k, BTreeMap::from([(2, 5063), (3, 4996), (4, 5024)]));
    let relations = RelationVocab::from_stories(&data.train);
    assert_eq!(relations.len(), 18);
    assert!(relations.class(Relation::Husband).is_none() && relations.class(Relation::Wife).is_none());
    assert_eq!(relations.relation(0), Some(Relation::Father));
    assert_eq!(relations.relation(17), Some(Relation::DaughterInLaw));
    // The first row, as the CSV holds it.
    let first = &data.train[0];
    assert_eq!(first.entities, ["Ashley", "Lillian", "Nicholas"]);
    assert_eq!((first.query, first.target, first.k), ([0, 2], Relation::Son, 2));
    assert_eq!(first.sentences[1][..4], ["ent_2", "'s", "sister", "ent_1"]);

    // Test files k = 2..10, each with its k, every target a training class.
    assert_eq!(data.tests.iter().map(|t| t.k).collect::<Vec<_>>(), (2..=10).collect::<Vec<_>>());
    let sizes: Vec<usize> = data.tests.iter().map(|t| t.stories.len()).collect();
    assert_eq!(sizes, [38, 107, 77, 185, 105, 155, 135, 124, 122]);
    check_placeholders(&data);

    // Everything batches at the SRN's set size with the training vocabulary.
    let vocab = Vocabulary::build(&data.train, DEFAULT_ENTITY_SLOTS);
    assert!(vocab.len() > 2_000, "{}", vocab.len());
    for (i, chunk) in data.train.chunks(1000).enumerate() {
        let refs: Vec<_> = chunk.iter().collect();
        let x = batch(&refs, &vocab, &relations, SRN_SET_SIZE).unwrap();
        assert_eq!(x.tokens.shape()[..2], [refs.len(), SRN_SET_SIZE]);
        // Training words are all known.
        assert!(x.tokens.iter().all(|&t| t != experiments::clutrr::UNK), "chunk {i}");
    }
    for split in &data.tests {
        let refs: Vec<_> = split.stories.iter().collect();
        let x = batch(&refs, &vocab, &relations, SRN_SET_SIZE).unwrap();
        assert!(x.ks.iter().all(|&k| k == split.k));
        assert!(x.sentence_counts.iter().all(|&n| n <= 13), "{}", split.file);
    }
}

#[test]
fn released_k23_archive_parses() {
    let Some(dir) = data_dir() else { return };
    let data = load_released(&dir.join("data_089907f8.zip")).unwrap();
    assert_eq!(data.train.len(), 10_094);
    assert!(data.train.iter().all(|s| s.k == 2 || s.k == 3));
    assert_eq!(RelationVocab::from_stories(&data.train).len(), 18);
    assert_eq!(data.tests.len(), 9);
    check_placeholders(&data);
}

#[test]
fn broken_inputs_are_reported_with_file_and_line() {
    let dir = scratch("broken");
    let header = ",id,story,query,text_query,target,text_target,clean_story,proof_state,f_comb,task_name,\
                  story_edges,edge_types,query_edge,genders,syn_story,node_mapping,task_split\n";
    let good = "0,a,\"[A] met his son [B].\",\"('A', 'B')\",,son,,,,,task_1.2,,,,,,,train\n";
    std::fs::write(dir.join("1.2_train.csv"), format!("{header}{good}{good}")).unwrap();
    // Line 3 is fine; line 4 has one field too few; the truncated line 5 is never reached.
    let bad = format!("{header}{good}{good}0,a,\"[A] met [B].\",\"('A', 'B')\",son,,,,,task_1.2,,,,,,,train\n0,a,\"[A");
    std::fs::write(dir.join("1.2_test.csv"), bad).unwrap();
    let e = load_released(&dir).unwrap_err();
    assert!(e.file.ends_with("1.2_test.csv"), "{e}");
    assert_eq!((e.line, e.record), (Some(4), Some(3)), "{e}");
    assert!(e.to_string().contains("1.2_test.csv, line 4 (row 3): the row has 17 fields, the header 18"), "{e}");

    // A query naming someone absent from the story.
    let absent = format!("{header}{good}0,b,\"[A] met his son [B].\",\"('A', 'Zed')\",,son,,,,,task_1.2,,,,,,,train\n");
    std::fs::write(dir.join("1.2_test.csv"), absent).unwrap();
    let e = load_released(&dir).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("query")), "{e}");
    assert!(e.message.contains("\"Zed\""), "{e}");

    // A zip cut before its central directory (a bare local-file header) is reported, not a panic.
    let zip = dir.join("cut.zip");
    std::fs::write(&zip, b"PK\x03\x04\x14\x00\x00\x00\x08\x00").unwrap();
    let e = load_released(&zip).unwrap_err();
    assert!(e.file.ends_with("cut.zip") && e.message.contains("zip archive"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn generated_stories_share_the_pipeline() {
    let config = GeneratorConfig::default();
    let train = generate(200, &config, 3).unwrap();
    let test = generate(50, &GeneratorConfig { ks: vec![5, 6], ..config }, 4).unwrap();
    let vocab = Vocabulary::build(&train, DEFAULT_ENTITY_SLOTS);
    let relations = RelationVocab::from_stories(&train);
    let refs: Vec<_> = train.iter().take(16).collect();
    let x = batch(&refs, &vocab, &relations, SRN_SET_SIZE).unwrap();
    assert_eq!(x.tokens.shape()[..2], [16, SRN_SET_SIZE]);
    for (i, s) in refs.iter().enumerate() {
        assert_eq!(x.sentence_counts[i], s.k);
        assert_eq!(relations.relation(x.targets[i]), Some(s.target));
    }
    // Longer test chains use the same templates, so their words are known.
    let known = test.iter().flat_map(|s| s.sentences.iter().flatten()).filter(|w| vocab.id(w) > 1).count();
    let all = test.iter().map(|s| s.sentences.iter().map(Vec::len).sum::<usize>()).sum::<usize>();
    assert_eq!(known, all);
}
