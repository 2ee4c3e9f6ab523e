//! Story text to tokens, as CLUTRR's baselines prepare it, and the word vocabulary.
//!
//! **Entities.** Every bracketed name `[Name]` becomes a placeholder token: the i-th distinct name in order of
//! first appearance (0-based) is `ent_i`, so `[Ashley]'s daughter, [Lillian], ... [Ashley]` reads
//! `ent_0 's daughter , ent_1 , ... ent_0`. Names are compared exactly after trimming spaces. The query's two
//! names map to the same indices. Placeholders make the model reason about positions in the story rather than
//! memorise names, and let one vocabulary entry per slot serve every story.
//!
//! **Sentences.** A sentence ends at `.`, `!` or `?` followed by whitespace or the end of the text (so `3.5`
//! does not split); the terminator itself is dropped, since every sentence has one. Sentences without tokens
//! (the released data has `... clothes. . One day ...`) are dropped. Text after the last terminator is a
//! sentence too (some released stories lack the final full stop).
//!
//! **Words.** Lower-cased; a token is a placeholder, a maximal run of alphanumeric characters, an apostrophe
//! glued to the alphanumeric run it starts (`'s`, `'t`), or any other single non-space character (`,`, `-`,
//! `:`, ...). The tokeniser never emits `_` inside a word, so a placeholder cannot collide with a real word.

use super::Story;
use std::collections::HashMap;

/// The placeholder token of entity `i`.
pub fn placeholder(i: usize) -> String {
    format!("ent_{i}")
}

/// A story's text as tokens: sentences of words, and the entity names in placeholder order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokenised {
    pub sentences: Vec<Vec<String>>,
    /// `entities[i]` is the name behind `ent_i`.
    pub entities: Vec<String>,
}

/// Tokenises a story's text (see the module docs). Errors say what is wrong and where (a character offset):
/// an unclosed `[`, a stray `]`, an empty name, or a text without any token.
pub fn tokenise(text: &str) -> Result<Tokenised, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut entities: Vec<String> = Vec::new();
    let mut sentences: Vec<Vec<String>> = Vec::new();
    let mut sentence: Vec<String> = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, sentence: &mut Vec<String>| {
        if !word.is_empty() {
            sentence.push(std::mem::take(word));
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '[' => {
                flush(&mut word, &mut sentence);
                let len = chars[i + 1..]
                    .iter()
                    .position(|&d| d == ']' || d == '[')
                    .filter(|&n| chars[i + 1 + n] == ']')
                    .ok_or_else(|| format!("'[' at character {i} is not closed by ']'"))?;
                let name: String = chars[i + 1..i + 1 + len].iter().collect::<String>().trim().to_string();
                if name.is_empty() {
                    return Err(format!("empty name '[]' at character {i}"));
                }
                let index = match entities.iter().position(|e| *e == name) {
                    Some(index) => index,
                    None => {
                        entities.push(name);
                        entities.len() - 1
                    }
                };
                sentence.push(placeholder(index));
                i += len + 2;
                continue;
            }
            ']' => return Err(format!("']' at character {i} closes no '['")),
            '.' | '!' | '?' if chars.get(i + 1).is_none_or(|d| d.is_whitespace()) => {
                flush(&mut word, &mut sentence);
                if !sentence.is_empty() {
                    sentences.push(std::mem::take(&mut sentence));
                }
            }
            c if c.is_whitespace() => flush(&mut word, &mut sentence),
            c if c.is_alphanumeric() => word.extend(c.to_lowercase()),
            '\'' if chars.get(i + 1).is_some_and(|d| d.is_alphanumeric()) => {
                flush(&mut word, &mut sentence);
                word.push('\'');
            }
            c => {
                flush(&mut word, &mut sentence);
                sentence.push(c.to_lowercase().collect());
            }
        }
        i += 1;
    }
    flush(&mut word, &mut sentence);
    if !sentence.is_empty() {
        sentences.push(sentence);
    }
    if sentences.is_empty() {
        return Err("the text has no tokens".into());
    }
    Ok(Tokenised { sentences, entities })
}

/// Id of the padding token.
pub const PAD: usize = 0;
/// Id of words not in the vocabulary.
pub const UNK: usize = 1;
/// Placeholder slots reserved by default: the released test stories have at most 11 entities (k = 10).
pub const DEFAULT_ENTITY_SLOTS: usize = 20;

