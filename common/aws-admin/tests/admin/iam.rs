//! The IAM policies in `iam/` against the code: every AWS call a binary can make is allowed by
//! its policy, and nothing else is (least privilege), so a new SDK call fails here until the
//! policy grants it.
//!
//! The calls are found by scanning the source: an SDK call is a fluent builder started on a
//! client (`client.put_object()`, `self.client.get_item()`, `Client::new(config).delete_table()`)
//! and sent (`.send()`, `.presigned(..)`). The service is the one SDK crate the file uses. The API
//! and the worker may reach every call of `minimoto-aws` but the worker registry's, of which the
//! API calls the table check and a worker also its beat; `setup`/`cleanup` every call of
//! `minimoto-aws-admin`, the functions of `minimoto-aws` it calls (followed by name), and the EC2
//! side of setup in the scaler crate (`scaler/src/fleet/ec2/setup.rs`); the scaler every call of
//! its crate but that file, all of the registry, and what opening the backend and reading the
//! queue's depth call. A call the scanner cannot attribute, or an operation without a known IAM
//! action, fails the test.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
};

use serde_json::Value;

/// The placeholders the policy files use, substituted at deployment (see the README).
const PLACEHOLDERS: [&str; 3] = ["${Region}", "${Account}", "${Stack}"];

/// Actions IAM grants only on `"Resource": "*"` (they have no resource of their own).
const STAR_ONLY: [&str; 6] = [
    "s3:listallmybuckets",
    "dynamodb:listtables",
    "sqs:listqueues",
    "ec2:describeinstances",
    "ec2:describelaunchtemplates",
    "ec2:describelaunchtemplateversions",
];

/// S3 actions on objects: their resource is `arn:aws:s3:::<bucket>/<key>`, never the bucket.
const S3_OBJECT_ACTIONS: [&str; 5] = [
    "s3:getobject",
    "s3:putobject",
    "s3:deleteobject",
    "s3:deleteobjectversion",
    "s3:abortmultipartupload",
];

/// Actions only setup and cleanup may have: the hot path must not be able to make or break the
/// stack (checked on top of "nothing beyond what the code calls").
const ADMIN_ONLY: [&str; 18] = [
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:PutBucketTagging",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketCORS",
    "s3:DeleteObjectVersion",
    "dynamodb:CreateTable",
    "dynamodb:UpdateTable",
    "dynamodb:DeleteTable",
    "dynamodb:TagResource",
    "sqs:CreateQueue",
    "sqs:DeleteQueue",
    "sqs:SetQueueAttributes",
    "sqs:TagQueue",
    "ec2:CreateLaunchTemplate",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:DeleteLaunchTemplate",
    "iam:PassRole",
];

// ---------------------------------------------------------------------------------------------
// Mapping SDK operations to IAM actions.

