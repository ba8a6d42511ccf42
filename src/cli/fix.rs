//! `kubectl vmmem fix NAME`: plan a memory reservation for one VM, show it, ask, apply it,
//! optionally restart the VM and wait for the new pod. Exit 0 when applied or nothing to do,
//! 1 when refused or failed.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::escape::Shown;
use crate::fix::{self, Action, Choice, Plan};
use crate::model::phase::VmPhase;
use crate::model::recommend::Strategy;
use crate::model::report::Flag;
use crate::parse::duration;
use crate::session::signals::{exit_on_signal, StopSignals};
use crate::session::Options;
use crate::units::parse_memory;

/// `--strategy`: a reservation strategy, or `auto` (`None`: the annotation on Harvester, the
/// guest elsewhere).
fn strategy_values() -> impl TypedValueParser<Value = Option<Strategy>> {
    PossibleValuesParser::new([
        PossibleValue::new("auto").help("The annotation on Harvester, the guest elsewhere"),
        PossibleValue::new(Strategy::Annotation.as_str())
            .help("Harvester's `harvesterhci.io/reservedMemory` (and guest = limit - reserve)"),
        PossibleValue::new(Strategy::Guest.as_str()).help("guest = limit - reserve"),
        PossibleValue::new(Strategy::AddedOverhead.as_str()).help(
            "KubeVirt v1.8+: `memory.reservedOverhead.addedOverhead`; the guest keeps its size",
        ),
    ])
    .map(|word| Strategy::from_word(&word))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRunArg {
    /// Print the plan only.
    Client,
    /// Send the patch with dryRun=All and show what the server would store.
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FixOutput {
    Json,
    Yaml,
}

#[derive(Debug, Clone, Args)]
pub struct FixArgs {
    /// The VirtualMachine: NAME or NAMESPACE/NAME.
    pub name: String,
    /// Reserve this much beyond KubeVirt's overhead (default: the recommendation), e.g. 512Mi.
    #[arg(long, value_name = "SIZE", conflicts_with_all = ["remove_limit", "undo"])]
    pub reserve: Option<String>,
    /// Drop limits.memory (no cgroup OOM kill, but no protection for the host either).
    #[arg(long, conflicts_with = "undo")]
    pub remove_limit: bool,
    /// Restore the values the first fix replaced.
    #[arg(long)]
    pub undo: bool,
    /// How to apply the reservation.
    // `::std::option::Option` so clap takes the parser's value as it is ("auto" is `None`).
    #[arg(long, value_name = "STRATEGY", value_parser = strategy_values(), default_value = "auto")]
    pub strategy: ::std::option::Option<Strategy>,
    /// Restart the VM afterwards and wait until its new pod has the planned limit.
    #[arg(long)]
    pub restart: bool,
    /// How long --restart waits, e.g. 90s, 5m.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: String,
    /// Show the plan only (client), or have the server check the patch without storing it.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "client", value_name = "MODE")]
    pub dry_run: Option<DryRunArg>,
    /// Apply without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Print the plan and the result as JSON or YAML.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<FixOutput>,
}

/// `NS/NAME` (kubectl style) or `NAME` in the namespace of the flags or the context.
pub fn split_name<'a>(
    arg: &'a str,
    flag_ns: Option<&'a str>,
    context_ns: &'a str,
) -> anyhow::Result<(&'a str, &'a str)> {
    match arg.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            if let Some(f) = flag_ns.filter(|f| *f != ns) {
                bail!("{arg:?} names namespace {ns:?} but -n says {f:?}");
            }
            Ok((ns, name))
        }
        Some(_) => bail!("{arg:?} is not NAME or NAMESPACE/NAME"),
        None if arg.is_empty() => bail!("the VM name is empty"),
        None => Ok((flag_ns.unwrap_or(context_ns), arg)),
    }
}

pub fn choice(args: &FixArgs) -> anyhow::Result<Choice> {
    let action = if args.undo {
        Action::Undo
    } else if args.remove_limit {
        Action::RemoveLimit
    } else {
        let bytes = match &args.reserve {
            Some(s) => Some(parse_memory(s).with_context(|| format!("--reserve {s:?}"))?),
            None => None,
        };
        Action::Reserve(bytes)
    };
    Ok(Choice {
        action,
        strategy: args.strategy,
    })
}

pub fn run(opts: &Options, args: &FixArgs) -> anyhow::Result<ExitCode> {
    if opts.from_files().is_some() {
        bail!("fix needs a live cluster: --from reads files, which cannot be changed");
    }
    if opts.readonly && args.dry_run.is_none() {
        bail!("--readonly forbids changing the VM; add --dry-run to see the plan");
    }
    let choice = choice(args)?;
    let timeout = duration::parse(&args.timeout).context("--timeout")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        // Listening from the start, so no signal is missed: one during the reading round is the
        // round's to handle (it deletes its agents); any later one ends fix at once.
        let stops = StopSignals::new().context("listening for SIGINT, SIGTERM and SIGHUP")?;
        let (opened, context_ns) = crate::session::source::connect_only(opts).await?;
        let code = run_with(&opened, &context_ns, opts, args, choice, timeout, stops).await;
        opened.close().await;
        code
    })
}