/// Word ids: `<pad>` = 0, `<unk>` = 1, then the placeholders `ent_0 .. ent_{slots-1}` (always present, so test
/// stories with more entities than any training story still get their own ids), then the other words of the
/// training stories by decreasing count, ties in byte order (so the ids depend on the data alone).
#[derive(Clone, Debug)]
pub struct Vocabulary {
    words: Vec<String>,
    ids: HashMap<String, usize>,
    entity_slots: usize,
}

impl Vocabulary {
    /// The vocabulary of `stories` (pass the training split only) with `entity_slots` placeholders.
    pub fn build<'a>(stories: impl IntoIterator<Item = &'a Story>, entity_slots: usize) -> Vocabulary {
        let mut words = vec!["<pad>".to_string(), "<unk>".to_string()];
        words.extend((0..entity_slots).map(placeholder));
        let reserved: HashMap<String, usize> = words.iter().cloned().zip(0..).collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for story in stories {
            for word in story.sentences.iter().flatten() {
                if !reserved.contains_key(word) && !is_placeholder(word) {
                    *counts.entry(word.as_str()).or_default() += 1;
                }
            }
        }
        let mut counted: Vec<(&str, usize)> = counts.into_iter().collect();
        counted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        words.extend(counted.into_iter().map(|(w, _)| w.to_string()));
        let ids = words.iter().cloned().zip(0..).collect();
        Vocabulary { words, ids, entity_slots }
    }

    /// The id of `word`, [`UNK`] if unknown.
    pub fn id(&self, word: &str) -> usize {
        self.ids.get(word).copied().unwrap_or(UNK)
    }

    /// The id of `ent_i`, `None` beyond the reserved slots.
    pub fn entity_id(&self, i: usize) -> Option<usize> {
        (i < self.entity_slots).then_some(2 + i)
    }

    pub fn entity_slots(&self) -> usize {
        self.entity_slots
    }

    /// The word of `id`.
    pub fn word(&self, id: usize) -> Option<&str> {
        self.words.get(id).map(String::as_str)
    }

    /// Number of ids, `<pad>` and `<unk>` included.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// Whether `word` is a placeholder `ent_<digits>`.
pub fn is_placeholder(word: &str) -> bool {
    word.strip_prefix("ent_").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn released_story_tokenises_with_placeholders() {
        let t = tokenise(
            "[Ashley]'s daughter, [Lillian], asked her mom to read her a story. \
             [Nicholas]'s sister [Lillian] asked him for some help planting her garden.",
        )
        .unwrap();
        assert_eq!(t.entities, words(&["Ashley", "Lillian", "Nicholas"]));
        assert_eq!(t.sentences.len(), 2);
        assert_eq!(
            t.sentences[0],
            words(&[
                "ent_0", "'s", "daughter", ",", "ent_1", ",", "asked", "her", "mom", "to", "read", "her", "a", "story"
            ])
        );
        assert_eq!(t.sentences[1][..5], words(&["ent_2", "'s", "sister", "ent_1", "asked"]));
    }

    #[test]
    fn sentence_rule_edge_cases() {
        // Empty sentence dropped, no final stop, `!` and `?` split, a decimal point does not.
        let t = tokenise("[A] is 3.5 feet tall. . Does [B] know?[C] waved!  [A] smiled").unwrap();
        assert_eq!(t.sentences[0], words(&["ent_0", "is", "3", ".", "5", "feet", "tall"]));
        // `?` directly followed by `[` does not end a sentence: only whitespace or the end does.
        assert_eq!(t.sentences[1], words(&["does", "ent_1", "know", "?", "ent_2", "waved"]));
        assert_eq!(t.sentences[2], words(&["ent_0", "smiled"]));
        assert_eq!(t.sentences.len(), 3);
        assert_eq!(tokenise("does n't DON'T").unwrap().sentences[0], words(&["does", "n", "'t", "don", "'t"]));
    }

    #[test]
    fn malformed_text_is_an_error_not_a_panic() {
        assert!(tokenise("[Ashley took").unwrap_err().contains("not closed"));
        assert!(tokenise("[Ash[ley] took").unwrap_err().contains("not closed"));
        assert!(tokenise("Ashley] took").unwrap_err().contains("closes no"));
        assert!(tokenise("[ ] took").unwrap_err().contains("empty name"));
        assert!(tokenise(" . . ").unwrap_err().contains("no tokens"));
        assert!(!is_placeholder("ent_"));
        assert!(is_placeholder("ent_12"));
    }
}
