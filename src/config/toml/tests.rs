//! The reader on each TOML form, its errors and their positions, the deserializer,
//! and differential tests against the `toml` crate (a dev-dependency only): the same
//! documents give the same values, the same bad documents are refused, and the writer
//! writes what `toml` wrote.

use super::*;
use serde::Deserialize;

/// A value as comparable text: tables sorted by key, floats by their bits' meaning.
fn norm(v: &Value) -> String {
    match &v.kind {
        Kind::String(s) => format!("{s:?}"),
        Kind::Integer(i) => format!("{i}i"),
        Kind::Float(f) => format!("{f:?}f"),
        Kind::Boolean(b) => format!("{b}"),
        Kind::Array(a) => format!("[{}]", a.iter().map(norm).collect::<Vec<_>>().join(",")),
        Kind::Table(t) => {
            let mut e: Vec<_> = t
                .iter()
                .map(|e| format!("{:?}={}", e.key, norm(&e.value)))
                .collect();
            e.sort();
            format!("{{{}}}", e.join(","))
        }
        Kind::Absent => "absent".into(),
    }
}

fn norm_oracle(v: &::toml::Value) -> String {
    use ::toml::Value as T;
    match v {
        T::String(s) => format!("{s:?}"),
        T::Integer(i) => format!("{i}i"),
        T::Float(f) => format!("{f:?}f"),
        T::Boolean(b) => format!("{b}"),
        T::Array(a) => format!(
            "[{}]",
            a.iter().map(norm_oracle).collect::<Vec<_>>().join(",")
        ),
        T::Table(t) => {
            let mut e: Vec<_> = t
                .iter()
                .map(|(k, v)| format!("{k:?}={}", norm_oracle(v)))
                .collect();
            e.sort();
            format!("{{{}}}", e.join(","))
        }
        T::Datetime(d) => format!("date {d}"),
    }
}

