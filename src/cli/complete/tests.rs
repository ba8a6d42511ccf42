use super::*;
use clap::CommandFactory;

fn root() -> Command {
    let mut cmd = crate::cli::args::Cli::command();
    cmd.build();
    cmd
}

fn ask(cmd: &Command, words: &[&str]) -> Answer {
    let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    complete(cmd, &words)
}

fn values(a: &Answer) -> Vec<&str> {
    a.candidates.iter().map(|(v, _)| v.as_str()).collect()
}

#[test]
fn an_empty_word_offers_every_visible_subcommand() {
    let a = ask(&root(), &[""]);
    let v = values(&a);
    assert!(
        v.contains(&"list") && v.contains(&"oom") && v.contains(&"completion"),
        "{v:?}"
    );
    assert!(!v.iter().any(|s| s.starts_with("__")), "{v:?}");
    assert_eq!(a.directive, DIRECTIVE_NO_FILES);
    assert_eq!(a.lookup, None);
    let list = a.candidates.iter().find(|(v, _)| v == "list").unwrap();
    assert!(list.1.starts_with("List every VM"), "{:?}", list.1);
}

#[test]
fn a_prefix_narrows_subcommands() {
    assert_eq!(values(&ask(&root(), &["li"])), vec!["list"]);
    assert!(values(&ask(&root(), &["zz"])).is_empty());
}

#[test]
fn output_values_come_from_the_subcommand() {
    assert_eq!(
        values(&ask(&root(), &["list", "-o", ""])),
        vec!["table", "wide", "json", "yaml"]
    );
    assert_eq!(
        values(&ask(&root(), &["oom", "-o", ""])),
        vec!["table", "json"]
    );
    assert_eq!(
        values(&ask(&root(), &["list", "--output", "j"])),
        vec!["json"]
    );
    assert_eq!(
        values(&ask(&root(), &["list", "--output=y"])),
        vec!["--output=yaml"]
    );
}

#[test]
fn global_enum_flags_complete_their_values() {
    let v = ask(&root(), &["--live", ""]);
    assert_eq!(
        values(&v),
        vec!["auto", "agent", "pod-exec", "kubelet", "off"]
    );
    assert_eq!(
        values(&ask(&root(), &["list", "--live", "p"])),
        vec!["pod-exec"]
    );
}

#[test]
fn flags_are_offered_for_a_dash() {
    let a = ask(&root(), &["list", "--"]);
    let v = values(&a);
    for f in [
        "--output",
        "--namespace",
        "--kubeconfig",
        "--context",
        "--demo",
        "--help",
    ] {
        assert!(v.contains(&f), "{f} missing from {v:?}");
    }
    assert!(!v.iter().any(|s| !s.starts_with("--")), "{v:?}");
    let short = ask(&root(), &["list", "-"]);
    let short = values(&short);
    assert!(
        short.contains(&"-o") && short.contains(&"-n") && short.contains(&"-A"),
        "{short:?}"
    );
    assert_eq!(values(&ask(&root(), &["list", "--out"])), vec!["--output"]);
}

#[test]
fn flags_given_once_are_not_offered_again_but_repeatable_ones_are() {
    let a = ask(&root(), &["list", "-o", "json", "--as-group", "g", "--"]);
    let v = values(&a);
    assert!(!v.contains(&"--output"), "{v:?}");
    assert!(v.contains(&"--as-group"), "{v:?}");
}

#[test]
fn namespaces_nodes_and_contexts_are_looked_up() {
    let a = ask(&root(), &["list", "-n", "pr"]);
    assert_eq!(a.lookup, Some(Lookup::Namespaces));
    assert_eq!(a.typed, "pr");
    assert_eq!(
        ask(&root(), &["--namespace", ""]).lookup,
        Some(Lookup::Namespaces)
    );
    assert_eq!(
        ask(&root(), &["--agent-namespace", ""]).lookup,
        Some(Lookup::Namespaces)
    );
    assert_eq!(
        ask(&root(), &["oom", "--node", ""]).lookup,
        Some(Lookup::Nodes)
    );
    assert_eq!(
        ask(&root(), &["--context", ""]).lookup,
        Some(Lookup::Contexts)
    );
    let eq = ask(&root(), &["list", "--namespace=d"]);
    assert_eq!(eq.lookup, Some(Lookup::Namespaces));
    assert_eq!(
        (eq.prefix.as_str(), eq.typed.as_str()),
        ("--namespace=", "d")
    );
}