/// Everything after connecting; `stops` listens for the terminating signals since the start.
pub async fn run_with(
    opened: &crate::session::source::Opened,
    context_ns: &str,
    opts: &Options,
    args: &FixArgs,
    choice: Choice,
    timeout: Duration,
    stops: StopSignals,
) -> anyhow::Result<ExitCode> {
    let (ns, name) = split_name(&args.name, opts.namespaces.named(), context_ns)?;
    let mut report = Report::new(args.output);
    let client = &opened.client;
    let (target, evidence) =
        match crate::session::fix::fix_target(opts, &opened.conn, ns, name).await {
            Ok((t, evidence, warnings)) => {
                // What could not be read live (the plan's own notes say what it means for the VM).
                if !warnings.is_empty() {
                    report.set("warnings", json!(warnings));
                }
                (t, evidence)
            }
            Err(e) => return report.fail(&crate::session::error_chain(&e)),
        };
    // The agents of the reading round are gone: from here a signal ends fix as it comes (the
    // patch carries its resourceVersion, so a request cut short is all or nothing).
    exit_on_signal(stops);
    let plan = match fix::plan(&target, &choice) {
        Ok(p) => p,
        Err(r) => return report.fail(&format!("refused: {r}")),
    };
    if let Err(e) = report.plan(&plan) {
        return report.fail(&format!(
            "cannot show the plan on standard output ({e}); nothing was applied"
        ));
    }
    let run = Run {
        client,
        args,
        plan: &plan,
        target: &target,
        timeout,
    };
    if !plan.has_changes() {
        return run.nothing_to_do(report).await;
    }
    if args.dry_run == Some(DryRunArg::Client) {
        report.note("dry run (client): nothing was sent");
        return report.finish(ExitCode::SUCCESS);
    }
    let server_dry_run = args.dry_run == Some(DryRunArg::Server);
    if !args.yes && !server_dry_run {
        if !std::io::stdin().is_terminal() {
            return report
                .fail("not applied: stdin is not a terminal; add --yes to apply without asking");
        }
        if !confirm(&format!("Apply this change to {}?", plan.vm_ref()))? {
            return report.fail("not applied");
        }
    }
    run.apply(&choice, &evidence, server_dry_run, report).await
}

/// One `fix` past its plan: what it acts on and how.
struct Run<'a> {
    client: &'a kube::Client,
    args: &'a FixArgs,
    plan: &'a Plan,
    target: &'a fix::Target,
    timeout: Duration,
}

impl Run<'_> {
    /// No change to make; a change made earlier without --restart may still wait for one.
    async fn nothing_to_do(&self, mut report: Report) -> anyhow::Result<ExitCode> {
        report.note("nothing to do");
        let args = self.args;
        if !(args.restart
            && args.dry_run.is_none()
            && self.target.row.has_flag(Flag::RestartPending))
        {
            return report.finish(ExitCode::SUCCESS);
        }
        if !args.yes && !std::io::stdin().is_terminal() {
            return report.fail(
                "not restarted: stdin is not a terminal; add --yes to restart without asking",
            );
        }
        if !args.yes
            && !confirm(&format!(
                "Restart {} to apply its pending change?",
                self.plan.vm_ref()
            ))?
        {
            return report.fail("not restarted");
        }
        restart(self.client, self.plan, self.timeout, report).await
    }

    /// Send the patch (replanning on a conflict), say what changed, and restart if asked.
    async fn apply(
        &self,
        choice: &Choice,
        evidence: &fix::Evidence,
        server_dry_run: bool,
        mut report: Report,
    ) -> anyhow::Result<ExitCode> {
        let plan = self.plan;
        let outcome = fix::apply_or_replan(
            self.client,
            plan,
            choice,
            fix::Options { server_dry_run },
            evidence,
        )
        .await;
        let applied = match outcome {
            Ok(fix::Outcome::Applied(a)) => a,
            Ok(fix::Outcome::Conflict { message, fresh }) => {
                // Someone changed the VM since it was read: show the plan for what it is now.
                report.set("conflict", json!(message));
                match fresh {
                    Ok(p) => report.new_plan(&p),
                    Err(why) => report.note(&format!("no new plan: {why}")),
                }
                return report.fail(&format!(
                    "{} changed since it was read ({message}); nothing was applied: review the new plan and run again",
                    plan.vm_ref()
                ));
            }
            Err(e) => return report.fail(&format!("applying to {}: {e}", plan.vm_ref())),
        };
        report.set(
            "applied",
            serde_json::to_value(&applied).unwrap_or(Value::Null),
        );
        let dry = if server_dry_run {
            " (server dry run: nothing was stored)"
        } else {
            ""
        };
        report.note(&format!(
            "virtualmachine.kubevirt.io/{} patched{dry}",
            plan.name
        ));
        for d in &applied.differences {
            report.note(&format!("note: {d}"));
        }
        if self.args.restart && !server_dry_run {
            if self.target.row.phase == VmPhase::Stopped {
                report.note(
                    "the VM is stopped: it starts with the new values next time (no restart)",
                );
            } else {
                return restart(self.client, plan, self.timeout, report).await;
            }
        }
        report.finish(ExitCode::SUCCESS)
    }
}

