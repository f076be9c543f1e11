//! `--format`, as Docker's CLI reads it: `table` (the command's own columns), `json`, `table
//! TEMPLATE` (a header row from the fields' column titles, then one aligned row per item)
//! or a Go template applied to each item (`{{.Name}}`, `{{.State.Pid}}`, `{{json .Config}}`),
//! rendered by gtmpl, a Rust implementation of Go's text/template.

use std::collections::HashMap;

use gtmpl::{Context, FuncError, Template, Value as G};
use serde_json::Value;

use crate::error::{Error, Result};

/// What `--format` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// No `--format`, or `table`: the command's own output.
    Default,
    /// `json`.
    Json,
    /// `table TEMPLATE`.
    Table(String),
    /// A template per item.
    Template(String),
}

impl Format {
    /// Reads the flag's value; `\t` and `\n` written literally are a tab and a newline,
    /// as Docker takes them.
    pub fn parse(flag: Option<&str>) -> Self {
        let Some(f) = flag else { return Format::Default };
        let f = f.replace("\\t", "\t").replace("\\n", "\n");
        match f.trim() {
            "" | "table" => Format::Default,
            "json" | "{{json .}}" => Format::Json,
            t => match t.strip_prefix("table ") {
                Some(rest) => Format::Table(rest.to_string()),
                None => Format::Template(f),
            },
        }
    }
}

fn bad(template: &str, why: impl std::fmt::Display) -> Error {
    Error::Flag { flag: "--format", value: template.to_string(), why: format!("template: {why}") }
}

