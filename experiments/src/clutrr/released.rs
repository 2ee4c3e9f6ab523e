//! The released CLUTRR data: `data_db9b8f04.zip` (train `1.2,1.3,1.4_train.csv`, 15,083 stories of k = 2, 3, 4;
//! tests `1.2_test.csv` ... `1.10_test.csv`) and `data_089907f8.zip` (train `1.2,1.3_train.csv`, the same tests
//! drawn anew). The archives are CC BY-NC 4.0: read them where they lie, never copy them into the project.
//!
//! Each CSV has a header, an unnamed index column, then `id, story, query, text_query, target, text_target,
//! clean_story, proof_state, f_comb, task_name, story_edges, edge_types, query_edge, genders, syn_story,
//! node_mapping, task_split`. We read `id`, `story` (names in brackets), `query` (a Python tuple of two names,
//! `('Ashley', 'Nicholas')`), `target` (a relation word) and `task_name` (`task_1.k`, giving k; when empty, k
//! comes from a file name `1.k_test.csv`). The other columns describe CLUTRR's generation and are not needed.
//!
//! Parsing uses the `csv` and `zip` crates; every error is a [`DataError`] naming the file, and the line, row
//! and field when one is at fault. A truncated archive or CSV is an error, never a panic.

use super::{DataError, Relation, Story};
use std::fs;
use std::io::Read;
use std::path::Path;

/// One test file: its k and stories.
#[derive(Clone, Debug)]
pub struct TestSplit {
    pub k: usize,
    pub file: String,
    pub stories: Vec<Story>,
}

/// A released archive: the training stories and the test files, by increasing k.
#[derive(Clone, Debug)]
pub struct Released {
    pub train_file: String,
    pub train: Vec<Story>,
    pub tests: Vec<TestSplit>,
}

impl Released {
    /// The test split of `k`, if the archive has one.
    pub fn test(&self, k: usize) -> Option<&TestSplit> {
        self.tests.iter().find(|t| t.k == k)
    }
}

/// Loads a released archive from the zip itself or from a folder holding its extracted CSV files: the one
/// file named `*_train.csv` and every `*_test.csv` (members in sub-folders of the zip count by their base name).
pub fn load_released(path: &Path) -> Result<Released, DataError> {
    let shown = path.display().to_string();
    let files = if path.is_dir() { folder_files(path)? } else { zip_files(path)? };
    let mut train: Option<(String, Vec<Story>)> = None;
    let mut tests = Vec::new();
    for (name, base, bytes) in files {
        if base.ends_with("_train.csv") {
            if let Some((first, _)) = &train {
                return Err(DataError::file(&shown, format!("two training files, {first} and {name}")));
            }
            let stories = read_csv(bytes.as_slice(), &name)?;
            train = Some((name, stories));
        } else if base.ends_with("_test.csv") {
            let stories = read_csv(bytes.as_slice(), &name)?;
            let k = match k_from_file_name(&base) {
                Some(k) => k,
                None => stories.first().map(|s| s.k).ok_or_else(|| DataError::file(&name, "no rows and no k"))?,
            };
            if let Some(s) = stories.iter().find(|s| s.k != k) {
                return Err(DataError::file(&name, format!("story {} has k = {}, the file k = {k}", s.id, s.k)));
            }
            tests.push(TestSplit { k, file: name, stories });
        }
    }
    let (train_file, train) = train.ok_or_else(|| DataError::file(&shown, "no file named *_train.csv"))?;
    tests.sort_by_key(|t| t.k);
    Ok(Released { train_file, train, tests })
}

/// The CSV files of a folder: (shown name, base name, contents).
fn folder_files(dir: &Path) -> Result<Vec<(String, String, Vec<u8>)>, DataError> {
    let shown = dir.display().to_string();
    let entries = fs::read_dir(dir).map_err(|e| DataError::file(&shown, format!("cannot list the folder: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| DataError::file(&shown, format!("cannot list the folder: {e}")))?.path();
        let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if base.ends_with(".csv") && path.is_file() {
            let name = path.display().to_string();
            let bytes = fs::read(&path).map_err(|e| DataError::file(&name, format!("cannot read: {e}")))?;
            files.push((name, base, bytes));
        }
    }
    files.sort();
    Ok(files)
}

/// The CSV members of a zip archive: (`archive:member`, base name, contents).
fn zip_files(path: &Path) -> Result<Vec<(String, String, Vec<u8>)>, DataError> {
    let shown = path.display().to_string();
    let file = fs::File::open(path).map_err(|e| DataError::file(&shown, format!("cannot open: {e}")))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| DataError::file(&shown, format!("not a readable zip archive (truncated?): {e}")))?;
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut member =
            archive.by_index(i).map_err(|e| DataError::file(&shown, format!("cannot read member {i}: {e}")))?;
        let member_name = member.name().to_string();
        let base = member_name.rsplit('/').next().unwrap_or_default().to_string();
        if member.is_dir() || !base.ends_with(".csv") {
            continue;
        }
        let name = format!("{shown}:{member_name}");
        let mut bytes = Vec::with_capacity(member.size() as usize);
        // Decompression and the CRC check fail here on a damaged member.
        member.read_to_end(&mut bytes).map_err(|e| DataError::file(&name, format!("cannot decompress: {e}")))?;
        files.push((name, base, bytes));
    }
    Ok(files)
}