/// Restart the VM, print progress on stderr, and check the new pod's limit against the plan.
async fn restart(
    client: &kube::Client,
    plan: &Plan,
    timeout: Duration,
    mut report: Report,
) -> anyhow::Result<ExitCode> {
    let mut progress = |line: &str| eprintln!("restart: {}", Shown(line));
    match fix::restart_and_wait(client, plan, timeout, &mut progress).await {
        Ok(r) => {
            report.set("restart", serde_json::to_value(&r).unwrap_or(Value::Null));
            if !r.matches_plan {
                return report.fail(&format!(
                    "the new pod {}'s memory limit is {} bytes, not the planned {} bytes",
                    r.pod,
                    r.pod_limit_bytes.map_or("none".into(), |b| b.to_string()),
                    plan.after
                        .expected_pod_limit_bytes
                        .map_or("none".into(), |b| b.to_string())
                ));
            }
            report.note(&format!(
                "restarted: pod {} has the planned memory limit",
                r.pod
            ));
            report.finish(ExitCode::SUCCESS)
        }
        // The request went through: say so, not "restart failed".
        Err(e @ fix::ApplyError::WaitAfterRestart { .. }) => report.fail(&e.to_string()),
        Err(e) => report.fail(&format!("restarting {}: {e}", plan.vm_ref())),
    }
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    let mut err = std::io::stderr().lock();
    write!(err, "{} [y/N] ", Shown(question))?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// Text on stdout after the plan was shown: a reader that went away (`| head`) must not stop a
/// change already under way, so write errors are ignored here (a panic in `println!` would).
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Collects what happened; prints text as it goes, or one JSON/YAML document at the end.
struct Report {
    format: Option<FixOutput>,
    doc: serde_json::Map<String, Value>,
}

impl Report {
    fn new(format: Option<FixOutput>) -> Report {
        let mut doc = serde_json::Map::new();
        doc.insert("kind".into(), json!("VmMemoryFix"));
        Report { format, doc }
    }

    /// Show the plan; an error when it cannot be shown (stdout closed), so nothing is applied
    /// unseen.
    fn plan(&mut self, p: &Plan) -> std::io::Result<()> {
        self.doc.insert(
            "plan".into(),
            serde_json::to_value(p).unwrap_or(Value::Null),
        );
        if self.format.is_none() {
            let mut out = std::io::stdout().lock();
            out.write_all(fix::show::plan_text(p).as_bytes())?;
            out.flush()?;
        }
        Ok(())
    }

    fn new_plan(&mut self, p: &Plan) {
        self.doc.insert(
            "newPlan".into(),
            serde_json::to_value(p).unwrap_or(Value::Null),
        );
        if self.format.is_none() {
            say(&format!(
                "\nThe VM as it is now:\n{}",
                fix::show::plan_text(p)
            ));
        }
    }

    fn set(&mut self, key: &str, v: Value) {
        self.doc.insert(key.into(), v);
    }

    fn note(&mut self, line: &str) {
        if self.format.is_none() {
            say(&format!("{}\n", Shown(line)));
        } else {
            eprintln!("{}", Shown(line));
        }
    }

    fn fail(mut self, sentence: &str) -> anyhow::Result<ExitCode> {
        eprintln!("error: {}", Shown(sentence));
        self.doc.insert("error".into(), json!(sentence));
        self.finish(ExitCode::FAILURE)
    }

    fn finish(self, code: ExitCode) -> anyhow::Result<ExitCode> {
        let doc = Value::Object(self.doc);
        let text = match self.format {
            None => return Ok(code),
            Some(FixOutput::Json) => serde_json::to_string_pretty(&doc)? + "\n",
            Some(FixOutput::Yaml) => crate::output::yaml::to_string(&doc)?,
        };
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_namespaces() {
        assert_eq!(split_name("vm1", None, "ctx").unwrap(), ("ctx", "vm1"));
        assert_eq!(
            split_name("vm1", Some("prod"), "ctx").unwrap(),
            ("prod", "vm1")
        );
        assert_eq!(
            split_name("prod/vm1", None, "ctx").unwrap(),
            ("prod", "vm1")
        );
        assert_eq!(
            split_name("prod/vm1", Some("prod"), "ctx").unwrap(),
            ("prod", "vm1")
        );
        assert!(split_name("prod/vm1", Some("dev"), "ctx").is_err());
        assert!(split_name("a/b/c", None, "ctx").is_err());
        assert!(split_name("/vm1", None, "ctx").is_err());
    }
}
