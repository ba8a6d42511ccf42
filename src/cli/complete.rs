//! The `__complete` protocol kubectl ≥ 1.26 speaks with `kubectl_complete-vmmem`: the words after
//! `vmmem` come in (the last one is the word being typed, possibly empty); candidates go out one
//! per line (`value\tdescription`), then a Cobra directive line such as `:4`.
//!
//! This file is pure: it walks clap's command tree and says what to offer. Values only the
//! cluster or the kubeconfig know (namespaces, VM and node names, contexts) are asked for as a
//! [`Lookup`], which `complete_cluster` answers.

use std::collections::BTreeMap;

use clap::{Arg, ArgAction, Command, ValueHint};

/// Cobra's `ShellCompDirectiveDefault`: the shell may fall back to file names.
pub const DIRECTIVE_FILES: u32 = 0;
/// Cobra's `ShellCompDirectiveNoFileComp`: offer only our candidates.
pub const DIRECTIVE_NO_FILES: u32 = 4;

/// Values that need the kubeconfig or the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Namespaces,
    /// VirtualMachines in the namespace the words name (else the context's).
    VmNames,
    Nodes,
    Contexts,
    Clusters,
    Users,
}

/// What to answer for one completion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `(value, description)`, already filtered by the typed prefix.
    pub candidates: Vec<(String, String)>,
    /// Ask the cluster or kubeconfig for more; their values get `prefix` in front.
    pub lookup: Option<Lookup>,
    /// Typed text the looked-up values must start with.
    pub typed: String,
    /// Put in front of every looked-up value (`--namespace=` when completing `--namespace=x`).
    pub prefix: String,
    pub directive: u32,
    /// Flag values seen before the word being completed, by clap argument id (for connecting).
    pub flags: BTreeMap<String, Vec<String>>,
}

/// The first line of an argument's or command's help, for descriptions.
fn summary(text: Option<&clap::builder::StyledStr>) -> String {
    text.map(|s| s.to_string())
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_string()
}

fn takes_value(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
}

fn find_long<'a>(cmd: &'a Command, name: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
    })
}

fn find_short(cmd: &Command, c: char) -> Option<&Arg> {
    cmd.get_arguments().find(|a| a.get_short() == Some(c))
}

fn find_sub<'a>(cmd: &'a Command, name: &str) -> Option<&'a Command> {
    cmd.get_subcommands()
        .find(|s| s.get_name() == name || s.get_all_aliases().any(|a| a == name))
}

/// State after reading the words before the one being completed.
struct Walk<'a> {
    cmd: &'a Command,
    /// A flag whose value is the next word.
    pending: Option<&'a Arg>,
    positionals: usize,
    after_double_dash: bool,
    flags: BTreeMap<String, Vec<String>>,
}

fn walk<'a>(root: &'a Command, done: &[String]) -> Walk<'a> {
    let mut w = Walk {
        cmd: root,
        pending: None,
        positionals: 0,
        after_double_dash: false,
        flags: BTreeMap::new(),
    };
    for word in done {
        if let Some(arg) = w.pending.take() {
            record(&mut w.flags, arg, word);
            continue;
        }
        if w.after_double_dash {
            w.positionals += 1;
            continue;
        }
        if word == "--" {
            w.after_double_dash = true;
        } else if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            if let Some(arg) = find_long(w.cmd, name) {
                match value {
                    Some(v) => record(&mut w.flags, arg, v),
                    None if takes_value(arg) => w.pending = Some(arg),
                    None => record(&mut w.flags, arg, "true"),
                }
            }
        } else if word.len() > 1 && word.starts_with('-') {
            let chars: Vec<char> = word.chars().skip(1).collect();
            for (i, c) in chars.iter().enumerate() {
                let Some(arg) = find_short(w.cmd, *c) else {
                    break;
                };
                if takes_value(arg) {
                    let rest: String = chars[i + 1..].iter().collect();
                    let rest = rest.strip_prefix('=').unwrap_or(&rest).to_string();
                    if rest.is_empty() {
                        w.pending = Some(arg);
                    } else {
                        record(&mut w.flags, arg, &rest);
                    }
                    break;
                }
                record(&mut w.flags, arg, "true");
            }
        } else if let Some(sub) = find_sub(w.cmd, word).filter(|_| w.positionals == 0) {
            w.cmd = sub;
        } else {
            w.positionals += 1;
        }
    }
    w
}

fn record(flags: &mut BTreeMap<String, Vec<String>>, arg: &Arg, value: &str) {
    flags
        .entry(arg.get_id().to_string())
        .or_default()
        .push(value.to_string());
}

/// What the cluster or kubeconfig knows about a flag's values, by the flag's long name.
fn lookup_for_flag(arg: &Arg) -> Option<Lookup> {
    match arg.get_long()? {
        "namespace" | "agent-namespace" => Some(Lookup::Namespaces),
        "node" => Some(Lookup::Nodes),
        "context" => Some(Lookup::Contexts),
        "cluster" => Some(Lookup::Clusters),
        "user" => Some(Lookup::Users),
        _ => None,
    }
}

fn is_path(arg: &Arg) -> bool {
    matches!(
        arg.get_value_hint(),
        ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath
    )
}

