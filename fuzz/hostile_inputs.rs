//! Structure-aware hostile inputs for the property tests that hold every
//! parser of untrusted text to "an answer, never a panic".
//!
//! - [`mutated`]: a valid input (an example file, a body the API documents)
//!   with bytes inserted, deleted, replaced (the parser's own words, values
//!   at the edges) and pieces copied over others.
//! - [`mutated_document`]: edits of bytes mostly break a file's syntax, so
//!   this edits the document's tree instead (a value replaced by one of
//!   another type or at an edge, a key removed or added, an entry repeated)
//!   and writes it out again: valid syntax, hostile meaning, which is what
//!   the checks behind the syntax have to refuse.
//! - [`json_text`]: JSON of any shape, with the body's own keys and values,
//!   wrong types and numbers no integer or float holds.
//!
//! The coverage-guided fuzz targets beside this file mutate bytes themselves;
//! this is for `cargo test`, included by path from `control/tests` and
//! `testbed/tests` so both crates share one mutator.

use proptest::prelude::*;
use serde_json::Value;

/// One edit, at a position given as a fraction of the input's length so it
/// lands inside whatever the earlier edits left.
#[derive(Debug, Clone)]
pub enum Edit {
    Delete {
        at: f64,
        len: usize,
    },
    Insert {
        at: f64,
        bytes: Vec<u8>,
    },
    Replace {
        at: f64,
        bytes: Vec<u8>,
    },
    /// Copies `len` bytes from `from` over the bytes at `to` (a repeated key,
    /// a section pasted twice, a value moved to another field).
    Copy {
        from: f64,
        to: f64,
        len: usize,
    },
}

/// Values parsers get wrong: edges of integer types, floats that overflow or
/// are not numbers, empty and unbalanced quoting, control bytes, non-UTF-8.
const HOSTILE: &[&str] = &[
    "0",
    "-1",
    "-0",
    "65535",
    "65536",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "0x",
    "0.",
    ".",
    "",
    "\"",
    "\"\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "=",
    ",",
    ":",
    ";",
    "|",
    "/",
    "%",
    "->",
    "\n",
    "\t",
    " ",
    "\0",
    "\u{202e}",
    "\u{1F600}",
    "null",
    "true",
    "[]",
    "{}",
    "/0",
    "/33",
    "/129",
    "::",
    "0.0.0.0",
    "255.255.255.255",
    "::ffff:1.2.3.4",
];

fn position(at: f64, len: usize) -> usize {
    // `at` lies in 0..=1, so the product lies in 0..=len.
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    let i = (at * len as f64) as usize;
    i.min(len)
}

/// `input` with `edits` applied in order.
pub fn apply(input: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = input.to_vec();
    for edit in edits {
        match edit {
            Edit::Delete { at, len } => {
                let start = position(*at, out.len());
                let end = (start + len).min(out.len());
                out.drain(start..end);
            }
            Edit::Insert { at, bytes } => {
                let start = position(*at, out.len());
                out.splice(start..start, bytes.iter().copied());
            }
            Edit::Replace { at, bytes } => {
                let start = position(*at, out.len());
                let end = (start + bytes.len()).min(out.len());
                out.splice(start..end, bytes.iter().copied());
            }
            Edit::Copy { from, to, len } => {
                let start = position(*from, out.len());
                let piece = out[start..(start + len).min(out.len())].to_vec();
                let to = position(*to, out.len());
                let end = (to + piece.len()).min(out.len());
                out.splice(to..end, piece);
            }
        }
    }
    out
}

/// Bytes to insert: a word of the parser's own (`words`), a hostile value,
/// or a few random bytes.
fn bytes(words: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(words).prop_map(|w| w.as_bytes().to_vec()),
        3 => prop::sample::select(HOSTILE).prop_map(|w| w.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 1..8),
    ]
}

fn edit(words: &'static [&'static str]) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..=1.0f64, 1..16usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (0.0..=1.0f64, bytes(words)).prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        (0.0..=1.0f64, bytes(words)).prop_map(|(at, bytes)| Edit::Replace { at, bytes }),
        (0.0..=1.0f64, 0.0..=1.0f64, 1..64usize).prop_map(|(from, to, len)| Edit::Copy {
            from,
            to,
            len
        }),
    ]
}

/// One to eight edits, inserting `words` among others.
pub fn edits(words: &'static [&'static str]) -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(words), 1..8)
}