/// The IAM actions an SDK operation (the fluent builder's name) needs, or why it has none known.
fn iam_actions(service: &str, op: &str) -> Result<Vec<String>, String> {
    let pascal: String = op
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let s3 = |actions: &[&str]| Ok(actions.iter().map(|a| format!("s3:{a}")).collect());
    match service {
        // S3's IAM actions are named apart from its operations: each is listed, none guessed.
        "s3" => match op {
            "get_object" | "head_object" => s3(&["GetObject"]),
            "put_object"
            | "create_multipart_upload"
            | "upload_part"
            | "complete_multipart_upload" => s3(&["PutObject"]),
            "abort_multipart_upload" => s3(&["AbortMultipartUpload"]),
            "delete_objects" => s3(&["DeleteObject"]),
            "head_bucket" | "list_objects_v2" => s3(&["ListBucket"]),
            // Its one use lists the versions to delete them (DeleteObjects with version ids).
            "list_object_versions" => s3(&["ListBucketVersions", "DeleteObjectVersion"]),
            "list_multipart_uploads" => s3(&["ListBucketMultipartUploads"]),
            "list_buckets" => s3(&["ListAllMyBuckets"]),
            "create_bucket" => s3(&["CreateBucket"]),
            "delete_bucket" => s3(&["DeleteBucket"]),
            "get_bucket_tagging" => s3(&["GetBucketTagging"]),
            "put_bucket_tagging" => s3(&["PutBucketTagging"]),
            "get_bucket_lifecycle_configuration" => s3(&["GetLifecycleConfiguration"]),
            "put_bucket_lifecycle_configuration" => s3(&["PutLifecycleConfiguration"]),
            "get_bucket_cors" => s3(&["GetBucketCORS"]),
            "put_bucket_cors" => s3(&["PutBucketCORS"]),
            _ => Err(format!(
                "no IAM action known for S3 `{op}`: add it to iam_actions() and to the policies"
            )),
        },
        // Creating with tags also needs the tagging action.
        "dynamodb" if op == "create_table" => Ok(vec![
            "dynamodb:CreateTable".into(),
            "dynamodb:TagResource".into(),
        ]),
        "sqs" if op == "create_queue" => Ok(vec!["sqs:CreateQueue".into(), "sqs:TagQueue".into()]),
        // Launching tags the instance and its volumes, and hands the template's instance
        // profile (its role) to EC2.
        "ec2" if op == "run_instances" => Ok(vec![
            "ec2:RunInstances".into(),
            "ec2:CreateTags".into(),
            "iam:PassRole".into(),
        ]),
        "ec2" if op == "create_launch_template" => Ok(vec![
            "ec2:CreateLaunchTemplate".into(),
            "ec2:CreateTags".into(),
        ]),
        "dynamodb" | "sqs" | "ec2" => Ok(vec![format!("{service}:{pascal}")]),
        _ => Err(format!("unknown service `{service}` for `{op}`")),
    }
}

// ---------------------------------------------------------------------------------------------
// A small Rust tokenizer: enough to skip comments and literals and match brackets.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Punct(char),
    Literal,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let count_lines = |from: usize, to: usize, line: &mut usize| {
        *line += chars[from..to].iter().filter(|c| **c == '\n').count();
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start = i;
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            count_lines(start, i, &mut line);
        } else if c == '"' || ((c == 'b' || c == 'c') && next == Some('"')) {
            i += if c == '"' { 1 } else { 2 };
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            count_lines(start, i.min(chars.len()), &mut line);
            out.push(Token {
                tok: Tok::Literal,
                line,
            });
        } else if let Some(prefix) = raw_string_prefix(&chars[i..]) {
            // A raw string: r"..", r#".."#, br"..".
            i += prefix;
            let hashes = chars[i..].iter().take_while(|c| **c == '#').count();
            i += hashes + 1;
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < chars.len() && !chars[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            count_lines(start, i.min(chars.len()), &mut line);
            out.push(Token {
                tok: Tok::Literal,
                line,
            });
        } else if c == '\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push(Token {
                    tok: Tok::Literal,
                    line,
                });
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push(Token {
                    tok: Tok::Literal,
                    line,
                });
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Literal,
                line,
            });
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(chars[start..i].iter().collect()),
                line,
            });
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    out
}

/// The length of `r`, `br` or `cr` if a raw string starts here.
fn raw_string_prefix(rest: &[char]) -> Option<usize> {
    let prefix = match rest {
        ['r', ..] => 1,
        ['b' | 'c', 'r', ..] => 2,
        _ => return None,
    };
    let hashes = rest[prefix..].iter().take_while(|c| **c == '#').count();
    (rest.get(prefix + hashes) == Some(&'"')).then_some(prefix)
}

fn is_punct(t: Option<&Token>, c: char) -> bool {
    matches!(t, Some(Token { tok: Tok::Punct(p), .. }) if *p == c)
}

fn ident(t: Option<&Token>) -> Option<&str> {
    match t {
        Some(Token {
            tok: Tok::Ident(s), ..
        }) => Some(s),
        _ => None,
    }
}