/// Candidates for the value of `arg`, each written after `prefix`.
fn flag_values(
    arg: &Arg,
    typed: &str,
    prefix: &str,
    flags: BTreeMap<String, Vec<String>>,
) -> Answer {
    let mut answer = Answer {
        candidates: Vec::new(),
        lookup: lookup_for_flag(arg),
        typed: typed.to_string(),
        prefix: prefix.to_string(),
        directive: DIRECTIVE_NO_FILES,
        flags,
    };
    for v in arg.get_possible_values() {
        if v.is_hide_set() || !v.get_name().starts_with(typed) {
            continue;
        }
        answer
            .candidates
            .push((format!("{prefix}{}", v.get_name()), summary(v.get_help())));
    }
    if answer.candidates.is_empty() && answer.lookup.is_none() && is_path(arg) && prefix.is_empty()
    {
        answer.directive = DIRECTIVE_FILES;
    }
    answer
}

/// Flags of `cmd` that start with `typed` (`--long` always, `-s` when only `-` or `-s` is typed).
fn flag_names(
    cmd: &Command,
    typed: &str,
    flags: &BTreeMap<String, Vec<String>>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        if arg.is_hide_set() || arg.is_positional() {
            continue;
        }
        let repeatable = matches!(arg.get_action(), ArgAction::Append | ArgAction::Count);
        if flags.contains_key(arg.get_id().as_str()) && !repeatable {
            continue;
        }
        let help = summary(arg.get_help());
        if let Some(long) = arg.get_long() {
            let name = format!("--{long}");
            if name.starts_with(typed) {
                out.push((name, help.clone()));
            }
        }
        if let Some(short) = arg.get_short() {
            let name = format!("-{short}");
            if !typed.starts_with("--") && name.starts_with(typed) {
                out.push((name, help));
            }
        }
    }
    out
}

/// Does this positional hold a VirtualMachine's name?
fn is_vm_name(arg: &Arg) -> bool {
    arg.get_id().as_str().eq_ignore_ascii_case("name")
        || arg
            .get_value_names()
            .is_some_and(|n| n.iter().any(|v| v.as_str().eq_ignore_ascii_case("name")))
}

/// Answer a completion request. `words` are the words after `vmmem`; the last is the one being
/// typed (an empty word when the user typed a space). `root` must be built (`Command::build`),
/// so global flags reach every subcommand.
pub fn complete(root: &Command, words: &[String]) -> Answer {
    let (typed, done) = match words.split_last() {
        Some((last, rest)) => (last.as_str(), rest),
        None => ("", words),
    };
    let w = walk(root, done);
    if let Some(arg) = w.pending {
        return flag_values(arg, typed, "", w.flags);
    }
    if !w.after_double_dash && typed.starts_with("--") {
        if let Some((name, value)) = typed[2..].split_once('=') {
            return match find_long(w.cmd, name).filter(|a| takes_value(a)) {
                Some(arg) => flag_values(arg, value, &format!("--{name}="), w.flags),
                None => Answer::empty(w.flags),
            };
        }
    }
    if !w.after_double_dash && typed.starts_with('-') {
        let mut answer = Answer::empty(w.flags);
        answer.candidates = flag_names(w.cmd, typed, &answer.flags);
        return answer;
    }
    let mut answer = Answer::empty(w.flags);
    answer.typed = typed.to_string();
    if w.positionals == 0 && !w.after_double_dash {
        for sub in w.cmd.get_subcommands() {
            if sub.is_hide_set() || !sub.get_name().starts_with(typed) {
                continue;
            }
            answer
                .candidates
                .push((sub.get_name().to_string(), summary(sub.get_about())));
        }
    }
    let positional = w
        .cmd
        .get_positionals()
        .filter(|a| !a.is_hide_set())
        .nth(w.positionals)
        .or_else(|| {
            w.cmd
                .get_positionals()
                .last()
                .filter(|a| matches!(a.get_action(), ArgAction::Append))
        });
    if let Some(arg) = positional {
        if is_vm_name(arg) {
            answer.lookup = Some(Lookup::VmNames);
        } else if is_path(arg) {
            answer.directive = DIRECTIVE_FILES;
        }
    }
    answer
}

impl Answer {
    fn empty(flags: BTreeMap<String, Vec<String>>) -> Answer {
        Answer {
            candidates: Vec::new(),
            lookup: None,
            typed: String::new(),
            prefix: String::new(),
            directive: DIRECTIVE_NO_FILES,
            flags,
        }
    }

    /// The last value given for a flag (by clap argument id).
    pub fn flag(&self, id: &str) -> Option<&str> {
        self.flags
            .get(id)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Add looked-up values that start with the typed text.
    pub fn add_looked_up(&mut self, values: impl IntoIterator<Item = (String, String)>) {
        for (value, help) in values {
            if value.starts_with(&self.typed) {
                self.candidates
                    .push((format!("{}{value}", self.prefix), help));
            }
        }
    }

    /// The protocol's text: one candidate per line, then `:directive`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (value, help) in &self.candidates {
            // A tab or newline inside a value would break the line protocol.
            let value: String = value.chars().filter(|c| !c.is_control()).collect();
            let help: String = help
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            out.push_str(&value);
            if !help.is_empty() {
                out.push('\t');
                out.push_str(&help);
            }
            out.push('\n');
        }
        out.push(':');
        out.push_str(&self.directive.to_string());
        out.push('\n');
        out
    }
}

#[cfg(test)]
#[path = "complete/tests.rs"]
mod tests;