/// One of `valid` with one to eight edits, as bytes (the edits may break
/// UTF-8: a parser of `&str` gets the lossy text, one of `&[u8]` the bytes).
pub fn mutated(
    valid: &'static [&'static str],
    words: &'static [&'static str],
) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(valid), edits(words))
        .prop_map(|(input, edits)| apply(input.as_bytes(), &edits))
}

/// [`mutated`] as text.
pub fn mutated_text(
    valid: &'static [&'static str],
    words: &'static [&'static str],
) -> impl Strategy<Value = String> {
    mutated(valid, words).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Any text: arbitrary characters, or the parser's words and hostile values
/// joined by separators.
pub fn any_text(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(words),
        prop::sample::select(HOSTILE),
        prop::sample::select(&[" ", "  ", "\n", ",", ";", "=", ":", "/"][..]),
    ];
    prop_oneof![
        any::<String>(),
        prop::collection::vec(token, 0..24).prop_map(|tokens| tokens.concat()),
    ]
}

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "1.0",
    "1e3",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e309",
    "-1e309",
    "123456789012345678901234567890",
    "4.9e-324",
];

/// `s` as a JSON string.
fn quoted(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// JSON text of any shape up to three levels deep: objects keyed by `words`
/// (the body's fields) or any string, values of every type, strings among
/// `words` (the values the body takes) and numbers past every integer type.
pub fn json_text(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(&["null", "true", "false", "\"\"", "[]", "{}"][..])
            .prop_map(str::to_owned),
        prop::sample::select(NUMBERS).prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| Value::from(f).to_string()),
        prop::sample::select(words).prop_map(quoted),
        prop::sample::select(HOSTILE).prop_map(quoted),
        any::<String>().prop_map(|s| quoted(&s)),
    ];
    leaf.prop_recursive(3, 48, 8, move |inner| {
        let key = prop_oneof![
            4 => prop::sample::select(words).prop_map(quoted),
            1 => any::<String>().prop_map(|s| quoted(&s)),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((key, inner), 0..8).prop_map(|fields| {
                let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// A JSON object (what every body is) with `words` as its keys and values.
pub fn json_object(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(words).prop_map(quoted),
            json_text(words),
        ),
        0..8,
    )
    .prop_map(|fields| {
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", fields.join(","))
    })
}

/// One edit of a document's tree. A path picks a node: each number picks a
/// child of the node reached so far by remainder, until a leaf or the end.
#[derive(Debug, Clone)]
pub enum TreeEdit {
    Replace {
        path: Vec<usize>,
        value: Value,
    },
    Remove {
        path: Vec<usize>,
    },
    /// An array entry repeated, or an object's field copied under another key.
    Repeat {
        path: Vec<usize>,
    },
    Insert {
        path: Vec<usize>,
        key: String,
        value: Value,
    },
}

fn child_mut(node: &mut Value, pick: usize) -> Option<&mut Value> {
    match node {
        Value::Array(items) if !items.is_empty() => {
            let n = items.len();
            items.get_mut(pick % n)
        }
        Value::Object(fields) if !fields.is_empty() => {
            let n = fields.len();
            fields.values_mut().nth(pick % n)
        }
        _ => None,
    }
}

/// The node `path` leads to, and the pick left over for a child of it.
fn walk<'a>(mut node: &'a mut Value, path: &[usize]) -> (&'a mut Value, usize) {
    let Some((&last, steps)) = path.split_last() else {
        return (node, 0);
    };
    for &pick in steps {
        let has_child = matches!(&*node, Value::Array(a) if !a.is_empty())
            || matches!(&*node, Value::Object(o) if !o.is_empty());
        if !has_child {
            break;
        }
        node = child_mut(node, pick).expect("a container with children");
    }
    (node, last)
}

/// `root` with `edits` applied in order.
pub fn apply_tree(mut root: Value, edits: &[TreeEdit]) -> Value {
    for edit in edits {
        match edit {
            TreeEdit::Replace { path, value } => {
                let (parent, pick) = walk(&mut root, path);
                match child_mut(parent, pick) {
                    Some(child) => *child = value.clone(),
                    None => *parent = value.clone(),
                }
            }
            TreeEdit::Remove { path } => match walk(&mut root, path) {
                (Value::Array(items), pick) if !items.is_empty() => {
                    let n = items.len();
                    items.remove(pick % n);
                }
                (Value::Object(fields), pick) if !fields.is_empty() => {
                    let key = fields.keys().nth(pick % fields.len()).cloned();
                    if let Some(key) = key {
                        fields.remove(&key);
                    }
                }
                _ => {}
            },
            TreeEdit::Repeat { path } => match walk(&mut root, path) {
                (Value::Array(items), pick) if !items.is_empty() => {
                    let copy = items[pick % items.len()].clone();
                    items.push(copy);
                }
                (Value::Object(fields), pick) if !fields.is_empty() => {
                    let n = fields.len();
                    let (key, value) = fields.iter().nth(pick % n).expect("a field");
                    let (key, value) = (format!("{key}2"), value.clone());
                    fields.insert(key, value);
                }
                _ => {}
            },
            TreeEdit::Insert { path, key, value } => match walk(&mut root, path).0 {
                Value::Array(items) => items.push(value.clone()),
                Value::Object(fields) => {
                    fields.insert(key.clone(), value.clone());
                }
                _ => {}
            },
        }
    }
    root
}

/// A value at an edge: of another type than expected, out of every range,
/// empty, or one of the document's own words.
pub fn hostile_value(words: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(
            &[
                i64::MIN,
                -65536,
                -1,
                0,
                1,
                2,
                3,
                255,
                256,
                1009,
                65535,
                65536,
                4_294_967_295,
                4_294_967_296,
                i64::MAX,
            ][..]
        )
        .prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        prop::sample::select(&[-0.0, 0.5, 1.5, -1.5, 1e300, -1e300, f64::MIN_POSITIVE][..])
            .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(words).prop_map(Value::from),
        prop::sample::select(HOSTILE).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    let nested = leaf.clone().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(HOSTILE), inner), 0..3).prop_map(
                |fields| {
                    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }
            ),
        ]
    });
    // Mostly scalars: a container where a scalar belongs stops at the first
    // type check, a scalar at an edge goes on to the range checks.
    prop_oneof![5 => leaf, 1 => nested]
}