/// The index of the bracket closing the one at `open`.
fn closing(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// The index of the bracket opening the one closed at `close`.
fn opening(tokens: &[Token], close: usize) -> Option<usize> {
    let mut depth = 0;
    for i in (0..=close).rev() {
        match tokens[i].tok {
            Tok::Punct(')' | ']' | '}') => depth += 1,
            Tok::Punct('(' | '[' | '{') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Finding the SDK calls.

/// One SDK operation called in the source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Call {
    service: String,
    op: String,
    at: String,
}

/// A function of the scanned source: the SDK calls in its body and the free functions it calls.
#[derive(Debug, Default, Clone)]
struct Function {
    calls: Vec<Call>,
    callees: BTreeSet<String>,
    /// The callees that come from `minimoto-aws` (imported with `use minimoto_aws::…` or called
    /// by a path through it): the ones the admin crate's scan follows into that crate.
    from_hot_path: BTreeSet<String>,
}

/// The crate the admin crate calls into, as a path root.
const HOT_PATH_CRATE: &str = "minimoto_aws";

/// Methods of an SDK `Client` that are not operations.
const NOT_OPERATIONS: [&str; 2] = ["clone", "config"];

/// Whether the tokens ending at `end` (inclusive) are a client: `client`, `self.client`,
/// `Client::new(..)`, `Client::from_conf(..)` or a call of a function named `*client(..)`.
fn is_client(tokens: &[Token], end: usize) -> bool {
    if ident(tokens.get(end)).is_some_and(|n| n == "client") {
        return true;
    }
    if !is_punct(tokens.get(end), ')') {
        return false;
    }
    let Some(open) = opening(tokens, end) else {
        return false;
    };
    let Some(name) = open.checked_sub(1).and_then(|i| ident(tokens.get(i))) else {
        return false;
    };
    let path_of_client = open >= 4
        && is_punct(tokens.get(open - 2), ':')
        && is_punct(tokens.get(open - 3), ':')
        && ident(tokens.get(open - 4)) == Some("Client");
    (path_of_client && matches!(name, "new" | "from_conf")) || name.ends_with("client")
}

/// The SDK operations started in `tokens` (by index of the operation's name), and, for each
/// `.send()`/`.presigned(..)` chain, its first empty call: every one of those must be an
/// operation found, or the scanner missed a client.
fn sdk_calls(tokens: &[Token]) -> Result<BTreeMap<usize, String>, String> {
    let mut ops = BTreeMap::new();
    for i in 1..tokens.len().saturating_sub(3) {
        if is_punct(tokens.get(i), '.')
            && is_client(tokens, i - 1)
            && is_punct(tokens.get(i + 2), '(')
            && is_punct(tokens.get(i + 3), ')')
            && let Some(op) = ident(tokens.get(i + 1))
            && !NOT_OPERATIONS.contains(&op)
        {
            ops.insert(i + 1, op.to_owned());
        }
    }
    for i in 0..tokens.len() {
        let terminal = ident(tokens.get(i + 1));
        if !(is_punct(tokens.get(i), '.')
            && matches!(terminal, Some("send" | "presigned"))
            && is_punct(tokens.get(i + 2), '('))
        {
            continue;
        }
        // Walk the chain back: `.name(..)` or `.name` segments; remember the first empty call.
        let mut j = i;
        let mut first_empty_call = None;
        while j > 0 {
            let mut k = j - 1;
            let mut call = None;
            if is_punct(tokens.get(k), ')') {
                let Some(open) = opening(tokens, k) else {
                    break;
                };
                call = Some(open + 1 == k);
                match open.checked_sub(1) {
                    Some(before) => k = before,
                    None => break,
                }
            }
            if ident(tokens.get(k)).is_none() {
                break;
            }
            if call == Some(true) {
                first_empty_call = Some(k);
            }
            if k > 0 && is_punct(tokens.get(k - 1), '.') {
                j = k - 1;
            } else {
                break;
            }
        }
        if let Some(k) = first_empty_call
            && !ops.contains_key(&k)
        {
            return Err(format!(
                "line {}: `.{}()` is sent like an SDK call but not on a client the scanner knows \
                 (name it `client`, or teach is_client() the receiver)",
                tokens[k].line,
                ident(tokens.get(k)).unwrap_or("?")
            ));
        }
    }
    Ok(ops)
}

/// The functions of one source file, keyed by name.
fn scan(name: &str, src: &str) -> Result<Vec<(String, Function)>, String> {
    let tokens = tokenize(src);
    let services: BTreeSet<&str> = tokens
        .iter()
        .filter_map(|t| ident(Some(t)))
        .filter_map(|s| s.strip_prefix("aws_sdk_"))
        .collect();
    let ops = sdk_calls(&tokens).map_err(|e| format!("{name}: {e}"))?;
    let service = match services.iter().collect::<Vec<_>>().as_slice() {
        [one] => Some(**one),
        _ if ops.is_empty() => None,
        _ => {
            return Err(format!(
                "{name}: SDK calls in a file using {services:?}: the scanner tells the service \
                 by the one aws_sdk_* crate a file uses"
            ));
        }
    };
    // `use a::b as c;`: calls of `c` are calls of `b`.
    let aliases: HashMap<&str, &str> = tokens
        .windows(3)
        .filter_map(
            |w| match (ident(w.first()), ident(w.get(1)), ident(w.get(2))) {
                (Some(original), Some("as"), Some(alias)) => Some((alias, original)),
                _ => None,
            },
        )
        .collect();
    // The names `use minimoto_aws::…;` brings in.
    let mut imported = BTreeSet::new();
    for i in 0..tokens.len() {
        if ident(tokens.get(i)) == Some("use") && ident(tokens.get(i + 1)) == Some(HOT_PATH_CRATE) {
            let end = (i..tokens.len())
                .find(|k| is_punct(tokens.get(*k), ';'))
                .unwrap_or(tokens.len());
            imported.extend(tokens[i..end].iter().filter_map(|t| ident(Some(t))));
        }
    }
    let mut functions = Vec::new();
    let mut spans = Vec::new();
    for i in 0..tokens.len() {
        if ident(tokens.get(i)) != Some("fn") {
            continue;
        }
        let Some(fn_name) = ident(tokens.get(i + 1)) else {
            continue;
        };
        // The body is the first `{` outside brackets before a `;` (a declaration has none).
        let mut j = i + 2;
        let mut depth = 0i32;
        let body = loop {
            match tokens.get(j).map(|t| &t.tok) {
                None | Some(Tok::Punct(';')) if depth == 0 => break None,
                None => break None,
                Some(Tok::Punct('(' | '[' | '<')) => depth += 1,
                Some(Tok::Punct(')' | ']')) => depth -= 1,
                Some(Tok::Punct('>')) if !is_punct(tokens.get(j - 1), '-') => depth -= 1,
                Some(Tok::Punct('{')) if depth <= 0 => break Some(j),
                _ => {}
            }
            j += 1;
        };
        let Some(open) = body else {
            continue;
        };
        let close = closing(&tokens, open);
        spans.push((open, close));
        let mut function = Function::default();
        for (&at, op) in ops.range(open..close) {
            function.calls.push(Call {
                service: service.unwrap_or("?").to_owned(),
                op: op.clone(),
                at: format!("{name}:{}", tokens[at].line),
            });
        }
        // Free functions only: a method call (`.send()`) names no function to follow.
        for k in open..close {
            if let Some(callee) = ident(tokens.get(k))
                && is_punct(tokens.get(k + 1), '(')
                && !(k > 0 && is_punct(tokens.get(k - 1), '.'))
            {
                let callee = aliases.get(callee).copied().unwrap_or(callee);
                function.callees.insert(callee.to_owned());
                // `minimoto_aws::queue::queue_url(..)`: a path through the crate.
                let mut p = k;
                let mut by_path = false;
                while p >= 3 && is_punct(tokens.get(p - 1), ':') && is_punct(tokens.get(p - 2), ':')
                {
                    p -= 3;
                    by_path |= ident(tokens.get(p)) == Some(HOT_PATH_CRATE);
                }
                if by_path || imported.contains(callee) {
                    function.from_hot_path.insert(callee.to_owned());
                }
            }
        }
        functions.push((fn_name.to_owned(), function));
    }
    if let Some((&at, op)) = ops
        .iter()
        .find(|(at, _)| !spans.iter().any(|(o, c)| (*o..*c).contains(*at)))
    {
        return Err(format!(
            "{name}:{}: `{op}` outside any function body",
            tokens[at].line
        ));
    }
    Ok(functions)
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The functions of each file of a crate's `src/`, by the file's path in the workspace.
fn scan_files(src: &Path) -> BTreeMap<String, Vec<(String, Function)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace");
    let mut files = BTreeMap::new();
    for file in rust_files(src) {
        let text = std::fs::read_to_string(&file).expect("read source");
        let file = file.canonicalize().expect("a source file");
        let name = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let functions = scan(&name, &text).unwrap_or_else(|e| panic!("{e}"));
        files.insert(name, functions);
    }
    files
}

/// The functions of a crate's `src/`, by name (same-named functions pooled).
fn scan_crate(src: &Path) -> HashMap<String, Vec<Function>> {
    let mut functions: HashMap<String, Vec<Function>> = HashMap::new();
    for (fn_name, f) in scan_files(src).into_values().flatten() {
        functions.entry(fn_name).or_default().push(f);
    }
    functions
}

/// The SDK calls of the functions `names` of one file (every function for `None`) and of the
/// functions of that file they call.
fn calls_in(functions: &[(String, Function)], names: Option<&[&str]>) -> Vec<Call> {
    let mut by_name: HashMap<&str, Vec<&Function>> = HashMap::new();
    for (name, f) in functions {
        by_name.entry(name.as_str()).or_default().push(f);
    }
    let mut todo: Vec<String> = match names {
        Some(names) => names.iter().map(|n| (*n).to_owned()).collect(),
        None => by_name.keys().map(|n| (*n).to_owned()).collect(),
    };
    let mut seen = BTreeSet::new();
    let mut calls = Vec::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let found = by_name.get(name.as_str());
        assert!(
            found.is_some() || names.is_none_or(|n| !n.contains(&name.as_str())),
            "no function `{name}` to scan"
        );
        for f in found.into_iter().flatten() {
            calls.extend(f.calls.iter().cloned());
            todo.extend(f.callees.iter().cloned());
        }
    }
    calls
}

/// The SDK calls of every function in `roots`, and of the functions of `library` they call
/// (followed by name from there on).
fn reachable(
    roots: &HashMap<String, Vec<Function>>,
    library: &HashMap<String, Vec<Function>>,
) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&String> = Vec::new();
    for f in roots.values().flatten() {
        calls.extend(f.calls.iter().cloned());
        todo.extend(&f.from_hot_path);
    }
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        for f in library.get(name).into_iter().flatten() {
            calls.extend(f.calls.iter().cloned());
            todo.extend(&f.callees);
        }
    }
    calls.sort();
    calls.dedup();
    calls
}