/// Reads one CSV file from disk (see [`read_csv`]).
pub fn load_csv(path: &Path) -> Result<Vec<Story>, DataError> {
    let name = path.display().to_string();
    let file = fs::File::open(path).map_err(|e| DataError::file(&name, format!("cannot open: {e}")))?;
    read_csv(std::io::BufReader::new(file), &name)
}

/// The columns read from a released CSV.
const COLUMNS: [&str; 5] = ["id", "story", "query", "target", "task_name"];

/// Parses a released CSV (`file` names it in errors): one [`Story`] per row. Every row must have as many
/// fields as the header; the columns of [`COLUMNS`] must exist.
pub fn read_csv<R: Read>(reader: R, file: &str) -> Result<Vec<Story>, DataError> {
    let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
    let headers = csv.headers().map_err(|e| csv_error(file, e))?.clone();
    let mut index = [0; COLUMNS.len()];
    for (slot, column) in index.iter_mut().zip(COLUMNS) {
        *slot = headers.iter().position(|h| h == column).ok_or_else(|| DataError {
            line: Some(1),
            field: Some(column.to_string()),
            ..DataError::file(file, "the header has no such column")
        })?;
    }
    let [id, story, query, target, task] = index;
    let file_k = k_from_file_name(file.rsplit(['/', ':']).next().unwrap_or(file));
    let mut stories = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut row = 0u64;
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(file, e)),
        }
        row += 1;
        let line = record.position().map(|p| p.line());
        let at = |field: &str, message: String| DataError {
            file: file.to_string(),
            line,
            record: Some(row),
            field: Some(field.to_string()),
            message,
        };
        let names = parse_query(&record[query]).map_err(|m| at("query", m))?;
        let relation = Relation::parse(record[target].trim())
            .ok_or_else(|| at("target", format!("{:?} is not a known kinship relation", &record[target])))?;
        let k = match record[task].trim() {
            "" => file_k.ok_or_else(|| at("task_name", "empty, and the file name gives no k".into()))?,
            name => k_from_task_name(name)
                .ok_or_else(|| at("task_name", format!("{name:?} is not of the form task_1.<k>")))?,
        };
        let parsed = Story::new(record[id].to_string(), record[story].to_string(), [&names[0], &names[1]], relation, k)
            .map_err(|e| at(e.field, e.message))?;
        stories.push(parsed);
    }
    Ok(stories)
}

/// A `csv` error as a [`DataError`], with the line and row it reports.
fn csv_error(file: &str, e: csv::Error) -> DataError {
    let position = e.position().cloned();
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("the row has {len} fields, the header {expected_len} (truncated or malformed row)")
        }
        _ => e.to_string(),
    };
    DataError {
        line: position.as_ref().map(|p| p.line()),
        // The csv crate counts the header as record 0, as this module counts rows from 1.
        record: position.as_ref().map(|p| p.record()),
        ..DataError::file(file, message)
    }
}

/// k of `task_1.<k>`.
fn k_from_task_name(name: &str) -> Option<usize> {
    name.strip_prefix("task_1.")?.parse().ok().filter(|&k| k > 0)
}

/// k of a file named `1.<k>_test.csv` or `1.<k>_train.csv`; `None` for `1.2,1.3_train.csv`.
fn k_from_file_name(base: &str) -> Option<usize> {
    let stem = base.strip_suffix("_test.csv").or_else(|| base.strip_suffix("_train.csv"))?;
    stem.strip_prefix("1.")?.parse().ok().filter(|&k| k > 0)
}

