//! Dockerfile instructions that change an image's config (ENV, LABEL, WORKDIR, USER,
//! EXPOSE, CMD, ENTRYPOINT, STOPSIGNAL, VOLUME), shared by `berth build` and `berth commit
//! -c`, and the word splitting and `$VAR` expansion they need. Parsing is
//! `parse-dockerfile`'s; this is what the instructions mean.

use std::collections::BTreeMap;

use parse_dockerfile::{Command, Instruction};
use serde_json::{json, Value};

use crate::error::{Error, Result};

fn bad(what: &str, why: impl std::fmt::Display) -> Error {
    Error::Flag { flag: "Dockerfile", value: what.to_string(), why: why.to_string() }
}

/// Splits `K=V K2="v 2"` (or the legacy `K V...` when `legacy` and there is no `=`)
/// into pairs, with quotes and backslashes removed.
pub fn pairs(text: &str, legacy: bool) -> Result<Vec<(String, String)>> {
    let text = text.trim();
    let first = text.split_whitespace().next().unwrap_or("");
    if legacy && !first.contains('=') {
        let (k, v) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    for w in words(text)? {
        let (k, v) = w.split_once('=').ok_or_else(|| bad(text, format!("{w:?} is not KEY=VALUE")))?;
        if k.is_empty() {
            return Err(bad(text, "empty key"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Shell-like words: whitespace separates, quotes group, backslash escapes.
pub fn words(text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                any = true;
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if quote.is_some() {
        return Err(bad(text, "unterminated quote"));
    }
    if any {
        out.push(cur);
    }
    Ok(out)
}

/// Expands `$VAR`, `${VAR}` and `${VAR:-default}` from `vars` (unknown: empty), as the
/// Dockerfile does in ENV, ARG, WORKDIR, COPY, USER, EXPOSE, LABEL and FROM.
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            '\\' if i + 1 < b.len() && b[i + 1] == '$' => {
                out.push('$');
                i += 2;
            }
            '$' if i + 1 < b.len() && b[i + 1] == '{' => {
                let Some(end) = b[i..].iter().position(|c| *c == '}') else {
                    out.push_str(&b[i..].iter().collect::<String>());
                    break;
                };
                let inner: String = b[i + 2..i + end].iter().collect();
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (inner.clone(), None),
                };
                match (vars.get(&name), default) {
                    (Some(v), _) if !v.is_empty() => out.push_str(v),
                    (_, Some(d)) => out.push_str(&d),
                    (Some(v), None) => out.push_str(v),
                    (None, None) => {}
                }
                i += end + 1;
            }
            '$' if i + 1 < b.len() && (b[i + 1].is_ascii_alphabetic() || b[i + 1] == '_') => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == '_') {
                    j += 1;
                }
                let name: String = b[i + 1..j].iter().collect();
                out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
                i = j;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The argv of a RUN, CMD or ENTRYPOINT: exec form as written, shell form under
/// `shell` (default `/bin/sh -c`), so PID 1 is the shell.
pub fn argv(cmd: &Command<'_>, shell: &[String]) -> Vec<String> {
    match cmd {
        Command::Exec(a) => a.value.iter().map(|s| s.value.to_string()).collect(),
        Command::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.value.trim().to_string());
            v
        }
        // A form a newer parser knows and berth does not: nothing to run.
        _ => Vec::new(),
    }
}

/// The default shell of shell-form instructions.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// The environment of a config as a map (for `$VAR` expansion).
pub fn env_map(cfg: &Value) -> BTreeMap<String, String> {
    cfg.pointer("/config/Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn set_env(cfg: &mut Value, k: &str, v: &str) {
    let mut env: Vec<Value> = cfg.pointer("/config/Env").and_then(Value::as_array).cloned().unwrap_or_default();
    env.retain(|e| e.as_str().and_then(|s| s.split_once('=')).map(|(ek, _)| ek) != Some(k));
    env.push(json!(format!("{k}={v}")));
    cfg["config"]["Env"] = Value::Array(env);
}

/// What one config instruction changes; false for an instruction that is not one.
/// `vars` are the build's ARGs and ENVs for expansion; `shell` the SHELL in effect.
pub fn apply(cfg: &mut Value, ins: &Instruction<'_>, vars: &BTreeMap<String, String>, shell: &[String]) -> Result<bool> {
    if !cfg["config"].is_object() {
        cfg["config"] = json!({});
    }
    let x = |s: &str| expand(s, vars);
    match ins {
        Instruction::Env(e) => {
            for (k, v) in pairs(&e.arguments.value, true)? {
                set_env(cfg, &k, &x(&v));
            }
        }
        Instruction::Label(l) => {
            if !cfg["config"]["Labels"].is_object() {
                cfg["config"]["Labels"] = json!({});
            }
            for (k, v) in pairs(&l.arguments.value, false)? {
                cfg["config"]["Labels"][x(&k)] = json!(x(&v));
            }
        }
        Instruction::Workdir(w) => {
            let dir = x(w.arguments.value.trim());
            let cur = cfg["config"]["WorkingDir"].as_str().unwrap_or("/").to_string();
            let dir = if dir.starts_with('/') { dir } else { format!("{}/{dir}", cur.trim_end_matches('/')) };
            cfg["config"]["WorkingDir"] = json!(dir);
        }
        Instruction::User(u) => cfg["config"]["User"] = json!(x(u.arguments.value.trim())),
        Instruction::Expose(e) => {
            if !cfg["config"]["ExposedPorts"].is_object() {
                cfg["config"]["ExposedPorts"] = json!({});
            }
            for p in &e.arguments {
                let p = x(&p.value);
                let p = if p.contains('/') { p } else { format!("{p}/tcp") };
                let (port, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                if port.parse::<u16>().is_err() || !["tcp", "udp", "sctp"].contains(&proto) {
                    return Err(bad(&p, "EXPOSE takes PORT[/tcp|udp|sctp]"));
                }
                cfg["config"]["ExposedPorts"][p.clone()] = json!({});
            }
        }
        Instruction::Cmd(c) => cfg["config"]["Cmd"] = json!(argv(&c.arguments, shell)),
        Instruction::Entrypoint(e) => {
            cfg["config"]["Entrypoint"] = json!(argv(&e.arguments, shell));
            // As Docker: a new ENTRYPOINT drops a CMD inherited from the base.
            cfg["config"]["Cmd"] = Value::Null;
        }
        Instruction::Stopsignal(s) => cfg["config"]["StopSignal"] = json!(x(s.arguments.value.trim())),
        Instruction::Volume(v) => {
            if !cfg["config"]["Volumes"].is_object() {
                cfg["config"]["Volumes"] = json!({});
            }
            let list: Vec<String> = match &v.arguments {
                parse_dockerfile::JsonOrStringArray::Json(a) => a.value.iter().map(|s| x(&s.value)).collect(),
                parse_dockerfile::JsonOrStringArray::String(a) => a.iter().map(|s| x(&s.value)).collect(),
            };
            for p in list {
                cfg["config"]["Volumes"][p] = json!({});
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Applies `commit -c` changes (Dockerfile lines) to a config.
pub fn apply_changes(cfg: &mut Value, changes: &[String]) -> Result<()> {
    for c in changes {
        let text = format!("FROM scratch\n{c}\n");
        let df = parse_dockerfile::parse(&text).map_err(|e| bad(c, e))?;
        let vars = env_map(cfg);
        for ins in df.instructions.iter().skip(1) {
            if !apply(cfg, ins, &vars, &default_shell())? {
                return Err(bad(c, "--change takes CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_pairs_follow_the_dockerfile() {
        assert_eq!(words(r#"a "b c" 'd e' f\ g"#).unwrap(), ["a", "b c", "d e", "f g"]);
        assert_eq!(pairs(r#"A=1 B="two words""#, true).unwrap(), [("A".into(), "1".into()), ("B".into(), "two words".into())]);
        assert_eq!(pairs("A one two", true).unwrap(), [("A".into(), "one two".into())]);
        assert!(pairs("A", false).is_err());
        assert!(words("\"open").is_err());
    }

    #[test]
    fn variables_expand() {
        let vars: BTreeMap<String, String> = [("V".to_string(), "x".to_string())].into();
        assert_eq!(expand("$V/${V}/${U:-d}/\\$V/$U.", &vars), "x/x/d/$V/.");
    }

    #[test]
    fn changes_set_cmd_env_and_entrypoint() {
        let mut cfg = json!({"config": {"Cmd": ["old"], "Env": ["A=1"]}});
        apply_changes(&mut cfg, &["CMD [\"httpd\", \"-f\"]".into(), "ENV A=2 B=$A".into(), "WORKDIR /srv".into(), "EXPOSE 80".into()])
            .unwrap();
        assert_eq!(cfg["config"]["Cmd"], json!(["httpd", "-f"]));
        assert_eq!(cfg["config"]["Env"], json!(["A=2", "B=1"]));
        assert_eq!(cfg["config"]["WorkingDir"], "/srv");
        assert_eq!(cfg["config"]["ExposedPorts"], json!({"80/tcp": {}}));
        apply_changes(&mut cfg, &["CMD echo hi".into()]).unwrap();
        assert_eq!(cfg["config"]["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert!(apply_changes(&mut cfg, &["RUN true".into()]).is_err());
    }
}