fn ours(text: &str) -> String {
    norm(&parse(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}")))
}

fn oracle(text: &str) -> String {
    norm_oracle(&::toml::Value::Table(
        ::toml::from_str(text).unwrap_or_else(|e| panic!("toml on {text:?}: {e}")),
    ))
}

/// Every syntax form, each small document valid TOML 1.0.
const VALID: &[&str] = &[
    "",
    "# only a comment\n\n   \n",
    "a = 1\nb = -2\nc = +3\nd = 1_000\ne = 0\nf = -0\n",
    "h = 0xDEAD_beef\no = 0o755\nb = 0b1101\n",
    "max = 9223372036854775807\nmin = -9223372036854775808\n",
    "a = 1.5\nb = -0.01\nc = 5e+22\nd = 1e06\ne = -2E-2\nf = 6.626e-34\ng = 224_617.445_991\nh = 0.0\ni = -0.0\n",
    "a = inf\nb = +inf\nc = -inf\n",
    "t = true\nf = false\n",
    "s = \"tab\\there \\\"q\\\" back\\\\slash \\b\\f\\n\\r é \\u00e9 \\U0001F600\"\n",
    "s = 'C:\\Users\\x'\nt = '<\\i\\c*\\s*>'\nu = ''\n",
    "s = \"\"\"\nRoses are red\nViolets are blue\"\"\"\n",
    "s = \"\"\"\\\n   The quick \\\n   brown fox.\\\n   \"\"\"\n",
    "s = \"\"\"a \\   \n\n  b\"\"\"\n",
    "s = \"\"\"Here are two quotation marks: \"\". Simple enough.\"\"\"\nt = \"\"\"\"This,\" she said, \"is just a pointless statement.\"\"\"\"\n",
    "s = '''\nThe first newline is\ntrimmed in raw strings.\n'''\nt = ''''That,' she said, 'is still pointless.''''\nu = '''a''b'''\n",
    "a = [1, 2, 3]\nb = [\"x\", 'y']\nc = [[1, 2], [\"a\"]]\nd = []\ne = [1.0, \"mixed\", true]\n",
    "a = [\n  1, # one\n  2,\n  # lone comment\n  3,\n]\n",
    "t = { x = 1, y = \"two\" }\ne = {}\nn = { a.b = 1, a.c = [2] }\n",
    "bare_key-1 = 1\n\"quoted key\" = 2\n'literal key' = 3\n\"\" = 4\n1234 = 5\n",
    "a.b.c = 1\na.b.d = 2\na . e = 3\n\"x\".'y'.z = 4\n",
    "[table]\nk = 1\n[table.sub]\nk = 2\n[ other . 'quoted' ]\nk = 3\n",
    "[a.b.c]\nx = 1\n[a]\ny = 2\n",
    "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true\n",
    "[[products]]\nname = \"Hammer\"\n[[products]]\n[[products]]\nname = \"Nail\"\ncolor = \"gray\"\n",
    "[[fruits]]\nname = \"apple\"\n[fruits.physical]\ncolor = \"red\"\n[[fruits.varieties]]\nname = \"red delicious\"\n[[fruits.varieties]]\nname = \"granny smith\"\n[[fruits]]\nname = \"banana\"\n[[fruits.varieties]]\nname = \"plantain\"\n",
    "a = 1 # comment\n[t] # comment\nb = \"#not a comment\" #comment\n",
    "a = 1\r\nb = \"x\"\r\n[t]\r\nc = 2\r\n",
    "key = \"value\"",
    "\u{feff}a = 1\n",
    "[dhcp4]\nsend = { 224 = \"de:ad\", 225 = { text = \"hi\" } }\nrequest = [252]\n",
];

#[test]
fn valid_documents_give_the_values_the_toml_crate_gives() {
    let mut docs: Vec<String> = VALID.iter().map(|s| s.to_string()).collect();
    docs.push(include_str!("../../../config/netbond.toml").into());
    let readme = include_str!("../../../README.md");
    for block in readme.split("```toml\n").skip(1) {
        docs.push(block.split("```").next().unwrap_or("").to_string());
    }
    assert!(docs.len() > VALID.len() + 2, "the README has TOML examples");
    for d in &docs {
        assert_eq!(ours(d), oracle(d), "document:\n{d}");
    }
}

/// Bad documents, each with the byte offset the error must point at.
const INVALID: &[(&str, usize)] = &[
    ("a = 1\na = 2\n", 6),
    ("a\n", 1),
    ("a = \n", 4),
    ("= 1\n", 0),
    ("a = 1 b = 2\n", 6),
    ("a = \"open\n", 4),
    ("a = 'open\n", 4),
    ("a = \"\"\"open\n", 4),
    ("a = '''open", 4),
    ("a = \"\\q\"\n", 5),
    ("a = \"\\u12\"\n", 5),
    ("a = \"\\uD800\"\n", 5),
    ("a = \"\\U00110000\"\n", 5),
    ("a = 01\n", 4),
    ("a = 1__0\n", 4),
    ("a = _1\n", 4),
    ("a = 1_\n", 4),
    ("a = 0x\n", 4),
    ("a = +0x10\n", 4),
    ("a = 0xG\n", 4),
    ("a = 9223372036854775808\n", 4),
    ("a = 1.\n", 4),
    ("a = .5\n", 4),
    ("a = 1e\n", 4),
    ("a = 1.e5\n", 4),
    ("a = tru\n", 4),
    ("a = hello\n", 4),
    ("a = 1979-05-27T07:32:00Z\n", 4),
    ("a = 07:32:00\n", 4),
    ("a = 1979-05-27\n", 4),
    ("a = [1, 2\n", 4),
    ("a = [1 2]\n", 7),
    ("a = [,]\n", 5),
    ("a = { b = 1 \n", 4),
    ("a = { b = 1, b = 2 }\n", 13),
    ("[a]\n[a]\n", 5),
    ("[a]\nb = 1\n[a.b]\n", 13),
    ("a = 1\n[a]\n", 7),
    ("a = {}\n[a.b]\n", 8),
    ("a = [1]\n[[a]]\n", 10),
    ("[[a]]\n[a]\n", 7),
    ("[a]\n[[a]]\n", 6),
    ("[a\n", 2),
    ("[[a]\n", 4),
    ("[]\n", 1),
    ("a.b = 1\na.b.c = 2\n", 10),
    ("[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", 20),
    ("[fruit]\napple.color = 1\n[fruit.apple]\n", 31),
    ("a = \"\u{1}\"\n", 5),
    ("a = 1 # \u{7f}\n", 8),
    ("a = 1\rb = 2\n", 5),
    ("\"\"\"k\"\"\" = 1\n", 0),
    ("a = \"\"\"x\"\"\"\"\"\"\n", 8),
];

#[test]
fn invalid_documents_are_refused_where_the_fault_is() {
    let mut wrong = Vec::new();
    for (text, at) in INVALID {
        let e = parse(text).expect_err(text);
        if e.span.start != *at {
            wrong.push(format!("{text:?} want {at}: {e:?}"));
        }
        assert!(!e.message.is_empty());
        if !e.message.contains("no date values") {
            assert!(
                ::toml::from_str::<::toml::Table>(text).is_err(),
                "toml accepts {text:?}"
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn dates_are_refused_saying_why() {
    let e = parse("when = 1979-05-27T07:32:00Z\n").unwrap_err();
    assert!(e.message.contains("no date values"), "{e:?}");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("a = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse(&deep)
        .unwrap_err()
        .message
        .contains("nest more than 64"));
    let deep = format!("a = {}{}\n", "{ b = ".repeat(10_000), "}".repeat(10_000));
    assert!(parse(&deep)
        .unwrap_err()
        .message
        .contains("nest more than 64"));
    let long = format!("[{}]\n", vec!["a"; 1000].join("."));
    assert!(parse(&long).is_err());
    let long = format!("{} = 1\n", vec!["a"; 1000].join("."));
    assert!(parse(&long).is_err());
    // Depth from headers, dotted keys and values together.
    let mixed = format!(
        "[{}]\n{} = {}1{}\n",
        vec!["a"; 40].join("."),
        vec!["b"; 20].join("."),
        "[".repeat(10),
        "]".repeat(10)
    );
    assert!(parse(&mixed).unwrap_err().message.contains("nest"));
    // Just inside the limit is fine.
    let ok = format!("a = {}{}\n", "[".repeat(63), "]".repeat(63));
    parse(&ok).unwrap();
}

#[test]
fn hostile_bytes_never_panic() {
    let pieces = [
        "[", "]", "[[", "]]", "{", "}", "\"", "'", "\"\"\"", "'''", "\\", "\\u", "=", ".", ",",
        "#", "\n", "\r", "a", "1", "_", "-", "+", "e", "0x", "é", " ", "\t", "inf", "t",
    ];
    let mut seed = 0x2545_f491_u64;
    for _ in 0..20_000 {
        let mut s = String::new();
        for _ in 0..(seed % 24) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        if let Ok(v) = parse(&s) {
            let _ = crate::config::Config::deserialize(v);
        }
    }
}

#[test]
fn spans_cover_the_value_and_the_key() {
    let text = "[t]\nkey = [1, 2]\n";
    let v = parse(text).unwrap();
    let t = v.get("t").unwrap();
    let Kind::Table(entries) = &t.kind else {
        panic!()
    };
    assert_eq!(&text[entries[0].key_span.clone()], "key");
    assert_eq!(&text[entries[0].value.span.clone()], "[1, 2]");
    assert_eq!(&text[t.span.clone()], "[t]");
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Demo {
    name: String,
    count: u8,
    ratio: f64,
    on: bool,
    maybe: Option<u32>,
    list: Vec<u16>,
    #[serde(default)]
    level: Level,
    inner: Option<Inner>,
    id: Id,
}

#[derive(Debug, Deserialize, PartialEq, Default)]
#[serde(rename_all = "lowercase")]
enum Level {
    #[default]
    Low,
    High,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Inner {
    x: i64,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Id(String);

const DEMO: &str = "name = \"n\"\ncount = 7\nratio = 2\non = true\nmaybe = 5\nlist = [1, 2]\nlevel = \"high\"\nid = \"i\"\n[inner]\nx = -1\n";

#[test]
fn deserializes_each_type() {
    let d: Demo = from_str(DEMO).unwrap();
    assert_eq!(
        d,
        Demo {
            name: "n".into(),
            count: 7,
            ratio: 2.0,
            on: true,
            maybe: Some(5),
            list: vec![1, 2],
            level: Level::High,
            inner: Some(Inner { x: -1 }),
            id: Id("i".into()),
        }
    );
    let d: Demo =
        from_str("name = \"n\"\ncount = 0\nratio = 0.5\non = false\nlist = []\nid = \"\"\n")
            .unwrap();
    assert_eq!((d.maybe, d.level, d.inner), (None, Level::Low, None));
}

fn de_error(text: &str) -> (String, String) {
    let e = from_str::<Demo>(text).unwrap_err();
    let at = e
        .span
        .clone()
        .map_or(String::new(), |s| text[s].to_string());
    (e.message, at)
}

#[test]
fn deserializer_errors_point_at_the_value_or_key() {
    let (m, at) = de_error(&DEMO.replace("count = 7", "count = 300"));
    assert!(m.contains("u8"), "{m}");
    assert_eq!(at, "300");
    let (m, at) = de_error(&DEMO.replace("x = -1", "x = \"one\""));
    assert!(m.contains("invalid type: string"), "{m}");
    assert_eq!(at, "\"one\"");
    let (m, at) = de_error(&DEMO.replace("x = -1", "x = -1\ny = 2"));
    assert!(m.contains("unknown field `y`"), "{m}");
    assert_eq!(at, "y");
    let (m, at) = de_error(&DEMO.replace("level = \"high\"", "level = \"mid\""));
    assert!(
        m.contains("unknown variant `mid`, expected `low` or `high`"),
        "{m}"
    );
    assert_eq!(at, "\"mid\"");
    let (m, at) = de_error(&DEMO.replace("level = \"high\"", "level = 1"));
    assert!(m.contains("expected a string"), "{m}");
    assert_eq!(at, "1");
    let (m, at) = de_error(&DEMO.replace("list = [1, 2]", "list = [1, \"2\"]"));
    assert!(m.contains("invalid type"), "{m}");
    assert_eq!(at, "\"2\"");
    let (m, at) = de_error(&DEMO.replace("[inner]\nx = -1\n", "[inner]\n"));
    assert!(m.contains("missing field `x`"), "{m}");
    assert_eq!(at, "[inner]");
    let (m, _) = de_error(&DEMO.replace("name = \"n\"\n", ""));
    assert!(m.contains("missing field `name`"), "{m}");
}

#[test]
fn json_values_deserialize_the_same_way() {
    let d: Demo = from_str(DEMO).unwrap();
    let j = serde_json::json!({
        "name": "n", "count": 7, "ratio": 2.0, "on": true, "maybe": 5, "list": [1, 2],
        "level": "high", "inner": { "x": -1 }, "id": "i"
    });
    assert_eq!(from_value::<Demo>(Value::from_json(j)).unwrap(), d);
    let j = serde_json::json!({
        "name": "n", "count": 7, "ratio": 2.0, "on": true, "maybe": null, "list": [],
        "inner": null, "id": "i"
    });
    let d: Demo = from_value(Value::from_json(j)).unwrap();
    assert_eq!((d.maybe, d.inner), (None, None));
}

#[test]
fn written_values_are_what_the_toml_crate_wrote() {
    let strings = [
        "",
        "plain",
        "with space",
        "a/b:c.d",
        "tab\there",
        "quote\"d",
        "single'q",
        "both'\"",
        "back\\slash",
        "back\\slash'and'quote",
        "line\nbreak",
        "line\nbreak'\"",
        "ctl\u{1}x",
        "ctl\u{7f}",
        "cr\r",
        "three\"\"\"q",
        "three'''s\"",
        "\"\"\"'''\\",
        "é unicode ✓",
        "two\"\"quotes'",
        "ends\"",
        "end'",
        "\"",
        "'",
        "\\",
        "\n",
        "a\"\"b\"'\n",
        "x\"\"\"\"y'",
        "esc \u{1b}",
    ];
    for s in strings {
        let ours = Value::from(s).to_string();
        let theirs = ::toml::Value::from(s).to_string();
        assert_eq!(ours, theirs, "{s:?}");
        // And it reads back.
        let doc = format!("k = {ours}\n");
        assert_eq!(
            parse(&doc).unwrap().get("k").unwrap().kind,
            Kind::String(s.into()),
            "{doc}"
        );
    }
    for f in [
        0.5,
        4.0,
        64.0,
        3600.0,
        -2.0,
        1e300,
        1.5e-7,
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        123456789.125,
    ] {
        assert_eq!(
            Value::from(f).to_string(),
            ::toml::Value::from(f).to_string(),
            "{f}"
        );
    }
    for i in [0, 1, -1, i64::MAX, i64::MIN] {
        assert_eq!(
            Value::from(i).to_string(),
            ::toml::Value::from(i).to_string()
        );
    }
    for b in [true, false] {
        assert_eq!(
            Value::from(b).to_string(),
            ::toml::Value::from(b).to_string()
        );
    }
    let ours = Value::from(vec![Value::from("eth*"), Value::from("wl*")]).to_string();
    let theirs = ::toml::Value::Array(vec!["eth*".into(), "wl*".into()]).to_string();
    assert_eq!(ours, theirs);
    assert_eq!(
        Value::from(Vec::new()).to_string(),
        ::toml::Value::Array(vec![]).to_string()
    );
}