fn crate_src(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
}

/// The worker registry's file: each binary uses a part of it.
const REGISTRY: &str = "common/aws/src/registry.rs";
/// The registry functions the API and the worker call: the API opens the backend (which checks
/// the workers table); a worker also beats.
const REGISTRY_USE: [(&str, &[&str]); 2] = [("api", &["check"]), ("worker", &["check", "beat"])];
/// What the scaler calls of the rest of the hot path: opening the backend checks the jobs table
/// and resolves both queues (the blob store makes no call until used); then it reads the
/// queue's depth. It uses the whole registry, and the table check both stores share.
const SCALER_HOT_PATH: [(&str, &[&str]); 3] = [
    ("common/aws/src/jobs.rs", &["check"]),
    ("common/aws/src/table.rs", &["check_table"]),
    ("common/aws/src/queue.rs", &["connect", "depth"]),
];
/// The part of the scaler crate that is `setup` / `cleanup`'s (the only package compiling the
/// EC2 SDK holds the workers' launch template and the stack's instances).
const SCALER_ADMIN: &str = "scaler/src/fleet/ec2/setup.rs";

/// Each binary's reachable SDK calls.
fn calls_by_binary() -> BTreeMap<&'static str, Vec<Call>> {
    let hot_files = scan_files(&crate_src("../aws/src"));
    let hot = scan_crate(&crate_src("../aws/src"));
    let admin = scan_crate(&crate_src("src"));
    let scaler_files = scan_files(&crate_src("../../scaler/src"));
    let file = |files: &BTreeMap<String, Vec<(String, Function)>>, name: &str| {
        files
            .get(name)
            .unwrap_or_else(|| panic!("{name}: no such source file"))
            .clone()
    };
    let registry = file(&hot_files, REGISTRY);
    let shared: Vec<Call> = reachable(&hot, &HashMap::new())
        .into_iter()
        .filter(|c| !c.at.starts_with(REGISTRY))
        .collect();
    let mut calls = BTreeMap::new();
    for (binary, used) in REGISTRY_USE {
        let mut all = shared.clone();
        all.extend(calls_in(&registry, Some(used)));
        calls.insert(binary, all);
    }
    let mut admin_calls = reachable(&admin, &hot);
    admin_calls.extend(calls_in(&file(&scaler_files, SCALER_ADMIN), None));
    calls.insert("admin", admin_calls);
    let mut scaler = calls_in(&registry, None);
    for (name, used) in SCALER_HOT_PATH {
        scaler.extend(calls_in(&file(&hot_files, name), Some(used)));
    }
    for (name, functions) in &scaler_files {
        if name != SCALER_ADMIN {
            scaler.extend(calls_in(functions, None));
        }
    }
    calls.insert("scaler", scaler);
    for all in calls.values_mut() {
        all.sort();
        all.dedup();
    }
    calls
}