/// serde_json → gtmpl: objects become structs so `.Field` reaches their members.
fn to_g(v: &Value) -> G {
    match v {
        Value::Null => G::Nil,
        Value::Bool(b) => G::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => G::from(u),
            (_, Some(i)) => G::from(i),
            _ => G::from(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => G::String(s.clone()),
        Value::Array(a) => G::Array(a.iter().map(to_g).collect()),
        Value::Object(m) => G::Object(m.iter().map(|(k, v)| (k.clone(), to_g(v))).collect::<HashMap<_, _>>()),
    }
}

/// gtmpl → serde_json, for `{{json .X}}`.
fn from_g(v: &G) -> Value {
    match v {
        G::NoValue | G::Nil | G::Function(_) => Value::Null,
        G::Bool(b) => Value::Bool(*b),
        G::String(s) => Value::String(s.clone()),
        G::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .unwrap_or_else(|| n.as_f64().map(Value::from).unwrap_or(Value::Null)),
        G::Array(a) => Value::Array(a.iter().map(from_g).collect()),
        G::Object(m) | G::Map(m) => {
            let sorted: std::collections::BTreeMap<_, _> = m.iter().map(|(k, v)| (k.clone(), from_g(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
    }
}

fn one(name: &str, args: &[G]) -> std::result::Result<G, FuncError> {
    args.first().cloned().ok_or_else(|| FuncError::ExactlyXArgs(name.into(), 1))
}

fn json(args: &[G]) -> std::result::Result<G, FuncError> {
    Ok(G::String(from_g(&one("json", args)?).to_string()))
}

fn text(args: &[G]) -> String {
    match args.first() {
        Some(G::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

fn upper(args: &[G]) -> std::result::Result<G, FuncError> {
    Ok(G::String(text(args).to_uppercase()))
}

fn lower(args: &[G]) -> std::result::Result<G, FuncError> {
    Ok(G::String(text(args).to_lowercase()))
}

fn join(args: &[G]) -> std::result::Result<G, FuncError> {
    let sep = match args.get(1) {
        Some(G::String(s)) => s.clone(),
        _ => return Err(FuncError::ExactlyXArgs("join".into(), 2)),
    };
    let items = match args.first() {
        Some(G::Array(a)) => a.iter().map(|v| text(std::slice::from_ref(v))).collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    Ok(G::String(items.join(&sep)))
}

/// A parsed template with Docker's extra functions (`json`, `upper`, `lower`, `join`).
pub struct Compiled {
    tpl: Template,
    text: String,
}

/// Parses `text`; a syntax error is a usage error naming the template.
pub fn compile(text: &str) -> Result<Compiled> {
    let mut tpl = Template::default();
    tpl.add_funcs(&[("json", json as gtmpl::Func), ("upper", upper), ("lower", lower), ("join", join)]);
    tpl.parse(text).map_err(|e| bad(text, e))?;
    Ok(Compiled { tpl, text: text.to_string() })
}

impl Compiled {
    /// Renders it for one item.
    pub fn render(&self, item: &Value) -> Result<String> {
        self.tpl.render(&Context::from(to_g(item))).map_err(|e| bad(&self.text, e))
    }
}

/// Aligns tab-separated cells into columns three spaces apart, as Docker's tabwriter.
pub fn align(rows: &[String]) -> Vec<String> {
    let cells: Vec<Vec<&str>> = rows.iter().map(|r| r.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for r in &cells {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            let w = c.chars().count();
            match widths.get_mut(i) {
                Some(x) => *x = (*x).max(w),
                None => widths.push(w),
            }
        }
    }
    cells
        .iter()
        .map(|r| {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                line.push_str(c);
                if i + 1 < r.len() {
                    line.push_str(&" ".repeat(widths[i] - c.chars().count() + 3));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// Prints a list in `format`: `default` prints the command's own table; `titles` maps a
/// field to its column title for `table TEMPLATE`'s header.
pub fn print_list(format: &Format, items: &[Value], titles: &[(&str, &str)], default: impl FnOnce() -> Vec<String>) -> Result<()> {
    let lines = match format {
        Format::Default => default(),
        Format::Json => items.iter().map(Value::to_string).collect(),
        Format::Template(t) => {
            let c = compile(t)?;
            items.iter().map(|i| c.render(i)).collect::<Result<_>>()?
        }
        Format::Table(t) => {
            let c = compile(t)?;
            let header: serde_json::Map<String, Value> = titles.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
            let mut rows = vec![c.render(&Value::Object(header))?];
            for i in items {
                rows.push(c.render(i)?);
            }
            align(&rows)
        }
    };
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// Prints inspected objects: a JSON array by default (and for `json`), else the template
/// once per object.
pub fn print_objects(format: &Format, items: &[Value]) -> Result<()> {
    match format {
        Format::Default | Format::Json => println!("{}", serde_json::to_string_pretty(items).unwrap_or_else(|_| "[]".into())),
        Format::Template(t) | Format::Table(t) => {
            let c = compile(t)?;
            for i in items {
                println!("{}", c.render(i)?);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_templates_reach_nested_fields_and_json() {
        let item = json!({"Name": "web", "State": {"Pid": 42, "Running": true}, "Config": {"Cmd": ["httpd", "-f"]}});
        assert_eq!(compile("{{.Name}} {{.State.Pid}}").unwrap().render(&item).unwrap(), "web 42");
        assert_eq!(compile("{{json .Config}}").unwrap().render(&item).unwrap(), r#"{"Cmd":["httpd","-f"]}"#);
        assert_eq!(compile("{{if .State.Running}}up{{end}} {{join .Config.Cmd \" \"}}").unwrap().render(&item).unwrap(), "up httpd -f");
        assert_eq!(compile("{{upper .Name}}").unwrap().render(&item).unwrap(), "WEB");
        assert!(compile("{{.Name").is_err());
    }

    #[test]
    fn formats_parse_as_docker_reads_them() {
        assert_eq!(Format::parse(None), Format::Default);
        assert_eq!(Format::parse(Some("table")), Format::Default);
        assert_eq!(Format::parse(Some("json")), Format::Json);
        assert_eq!(Format::parse(Some("table {{.ID}}\\t{{.Names}}")), Format::Table("{{.ID}}\t{{.Names}}".into()));
        assert_eq!(Format::parse(Some("{{.ID}}")), Format::Template("{{.ID}}".into()));
    }

    #[test]
    fn tables_align_on_tabs() {
        let rows = align(&["NAME\tID".into(), "a-long-name\t1".into()]);
        assert_eq!(rows, ["NAME          ID", "a-long-name   1"]);
    }
}