/// The two names of a Python tuple of string literals, `('Ashley', 'Nicholas')` (either quote; `\` escapes).
fn parse_query(text: &str) -> Result<[String; 2], String> {
    let bad = |why: &str| format!("{why}: expected a Python tuple of two quoted names like ('A', 'B'), got {text:?}");
    let inner = text.trim().strip_prefix('(').and_then(|t| t.strip_suffix(')')).ok_or_else(|| bad("no parentheses"))?;
    let mut names = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(quote) = chars.next() else { break };
        if quote != '\'' && quote != '"' {
            return Err(bad("an item is not a quoted string"));
        }
        let mut name = String::new();
        loop {
            match chars.next() {
                None => return Err(bad("unterminated string")),
                Some('\\') => name.push(chars.next().ok_or_else(|| bad("unterminated string"))?),
                Some(c) if c == quote => break,
                Some(c) => name.push(c),
            }
        }
        names.push(name);
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(_) => return Err(bad("items are not separated by commas")),
        }
    }
    match <[String; 2]>::try_from(names) {
        Ok(pair) => Ok(pair),
        Err(names) => Err(bad(&format!("{} names", names.len()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = ",id,story,query,text_query,target,text_target,clean_story,proof_state,f_comb,task_name,\
                          story_edges,edge_types,query_edge,genders,syn_story,node_mapping,task_split\n";

    fn row(index: usize, story: &str, query: &str, target: &str, task: &str) -> String {
        format!("{index},id{index},\"{story}\",\"{query}\",,{target},,,,,{task},,,,,,,train\n")
    }

    #[test]
    fn rows_parse_with_placeholders_and_k() {
        let csv = format!(
            "{HEADER}{}{}",
            row(
                0,
                "[Ashley]'s daughter, [Lillian], sang. [Nicholas]'s sister [Lillian] ran.",
                "('Ashley', 'Nicholas')",
                "son",
                "task_1.2"
            ),
            row(1, "[Bo] hugged his wife [Al]. [Al] waved.", "(\"\"Bo\"\", 'Al')", "wife", "")
        );
        let stories = read_csv(csv.as_bytes(), "1.7_test.csv").unwrap();
        assert_eq!(stories.len(), 2);
        assert_eq!(stories[0].query, [0, 2]);
        assert_eq!(stories[0].entities[stories[0].query[1]], "Nicholas");
        assert_eq!((stories[0].k, stories[0].target), (2, Relation::Son));
        // An empty task_name falls back to the file name's k.
        assert_eq!((stories[1].k, stories[1].target, stories[1].query), (7, Relation::Wife, [0, 1]));
    }

    #[test]
    fn queries_parse_as_python_tuples() {
        assert_eq!(parse_query("('Ashley', 'Lillian')").unwrap(), ["Ashley".to_string(), "Lillian".to_string()]);
        assert_eq!(parse_query(" (\"O'Neil\",'B\\'s',) ").unwrap(), ["O'Neil".to_string(), "B's".to_string()]);
        assert!(parse_query("('Ashley',)").unwrap_err().contains("1 names"));
        assert!(parse_query("('A', 'B', 'C')").unwrap_err().contains("3 names"));
        assert!(parse_query("'A', 'B'").unwrap_err().contains("no parentheses"));
        assert!(parse_query("(A, B)").unwrap_err().contains("not a quoted string"));
        assert!(parse_query("('A' 'B')").unwrap_err().contains("commas"));
        assert!(parse_query("('A', 'B)").unwrap_err().contains("unterminated"));
    }

    #[test]
    fn bad_rows_name_file_line_and_field() {
        let good = row(0, "[A] met his son [B].", "('A', 'B')", "son", "task_1.2");
        let cases = [
            (row(1, "[A] met his son [B].", "('A', 'C')", "son", "task_1.2"), "query", "\"C\" is not"),
            (row(1, "[A] met his son [B].", "('A',)", "son", "task_1.2"), "query", "1 names"),
            (row(1, "[A] met his son [B].", "('A', 'B')", "cousin", "task_1.2"), "target", "not a known"),
            (row(1, "[A] met his son [B].", "('A', 'B')", "son", "task_2"), "task_name", "task_1.<k>"),
            (row(1, "[A met his son [B].", "('A', 'B')", "son", "task_1.2"), "story", "not closed"),
        ];
        for (bad, field, cause) in cases {
            let e = read_csv(format!("{HEADER}{good}{bad}").as_bytes(), "x.csv").unwrap_err();
            assert_eq!((e.line, e.record, e.field.as_deref()), (Some(3), Some(2), Some(field)), "{e}");
            assert!(e.message.contains(cause), "{e}");
            assert!(e.to_string().starts_with("x.csv, line 3 (row 2), field `"), "{e}");
        }
        let e = read_csv("id,story,query\n1,a,b\n".as_bytes(), "y.csv").unwrap_err();
        assert_eq!((e.field.as_deref(), e.line), (Some("target"), Some(1)), "{e}");
    }

    #[test]
    fn file_names_and_task_names_give_k() {
        assert_eq!(k_from_file_name("1.10_test.csv"), Some(10));
        assert_eq!(k_from_file_name("1.2,1.3,1.4_train.csv"), None);
        assert_eq!(k_from_task_name("task_1.4"), Some(4));
        assert_eq!(k_from_task_name("task_1.x"), None);
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("srn-clutrr-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn small_files() -> [(&'static str, String); 3] {
        let train = format!(
            "{HEADER}{}{}",
            row(0, "[A] met his son [B].", "('A', 'B')", "son", "task_1.2"),
            row(1, "[C] met her father [D].", "('C', 'D')", "father", "task_1.3")
        );
        let test = format!("{HEADER}{}", row(0, "[E] is [F]'s aunt.", "('F', 'E')", "aunt", "task_1.3"));
        [("data/1.2,1.3_train.csv", train), ("data/1.3_test.csv", test), ("data/notes.txt", "ignored".into())]
    }

    /// A zip of the small files, compressed like the released archives.
    fn small_zip() -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in small_files() {
            zip.start_file(name, options).unwrap();
            std::io::Write::write_all(&mut zip, text.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn zip_and_folder_load_alike() {
        let dir = scratch("zip-and-folder");
        let zip_path = dir.join("small.zip");
        fs::write(&zip_path, small_zip()).unwrap();
        let from_zip = load_released(&zip_path).unwrap();
        assert!(from_zip.train_file.ends_with("small.zip:data/1.2,1.3_train.csv"), "{}", from_zip.train_file);
        assert_eq!(from_zip.train.len(), 2);
        assert_eq!(from_zip.tests.len(), 1);
        assert_eq!((from_zip.tests[0].k, from_zip.test(3).unwrap().stories[0].target), (3, Relation::Aunt));
        let folder = dir.join("extracted");
        fs::create_dir_all(&folder).unwrap();
        for (name, text) in small_files() {
            fs::write(folder.join(name.trim_start_matches("data/")), text).unwrap();
        }
        let from_folder = load_released(&folder).unwrap();
        assert_eq!(from_folder.train, from_zip.train);
        assert_eq!(from_folder.tests[0].stories, from_zip.tests[0].stories);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn truncated_zips_are_errors_naming_the_file() {
        let dir = scratch("truncated");
        let bytes = small_zip();
        // Cut everywhere from the first byte to one short of the end: the central directory sits at the end, so
        // every cut loses it (or part of it) and must be reported, never panic.
        for cut in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
            let path = dir.join(format!("cut{cut}.zip"));
            fs::write(&path, &bytes[..cut]).unwrap();
            let e = load_released(&path).unwrap_err();
            assert!(e.file.ends_with(&format!("cut{cut}.zip")), "{e}");
            assert!(e.message.contains("zip"), "{e}");
        }
        // A member whose compressed bytes are damaged (the central directory intact) fails its decompression or
        // CRC check and names the member.
        let mut damaged = bytes.clone();
        let start = 30 + "data/1.2,1.3_train.csv".len();
        for b in &mut damaged[start + 10..start + 40] {
            *b ^= 0x5a;
        }
        let path = dir.join("damaged.zip");
        fs::write(&path, &damaged).unwrap();
        let e = load_released(&path).unwrap_err();
        assert!(e.file.ends_with("damaged.zip:data/1.2,1.3_train.csv"), "{e}");
        assert!(load_released(&dir.join("absent.zip")).unwrap_err().message.contains("cannot open"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_truncated_csv_is_an_error_naming_its_line() {
        let [(_, train), ..] = small_files();
        // Cut inside the second row's quoted story: the row ends early with too few fields.
        let cut = &train[..train.rfind("[D]").unwrap()];
        let e = read_csv(cut.as_bytes(), "1.2,1.3_train.csv").unwrap_err();
        assert_eq!((e.line, e.record), (Some(3), Some(2)), "{e}");
        assert!(e.message.contains("fields"), "{e}");
        assert!(e.to_string().starts_with("1.2,1.3_train.csv, line 3 (row 2): the row has"), "{e}");
    }
}