/// The IAM actions the calls need (lowercase: IAM compares actions case-insensitively), each
/// with where it is needed. Unmappable calls fail the test, listed.
fn required(calls: &[Call]) -> BTreeMap<String, Vec<String>> {
    let mut actions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unmapped = Vec::new();
    for call in calls {
        match iam_actions(&call.service, &call.op) {
            Ok(list) => {
                for action in list {
                    actions
                        .entry(action.to_ascii_lowercase())
                        .or_default()
                        .push(format!("{} ({})", call.at, call.op));
                }
            }
            Err(e) => unmapped.push(format!("{}: {e}", call.at)),
        }
    }
    assert!(
        unmapped.is_empty(),
        "SDK calls without a known IAM action:\n{}",
        unmapped.join("\n")
    );
    actions
}

// ---------------------------------------------------------------------------------------------
// Reading the policies.

#[derive(Debug, Clone)]
struct Statement {
    actions: Vec<String>,
    resources: Vec<String>,
}

fn strings(v: &Value, what: &str) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .unwrap_or_else(|| panic!("{what}: {i} is not a string"))
                    .to_owned()
            })
            .collect(),
        other => panic!("{what}: expected a string or a list, got {other}"),
    }
}

fn policy_text(name: &str) -> String {
    let path = crate_src("iam").join(format!("{name}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A policy's statements; panics on anything the checks here do not understand.
fn parse_policy(name: &str, text: &str) -> Vec<Statement> {
    let policy: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}.json: {e}"));
    assert_eq!(
        policy["Version"], "2012-10-17",
        "{name}.json: the current policy language"
    );
    let statements = policy["Statement"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}.json: Statement must be a list"));
    statements
        .iter()
        .map(|s| {
            let sid = s["Sid"].as_str().unwrap_or("?");
            let what = format!("{name}.json statement {sid}");
            assert_eq!(s["Effect"], "Allow", "{what}: only Allow statements");
            for unsupported in ["NotAction", "NotResource", "Principal"] {
                assert!(s.get(unsupported).is_none(), "{what}: no {unsupported}");
            }
            let actions = strings(&s["Action"], &what);
            for a in &actions {
                assert!(!a.contains('*'), "{what}: no wildcard actions ({a})");
            }
            Statement {
                actions: actions.iter().map(|a| a.to_ascii_lowercase()).collect(),
                resources: strings(&s["Resource"], &what),
            }
        })
        .collect()
}

fn policy(name: &str) -> Vec<Statement> {
    parse_policy(name, &policy_text(name))
}

fn allowed(statements: &[Statement]) -> BTreeSet<String> {
    statements
        .iter()
        .flat_map(|s| s.actions.iter().cloned())
        .collect()
}

/// The required actions the policy does not allow, with where the code needs them.
fn missing(required: &BTreeMap<String, Vec<String>>, statements: &[Statement]) -> Vec<String> {
    let allowed = allowed(statements);
    required
        .iter()
        .filter(|(action, _)| !allowed.contains(*action))
        .map(|(action, at)| format!("{action} (needed by {})", at.join(", ")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The checks.

#[test]
fn each_policy_allows_every_aws_call_of_its_binary_and_nothing_more() {
    for (binary, calls) in calls_by_binary() {
        assert!(
            !calls.is_empty(),
            "{binary}: the scan found no SDK calls at all"
        );
        let required = required(&calls);
        let statements = policy(binary);
        let missing = missing(&required, &statements);
        assert!(
            missing.is_empty(),
            "iam/{binary}.json lacks actions the code calls:\n{}",
            missing.join("\n")
        );
        let extra: Vec<_> = allowed(&statements)
            .into_iter()
            .filter(|a| !required.contains_key(a))
            .collect();
        assert!(
            extra.is_empty(),
            "iam/{binary}.json allows actions no code of the binary calls (least privilege): {extra:?}"
        );
    }
}

#[test]
fn the_hot_path_and_the_scaler_cannot_make_or_break_the_stack() {
    for binary in ["api", "worker", "scaler"] {
        let allowed = allowed(&policy(binary));
        let admin: Vec<_> = ADMIN_ONLY
            .iter()
            .filter(|a| allowed.contains(&a.to_ascii_lowercase()))
            .filter(|a| !(binary == "scaler" && **a == "iam:PassRole"))
            .collect();
        assert!(
            admin.is_empty(),
            "iam/{binary}.json allows admin actions: {admin:?}"
        );
    }
    let admin = allowed(&policy("admin"));
    let hot = allowed(&policy("api"));
    for action in [
        "s3:putobject",
        "s3:getobject",
        "sqs:sendmessage",
        "sqs:receivemessage",
        "dynamodb:putitem",
    ] {
        assert!(
            !admin.contains(action) && hot.contains(action),
            "{action}: the hot path's, not setup's"
        );
    }
}

#[test]
fn policies_are_well_formed_and_scoped() {
    for binary in ["api", "worker", "admin", "scaler"] {
        let text = policy_text(binary);
        let mut rest = text.as_str();
        while let Some(at) = rest.find("${") {
            let placeholder = &rest[at..rest[at..].find('}').map_or(rest.len(), |e| at + e + 1)];
            assert!(
                PLACEHOLDERS.contains(&placeholder),
                "iam/{binary}.json: unknown placeholder {placeholder}; use one of {PLACEHOLDERS:?}"
            );
            rest = &rest[at + placeholder.len()..];
        }
        for s in policy(binary) {
            for action in &s.actions {
                let star = s.resources.iter().any(|r| r == "*");
                assert_eq!(
                    star,
                    STAR_ONLY.contains(&action.as_str()),
                    "iam/{binary}.json: {action} must be on `*` exactly when IAM requires it"
                );
                if action.starts_with("s3:") && !star {
                    let on_objects = S3_OBJECT_ACTIONS.contains(&action.as_str());
                    for r in &s.resources {
                        let object_arn = r.trim_start_matches("arn:aws:s3:::").contains('/');
                        assert_eq!(
                            object_arn, on_objects,
                            "iam/{binary}.json: {action} on {r}: object actions take \
                             `arn:aws:s3:::<bucket>/*`, bucket actions the bucket's ARN"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_policy_missing_an_action_is_caught() {
    let calls = calls_by_binary();
    let required = required(&calls["api"]);
    let mut statements = policy("api");
    assert!(missing(&required, &statements).is_empty());
    for s in &mut statements {
        s.actions.retain(|a| a != "sqs:sendmessage");
    }
    let missing = missing(&required, &statements);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with("sqs:sendmessage (needed by ")
            && missing[0].contains("common/aws/src/queue.rs:")
            && missing[0].contains("common/aws/src/events.rs:"),
        "says what is missing and where the code needs it: {missing:?}"
    );
}

#[test]
fn unmappable_calls_and_unknown_clients_fail_loudly() {
    assert!(iam_actions("s3", "put_bucket_website").is_err());
    assert!(iam_actions("kinesis", "put_record").is_err());
    assert_eq!(
        iam_actions("sqs", "change_message_visibility"),
        Ok(vec!["sqs:ChangeMessageVisibility".to_owned()])
    );
    let result = std::panic::catch_unwind(|| {
        required(&[Call {
            service: "s3".into(),
            op: "put_bucket_website".into(),
            at: "x.rs:1".into(),
        }])
    });
    assert!(result.is_err(), "an unmapped call fails the test");

    let renamed =
        "use aws_sdk_s3::Client;\nfn f(s3: &Client) { s3.put_object().bucket(b).send(); }";
    let err = scan("renamed.rs", renamed).expect_err("an unknown receiver");
    assert!(err.contains("renamed.rs: line 2: `.put_object()`"), "{err}");
    let two = "use aws_sdk_s3::Client; use aws_sdk_sqs::Client as Q;\nfn f() { client.put_object().send(); }";
    assert!(
        scan("two.rs", two).is_err(),
        "a file with two SDKs is refused"
    );
}

#[test]
fn the_scanner_finds_calls_in_every_form() {
    let src = r##"
        use aws_sdk_s3::Client;
        // client.delete_bucket() in a comment is no call.
        /* nor /* nested */ client.put_bucket_policy() */
        fn a(client: &Client) {
            let s = "client.delete_bucket().send()";
            let r = r#"client.delete_bucket()"#;
            let c = '"';
            client.head_bucket().bucket(b).send();
        }
        impl Store {
            async fn b(&self) -> Result<(), Error<'_>> {
                self.client
                    .put_object()
                    .key(format!("{x}"))
                    .send()
                    .await?;
                let mut request = client.create_bucket().bucket(b);
                request.send().await;
                self.client.get_object().key(k).presigned(p).await;
                helper(1);
                self.method(2);
            }
        }
        fn c(config: &SdkConfig) {
            Client::new(config).delete_objects().send();
            s3_client(config).list_objects_v2().into_paginator().send();
        }
        fn declared();
    "##;
    let functions = scan("forms.rs", src).expect("scan");
    let ops = |name: &str| -> Vec<String> {
        functions
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, f)| f.calls.iter().map(|c| format!("{}:{}", c.service, c.op)))
            .collect()
    };
    assert_eq!(ops("a"), ["s3:head_bucket"]);
    assert_eq!(
        ops("b"),
        ["s3:put_object", "s3:create_bucket", "s3:get_object"]
    );
    assert_eq!(ops("c"), ["s3:delete_objects", "s3:list_objects_v2"]);
    let b = &functions.iter().find(|(n, _)| n == "b").expect("b").1;
    assert!(b.callees.contains("helper"));
    assert!(
        !b.callees.contains("method"),
        "methods are not followed by name"
    );
    assert_eq!(b.calls[0].at, "forms.rs:14");
    assert!(
        functions.iter().all(|(n, _)| n != "declared"),
        "a declaration has no body"
    );
}

#[test]
fn the_admin_scan_follows_only_what_it_takes_from_the_hot_path() {
    let library = "use aws_sdk_sqs::Client;
        pub async fn queue_url(client: &Client) { client.get_queue_url().send(); helper(); }
        fn helper(client: &Client) { client.get_queue_attributes().send(); }
        impl Q { async fn send(&self) { self.client.send_message().send(); } }
        impl Q { async fn create(&self) { self.client.create_queue().send(); } }";
    let admin = "use minimoto_aws::{queue::queue_url as url};
        fn create(q: &Q) { url(q.client); q.send(); minimoto_aws::x::other(); }";
    let index = |name: &str, src: &str| {
        let mut map: HashMap<String, Vec<Function>> = HashMap::new();
        for (n, f) in scan(name, src).expect("scan") {
            map.entry(n).or_default().push(f);
        }
        map
    };
    let ops: Vec<String> = reachable(&index("admin.rs", admin), &index("lib.rs", library))
        .into_iter()
        .map(|c| c.op)
        .collect();
    assert_eq!(
        ops,
        ["get_queue_attributes", "get_queue_url"],
        "an imported function and what it calls; not same-named methods"
    );
}