fn tree_edit(words: &'static [&'static str]) -> impl Strategy<Value = TreeEdit> {
    let path = || prop::collection::vec(any::<usize>(), 1..5);
    prop_oneof![
        4 => (path(), hostile_value(words)).prop_map(|(path, value)| TreeEdit::Replace { path, value }),
        2 => path().prop_map(|path| TreeEdit::Remove { path }),
        1 => path().prop_map(|path| TreeEdit::Repeat { path }),
        2 => (path(), prop::sample::select(words), hostile_value(words))
            .prop_map(|(path, key, value)| TreeEdit::Insert { path, key: key.to_owned(), value }),
    ]
}

/// The syntax of a document [`mutated_document`] edits.
#[derive(Debug, Clone, Copy)]
pub enum Syntax {
    Json,
    /// Written out again as TOML; TOML has no null, so null fields and
    /// entries are left out, and a value TOML cannot hold (an integer past
    /// i64) leaves the document as it was.
    Toml,
}

impl Syntax {
    fn read(self, text: &str) -> Value {
        match self {
            Syntax::Json => serde_json::from_str(text).expect("a valid JSON example"),
            Syntax::Toml => {
                let table: toml::Table = toml::from_str(text).expect("a valid TOML example");
                serde_json::to_value(table).expect("TOML as JSON")
            }
        }
    }

    fn write(self, tree: Value) -> Option<String> {
        match self {
            Syntax::Json => Some(tree.to_string()),
            Syntax::Toml => {
                let tree = without_nulls(tree);
                tree.is_object()
                    .then(|| toml::to_string(&tree).ok())
                    .flatten()
            }
        }
    }
}

fn without_nulls(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .filter(|v| !v.is_null())
                .map(without_nulls)
                .collect(),
        ),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

/// One of the `valid` documents with one to six edits of its tree, written
/// out again in its syntax.
pub fn mutated_document(
    syntax: Syntax,
    valid: &'static [&'static str],
    words: &'static [&'static str],
) -> impl Strategy<Value = String> {
    (
        prop::sample::select(valid),
        prop::collection::vec(tree_edit(words), 1..6),
    )
        .prop_map(move |(input, edits)| {
            syntax
                .write(apply_tree(syntax.read(input), &edits))
                .unwrap_or_else(|| input.to_owned())
        })
}