#[test]
fn looked_up_values_are_filtered_and_prefixed() {
    let mut a = ask(&root(), &["list", "--namespace=d"]);
    a.add_looked_up([
        ("default".to_string(), String::new()),
        ("prod".to_string(), String::new()),
    ]);
    assert_eq!(values(&a), vec!["--namespace=default"]);
}

#[test]
fn connection_flags_before_the_word_are_collected() {
    let a = ask(
        &root(),
        &[
            "--kubeconfig",
            "/k",
            "list",
            "-nprod",
            "--context=c1",
            "--as-group",
            "a",
            "--as-group",
            "b",
            "",
        ],
    );
    assert_eq!(a.flag("kubeconfig"), Some("/k"));
    assert_eq!(a.flag("namespace"), Some("prod"));
    assert_eq!(a.flag("context"), Some("c1"));
    assert_eq!(a.flags["as_group"], vec!["a", "b"]);
}

#[test]
fn path_values_fall_back_to_file_completion() {
    assert_eq!(
        ask(&root(), &["--kubeconfig", ""]).directive,
        DIRECTIVE_FILES
    );
    assert_eq!(ask(&root(), &["oom", "-f", ""]).directive, DIRECTIVE_FILES);
    assert_eq!(ask(&root(), &["--from", "bund"]).directive, DIRECTIVE_FILES);
    // A plain string flag gets nothing, and no file names either.
    let a = ask(&root(), &["--token", ""]);
    assert!(a.candidates.is_empty());
    assert_eq!((a.lookup, a.directive), (None, DIRECTIVE_NO_FILES));
}

#[test]
fn a_name_positional_asks_for_vm_names() {
    // `fix NAME` as the fix command declares it.
    let mut cmd = Command::new("kubectl vmmem")
        .arg(
            Arg::new("namespace")
                .short('n')
                .long("namespace")
                .global(true),
        )
        .subcommand(
            Command::new("fix")
                .about("Apply a memory reservation")
                .arg(Arg::new("name").value_name("NAME"))
                .arg(Arg::new("yes").long("yes").action(ArgAction::SetTrue)),
        );
    cmd.build();
    let a = ask(&cmd, &["fix", "-n", "prod", "db"]);
    assert_eq!(a.lookup, Some(Lookup::VmNames));
    assert_eq!(a.flag("namespace"), Some("prod"));
    assert_eq!(a.typed, "db");
    // Once the name is given nothing more is positional.
    assert_eq!(ask(&cmd, &["fix", "db-01", ""]).lookup, None);
    assert_eq!(
        ask(&cmd, &["fix", "--yes", ""]).lookup,
        Some(Lookup::VmNames)
    );
}

#[test]
fn words_after_a_double_dash_are_not_flags() {
    let a = ask(&root(), &["list", "--", "-"]);
    assert!(a.candidates.is_empty(), "{:?}", a.candidates);
}

#[test]
fn rendering_follows_the_protocol() {
    let mut a = ask(&root(), &["li"]);
    let text = a.render();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("list\t"), "{text}");
    assert_eq!(lines[1], ":4");
    a.candidates = vec![("a\tb\nc".to_string(), "x\ty".to_string())];
    assert_eq!(a.render(), "abc\tx y\n:4\n");
    assert_eq!(ask(&root(), &["zz"]).render(), ":4\n");
}

#[test]
fn no_words_is_the_same_as_an_empty_word() {
    let none = complete(&root(), &[]);
    let empty = ask(&root(), &[""]);
    assert_eq!(values(&none), values(&empty));
}
