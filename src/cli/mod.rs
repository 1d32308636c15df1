//! The CLI layer: flag definitions, dispatch to `sealer::ops`, and all terminal output.
//! `reference.rs` renders `docs/cli.md` from the flag definitions; only the test suite
//! (`tests/it/cli_docs.rs`) compiles it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod import;
mod overview;
mod preflight;
mod progress;
mod refresh;
mod render;
mod status;

use args::{Cli, Command, PlanFormat, RenderArgs, StateCommand};
use clap::Parser;
use sealer::Result;
use sealer::ops::{self, Settings};
use std::io::{Read, Write};
use std::process::ExitCode;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                // Every error exits 1, usage errors included (spec README, "Error format").
                _ => 1,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json_errors = cli.command.json_errors();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            // Machines reading stdout get the error there too; people read stderr.
            if let Some(style) = json_errors {
                let value = serde_json::json!({
                    "type": "error",
                    "errors": error
                        .diagnostics()
                        .iter()
                        .map(sealer::plan::json::error_json)
                        .collect::<Vec<_>>(),
                });
                let text = match style {
                    args::JsonErrors::Object => to_pretty(&value),
                    args::JsonErrors::Line => value.to_string(),
                };
                let _ = out(&format!("{text}\n"));
            }
            eprint!("{}", error.render());
            match error.kind() {
                sealer::diag::ErrorKind::StalePlan => ExitCode::from(EXIT_STALE_PLAN),
                sealer::diag::ErrorKind::Failed => ExitCode::from(1),
            }
        }
    }
}

/// `sealer apply PLANFILE` refused the plan as stale: make a new one (docs/plan.md).
const EXIT_STALE_PLAN: u8 = 3;

fn run(cli: Cli) -> Result<ExitCode> {
    let command = match cli.command {
        // Completion scripts need no SEALER_HOME: shells load them anywhere, at start-up.
        Command::Completions(args) => return out(&completions(args.shell)),
        command => command,
    };
    let settings = Settings::from_env()?;
    match command {
        Command::Completions(args) => out(&completions(args.shell)),
        Command::Build(args) => {
            let options = args.into_options()?;
            let outcome =
                runtime()?.block_on(ops::build(&settings, &options, |base, platform| {
                    let settings = settings.clone();
                    async move { ops::pull_base(&settings, &base, &platform).await }
                }))?;
            for warning in &outcome.warnings {
                eprint!("{}", warning.render());
            }
            // The ID is what `sealer images` shows (and `docker build -q` prints); the
            // manifest digest is what a registry names the image by once pushed.
            let id = outcome.image.id();
            for name in &outcome.names {
                eprintln!(
                    "built {name}: ID {}, manifest digest {}",
                    render::short_id(id),
                    outcome.image.digest()
                );
            }
            out(&format!("{id}\n"))
        }
        Command::Images(args) => {
            let rows = ops::list_images(&settings)?;
            if args.json {
                out(&format!("{}\n", to_pretty(&rows)))
            } else if args.quiet {
                out(&rows
                    .iter()
                    .map(|r| format!("{}\n", r.name))
                    .collect::<String>())
            } else {
                out(&render::images_table(&rows))
            }
        }
        Command::Inspect(args) => {
            let value = ops::inspect_image(&settings, &args.name)?;
            out(&format!("{}\n", to_pretty(&value)))
        }
        Command::Tag(args) => {
            ops::tag_image(&settings, &args.source, &args.target)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rmi(args) => {
            let removed = ops::remove_images(&settings, &args.names)?;
            out(&removed
                .iter()
                .map(|r| format!("untagged {r}\n"))
                .collect::<String>())
        }
        Command::Save(args) => {
            let name = ops::save_image(&settings, &args.name, &args.output)?;
            eprintln!("saved {name} to {}", args.output.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Load(args) => {
            let platform = args::parse_platform(args.platform.as_deref())?;
            let names = ops::load_images(
                &settings,
                &args.input,
                args.name.as_deref(),
                platform.as_ref(),
            )?;
            out(&names
                .iter()
                .map(|r| format!("loaded {r}\n"))
                .collect::<String>())
        }
        Command::Login(args) => {
            let password = read_password(args.password_stdin)?;
            runtime()?.block_on(ops::login(
                &settings,
                &args.registry,
                &args.username,
                &password,
                args.insecure,
            ))?;
            eprintln!("login succeeded for {}", args.registry);
            Ok(ExitCode::SUCCESS)
        }
        Command::Logout(args) => {
            let removed = ops::logout(&settings, &args.registry)?;
            if removed {
                eprintln!("removed the credentials of {}", args.registry);
            } else {
                eprintln!("no credentials stored for {}", args.registry);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Push(args) => {
            let report = runtime()?.block_on(ops::push(&settings, &args.name, args.insecure))?;
            eprintln!(
                "pushed {} ({} blobs uploaded, {} already present)",
                report.reference, report.uploaded, report.skipped
            );
            out(&format!("{}\n", report.digest))
        }
        Command::Validate(args) => {
            let compiled = compile_statelessly(&settings, &args.file)?;
            let cf = &compiled.clusterfile;
            let plural = |n: usize, one: &str, many: &str| {
                format!("{n} {}", if n == 1 { one } else { many })
            };
            eprintln!(
                "{} is valid: cluster \"{}\", {}, {}",
                args.file.display(),
                cf.name(),
                plural(compiled.input.hosts.len(), "host", "hosts"),
                plural(compiled.resources.len(), "resource", "resources")
            );
            if args.json {
                return out(&format!(
                    "{}\n",
                    to_pretty(&serde_json::json!({
                        "cluster": cf.name(),
                        "hosts": compiled.input.hosts.len(),
                        "resources": compiled.resources.len(),
                        "errors": [],
                    }))
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph(args) => {
            let compiled = compile_statelessly(&settings, &args.file)?;
            out(&sealer::graph::to_dot(
                compiled.clusterfile.name(),
                &compiled.resources,
            ))
        }
        Command::Plan(args) if args.refresh_only => {
            let settings = settings.with_state_path(args.state.clone());
            refresh_only(&settings, &args)
        }
        Command::Plan(args) => {
            let settings = settings.with_state_path(args.state.clone());
            let options = sealer::plan::PlanOptions {
                targets: args.targets.clone(),
                replace: args.replace.clone(),
                destroy: args.destroy,
                max_unavailable: usize::from(args.max_unavailable),
                rootfs_distribution: args.rootfs_distribution.into(),
            };
            let reads = read_settings(10);
            let outcome = runtime()?.block_on(ops::plan_refreshed(
                &settings,
                &args.file,
                &options,
                args.refresh.then_some(&reads),
                pull(&settings),
            ));
            let outcome = match outcome {
                Ok((outcome, refresh)) => {
                    if let Some(refresh) = &refresh {
                        eprintln!("{}", refresh::summary_line(refresh));
                    }
                    outcome
                }
                Err(error) if args.render.format() == PlanFormat::Json => {
                    // Machines get an object even when the plan fails; people get the error.
                    let cluster = ops::cluster_of(&args.file).ok();
                    let value =
                        sealer::plan::json::errors_json(cluster.as_deref(), error.diagnostics());
                    let _ = out(&format!("{}\n", to_pretty(&value)));
                    return Err(error);
                }
                Err(error) => return Err(error),
            };
            if let Some(running) = &outcome.running {
                eprintln!(
                    "warning: `sealer {}` is running on cluster \"{}\" ({running}): this plan will be stale when it ends; plan again then",
                    running.operation,
                    outcome.plan().cluster
                );
            }
            if let Some(path) = &args.out {
                outcome.saved.write(path)?;
                eprintln!(
                    "saved the plan to {}; apply it with `sealer apply {}`",
                    path.display(),
                    path.display()
                );
            }
            render_plan(outcome.plan(), &args.render)?;
            let changes = outcome.plan().has_changes();
            // The process ends here: freeing a 5,000-host plan object by object costs a
            // quarter of the command's time, and the OS reclaims it at once.
            std::mem::forget(outcome);
            if args.detailed_exitcode && changes {
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply(args) if args.refresh_only => {
            let settings = settings.with_state_path(args.exec.state.clone());
            apply_refresh_only(&settings, &args)
        }
        Command::Check(args) => {
            let settings = settings.with_state_path(args.state.clone());
            let exec = ops::ExecSettings {
                parallelism: args.parallelism,
                step_timeout: ops::READ_TIMEOUT,
                lock_timeout: std::time::Duration::ZERO,
                accept_new_host_keys: args.accept_new_host_keys,
            };
            let skip = args::skipped_checks(&args.skip_checks);
            let report = runtime()?.block_on(ops::check_hosts(
                &settings,
                &args.file,
                &exec,
                &skip,
                pull(&settings),
            ))?;
            if args.json {
                out(&format!("{}\n", to_pretty(&preflight::json(&report))))?;
            } else {
                out(&preflight::text(&report))?;
            }
            if !report.passed() {
                let error = preflight::failed(&report, false);
                if args.json {
                    // The report on stdout already says what failed: no second object.
                    eprint!("{}", error.render());
                    return Ok(ExitCode::from(1));
                }
                return Err(error);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply(args) => {
            let settings = settings.with_state_path(args.exec.state.clone());
            let rt = runtime()?;
            let lock = lock_timeout(&args.exec);
            let reads = read_settings(args.exec.parallelism);
            let (session, prepared) = match (&args.plan_file, &args.file) {
                (Some(plan_file), _) => {
                    let cluster = sealer::plan::saved::SavedPlan::read(plan_file)?
                        .plan
                        .cluster;
                    let session = begin_session(&settings, &cluster, "apply", lock)?;
                    let prepared = rt.block_on(ops::prepare_saved(
                        &settings,
                        &session,
                        plan_file,
                        pull(&settings),
                    ))?;
                    (session, prepared)
                }
                (None, file) => {
                    let file = file.clone().unwrap_or_else(|| "Clusterfile".into());
                    let session =
                        begin_session(&settings, &ops::cluster_of(&file)?, "apply", lock)?;
                    let options = sealer::plan::PlanOptions {
                        targets: args.targets.clone(),
                        replace: args.replace.clone(),
                        destroy: false,
                        max_unavailable: usize::from(args.max_unavailable),
                        rootfs_distribution: args.rootfs_distribution.into(),
                    };
                    let prepared = rt.block_on(ops::prepare_apply(
                        &settings,
                        &file,
                        &options,
                        args.refresh.then_some(&reads),
                        pull(&settings),
                    ))?;
                    (session, prepared)
                }
            };
            let confirm = args.plan_file.is_none() && !args.exec.auto_approve;
            let skip = args::skipped_checks(&args.skip_checks);
            execute(
                &rt,
                &settings,
                session,
                prepared,
                &args.exec,
                confirm,
                Some(&skip),
            )
        }
        Command::Run(args) => {
            let settings = settings.with_state_path(args.exec.state.clone());
            let rt = runtime()?;
            let cluster = ops::cluster_name(&settings, args.cluster.as_deref())?;
            let session = begin_session(&settings, &cluster, "run", lock_timeout(&args.exec))?;
            let prepared = rt.block_on(ops::prepare_run(
                &settings,
                &args.image,
                Some(&cluster),
                pull(&settings),
            ))?;
            let confirm = !args.exec.auto_approve;
            // An app image creates nothing on a host: preflight has nothing to ask.
            let skip = std::collections::BTreeSet::new();
            execute(
                &rt,
                &settings,
                session,
                prepared,
                &args.exec,
                confirm,
                Some(&skip),
            )
        }
        Command::Destroy(args) => {
            let settings = settings.with_state_path(args.exec.state.clone());
            let rt = runtime()?;
            let cluster = match (&args.file, &args.cluster) {
                (Some(file), _) => ops::cluster_of(file)?,
                (None, cluster) => ops::cluster_name(&settings, cluster.as_deref())?,
            };
            let session = begin_session(&settings, &cluster, "destroy", lock_timeout(&args.exec))?;
            let prepared = rt.block_on(ops::prepare_destroy(
                &settings,
                args.file.as_deref(),
                Some(&cluster),
                pull(&settings),
            ))?;
            let confirm = !args.exec.auto_approve;
            execute(&rt, &settings, session, prepared, &args.exec, confirm, None)
        }
        Command::Import(args) => {
            let settings = settings.with_state_path(args.state.clone());
            let exec = ops::ExecSettings {
                parallelism: args.parallelism,
                step_timeout: args.timeout,
                lock_timeout: args.lock_timeout,
                accept_new_host_keys: args.accept_new_host_keys,
            };
            let imported =
                runtime()?.block_on(ops::import(&settings, &args.file, &exec, pull(&settings)))?;
            if args.json {
                out(&format!("{}\n", to_pretty(&import::json(&imported))))?;
            } else {
                out(&import::text(&imported))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) => {
            let settings = settings.with_state_path(args.state.clone());
            let exec = ops::ExecSettings {
                parallelism: args.parallelism,
                step_timeout: args.timeout,
                lock_timeout: std::time::Duration::ZERO,
                accept_new_host_keys: false,
            };
            let status = runtime()?.block_on(ops::status(
                &settings,
                args.cluster.as_deref(),
                args.file.as_deref(),
                &exec,
            ))?;
            if args.json {
                out(&format!("{}\n", to_pretty(&status::json(&status))))?;
            } else {
                out(&status::text(&status))?;
            }
            Ok(if status.healthy() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(status::EXIT_UNHEALTHY)
            })
        }
        Command::Show(args) => {
            let saved = ops::show_plan(&args.file)?;
            render_plan(&saved.plan, &args.render)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::State(StateCommand::List(args)) => {
            let settings = settings.with_state_path(args.select.state);
            let listing = ops::list_state(&settings, args.select.cluster.as_deref())?;
            if args.json {
                return out(&format!(
                    "{}\n",
                    to_pretty(&render::state_listing_json(&listing))
                ));
            }
            out(&render::state_listing(&listing, &settings.state_path))
        }
        Command::State(StateCommand::Show(args)) => {
            let settings = settings.with_state_path(args.select.state);
            let recorded =
                ops::show_state(&settings, args.select.cluster.as_deref(), &args.address)?;
            if args.json {
                out(&format!(
                    "{}\n",
                    to_pretty(&render::recorded_json(&recorded))
                ))
            } else {
                out(&render::recorded_text(&recorded))
            }
        }
        Command::State(StateCommand::Unlock(args)) => {
            let settings = settings.with_state_path(args.select.state);
            let info = ops::unlock_state(&settings, args.select.cluster.as_deref(), &args.lock_id)?;
            eprintln!("removed the lock held by {info}");
            Ok(ExitCode::SUCCESS)
        }
        Command::State(StateCommand::History(args)) => {
            let settings = settings.with_state_path(args.select.state);
            let lines = ops::state_history(&settings, args.select.cluster.as_deref())?;
            if args.json {
                out(&format!("{}\n", to_pretty(&serde_json::json!(lines))))
            } else {
                out(&render::history_text(&lines))
            }
        }
        Command::State(StateCommand::Migrate(args)) => {
            let settings = settings.with_state_path(args.state);
            let copied = ops::migrate_state(&settings, &args.to, args.lock_timeout)?;
            let to = sealer::state::display_location(&args.to);
            for c in &copied {
                if c.copied {
                    eprintln!(
                        "copied cluster {} (lineage {}, serial {})",
                        c.name, c.lineage, c.serial
                    );
                } else {
                    eprintln!(
                        "cluster {} is already in {to} (lineage {}, serial {})",
                        c.name, c.lineage, c.serial
                    );
                }
            }
            eprintln!(
                "The state is in {to}; use it with --state or SEALER_STATE. The source was not changed."
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::State(StateCommand::Rm(args)) => {
            let settings = settings.with_state_path(args.select.state);
            let serial = ops::remove_from_state(
                &settings,
                args.select.cluster.as_deref(),
                &args.addresses,
                args.lock_timeout,
            )?;
            eprintln!(
                "Removed {} from the state (serial {serial}); nothing on the hosts changed.",
                args.addresses.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Pull(args) => {
            let platform = args::parse_platform(args.platform.as_deref())?;
            let (reference, image) = runtime()?.block_on(ops::pull(
                &settings,
                &args.name,
                platform.as_ref(),
                args.insecure,
            ))?;
            eprintln!("pulled {reference}");
            out(&format!("{}\n", image.digest()))
        }
    }
}

/// The completion script of `shell`, generated from the clap definitions.
fn completions(shell: args::Shell) -> String {
    use clap::CommandFactory;
    let shell = match shell {
        args::Shell::Bash => clap_complete::Shell::Bash,
        args::Shell::Zsh => clap_complete::Shell::Zsh,
        args::Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sealer", &mut script);
    String::from_utf8_lossy(&script).into_owned()
}

/// A Clusterfile compiled for `validate` and `graph`, which keep and show none of its
/// digests: they need no state's key.
fn compile_statelessly(settings: &Settings, file: &std::path::Path) -> Result<ops::Compiled> {
    runtime()?.block_on(ops::compile(
        settings,
        file,
        &sealer::clusterfile::DigestKey::throwaway()?,
        pull(settings),
    ))
}

/// Locks the cluster's state for `operation`, saying so when it replaces the lock of a
/// sealer that died.
fn begin_session(
    settings: &Settings,
    cluster: &str,
    operation: &str,
    timeout: std::time::Duration,
) -> Result<ops::Session> {
    let session = ops::Session::begin(settings, cluster, operation, timeout)?;
    if let Some(dead) = session.took_over() {
        eprintln!(
            "warning: the lock of cluster \"{cluster}\" was held by {dead}, which is gone: taken over"
        );
    }
    Ok(session)
}

/// How long to wait for the state lock (`--lock-timeout`).
fn lock_timeout(args: &args::ExecArgs) -> std::time::Duration {
    args.lock_timeout
}

/// Shows the plan, asks for confirmation, runs preflight (unless `skip` is `None`: a
/// destroy installs nothing), runs the plan, and reports how it ended.
fn execute(
    rt: &tokio::runtime::Runtime,
    settings: &Settings,
    session: ops::Session,
    mut prepared: ops::Prepared,
    args: &args::ExecArgs,
    confirm: bool,
    skip: Option<&std::collections::BTreeSet<ops::Check>>,
) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let plan = prepared.plan.clone();
    // Only `sealer apply` takes a saved plan (`run` and `destroy` plan and apply at once).
    let saved_plans = !plan.destroy && !prepared.is_run();
    let mode = if args.json {
        progress::Mode::Json
    } else if std::io::stderr().is_terminal() {
        progress::Mode::Bars
    } else {
        progress::Mode::Lines
    };
    let steps = overview::Tally::new(
        plan.changes
            .iter()
            .map(|c| (c.address.as_str(), c.host.as_deref())),
    );
    let progress = std::sync::Arc::new(progress::Progress::new(mode, steps));
    if args.json {
        let summary = plan.summary();
        progress.json_line(serde_json::json!({"type": "plan_summary", "cluster": plan.cluster, "add": summary.add, "change": summary.change, "destroy": summary.destroy}));
    } else {
        let text = sealer::plan::human::render(
            &plan,
            sealer::plan::human::Style {
                color: use_color(args.no_color) && std::io::stderr().is_terminal(),
            },
        );
        eprint!("{text}");
    }
    if !plan.has_changes() {
        ops::rekey(&session, &prepared)?;
        return Ok(ExitCode::SUCCESS);
    }
    if confirm {
        if !std::io::stdin().is_terminal() {
            return Err(sealer::Error::msg(
                "refusing to apply without confirmation: stdin is not a terminal",
            )
            .hint(if saved_plans {
                "review the plan, then pass --auto-approve (or save it with `sealer plan --out FILE` and `sealer apply FILE`)"
            } else {
                "review the plan, then pass --auto-approve"
            }));
        }
        eprint!(
            "\nDo you want to perform these actions on cluster \"{}\"? Only 'yes' will be accepted: ",
            plan.cluster
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if answer.trim() != "yes" {
            let what = if plan.destroy { "Destroy" } else { "Apply" };
            eprintln!("{what} cancelled: nothing changed.");
            return Ok(ExitCode::from(1));
        }
    }
    let exec = ops::ExecSettings {
        parallelism: args.parallelism,
        step_timeout: args.step_timeout.max(std::time::Duration::from_secs(1)),
        lock_timeout: args.lock_timeout,
        accept_new_host_keys: args.accept_new_host_keys,
    };
    if let Some(skip) = skip {
        // Before the first step: a failure here leaves every host and the state as they were.
        let report = rt.block_on(ops::preflight(
            settings,
            &session,
            &mut prepared,
            &exec,
            skip,
        ))?;
        if args.json {
            let mut line = preflight::json(&report);
            if let Some(map) = line.as_object_mut() {
                map.insert("type".into(), serde_json::json!("preflight"));
            }
            progress.json_line(line);
        } else if !report.hosts.is_empty() {
            eprint!("\n{}", preflight::text(&report));
        }
        if !report.passed() {
            return Err(preflight::failed(&report, true));
        }
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    progress.begin();
    let sink: std::sync::Arc<dyn sealer::exec::EventSink> = progress.clone();
    let report = rt.block_on(async {
        // First Ctrl-C (or SIGTERM): no new steps, running ones finish and are recorded.
        // Second: abort. Steps still running stay recorded tainted (each is recorded so as
        // it starts) and the next apply replaces them; the lock goes with this process.
        let state_path = settings.state_path.clone();
        let interrupts = tokio::spawn(async move {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            let signal = async {
                tokio::select! {
                    r = tokio::signal::ctrl_c() => r.is_ok().then_some(130),
                    r = term.recv() => r.map(|()| 143),
                }
            };
            if signal.await.is_some() {
                eprintln!(
                    "\ninterrupted: finishing the running steps (Ctrl-C or SIGTERM again to abort)"
                );
                let _ = tx.send(true);
                let again = async {
                    tokio::select! {
                        r = tokio::signal::ctrl_c() => r.is_ok().then_some(130),
                        r = term.recv() => r.map(|()| 143),
                    }
                };
                if let Some(code) = again.await {
                    if let Ok(Some(store)) = sealer::state::StateStore::open_existing(&state_path) {
                        let _ = store.release_locks_of_this_process();
                    }
                    eprintln!(
                        "aborted: the steps that were running stay tainted; apply again to finish"
                    );
                    std::process::exit(code);
                }
            }
        });
        let report = ops::execute(settings, session, prepared, &exec, sink, rx).await;
        interrupts.abort();
        report
    })?;
    progress.finish();
    if let Some(table) = progress.summary_table() {
        eprint!("\n{table}");
    }
    if args.json {
        progress.json_line(serde_json::json!({"type": "apply_summary", "done": report.done.len(), "failed": report.failed.len(), "skipped": report.skipped.len(), "not_started": report.not_started.len()}));
    }
    if report.success() {
        if !args.json {
            let what = if plan.destroy { "Destroy" } else { "Apply" };
            let steps = report.done.len();
            let noun = if steps == 1 { "step" } else { "steps" };
            eprintln!("\n{what} complete: {steps} {noun} done.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut diagnostics = Vec::new();
    for (address, failure) in &report.failed {
        let mut d = sealer::Diagnostic::error(format!("{address}: {}", failure.message));
        if let Some(cmd) = &failure.command {
            d = d.note(format!("command: {cmd}"));
        }
        for line in &failure.output_tail {
            d = d.note(format!("| {line}"));
        }
        diagnostics.push(d);
    }
    if !report.not_started.is_empty() {
        diagnostics.push(sealer::Diagnostic::error(format!(
            "interrupted: {} steps did not start; `sealer apply` resumes where this one stopped",
            report.not_started.len()
        )));
    }
    if diagnostics.is_empty() {
        diagnostics.push(sealer::Diagnostic::error(format!(
            "{} steps were skipped",
            report.skipped.len()
        )));
    }
    let last = diagnostics.len() - 1;
    diagnostics[last] = diagnostics[last].clone().hint(format!(
        "{} done, {} failed, {} skipped; fix the cause and run apply again: it resumes where this one stopped",
        report.done.len(),
        report.failed.len(),
        report.skipped.len()
    ));
    Err(sealer::Error::many(diagnostics))
}

/// Whether to color: a terminal on stdout, no `NO_COLOR`, no `--no-color`.
fn use_color(no_color: bool) -> bool {
    use std::io::IsTerminal;
    !no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal()
}

fn render_plan(plan: &sealer::plan::Plan, args: &RenderArgs) -> Result<ExitCode> {
    let text = match args.format() {
        PlanFormat::Json => format!("{}\n", to_pretty(&sealer::plan::json::to_json(plan))),
        PlanFormat::Markdown => {
            sealer::plan::markdown::render_markdown(plan, sealer::plan::markdown::DEFAULT_LIMIT)
        }
        PlanFormat::Human => sealer::plan::human::render(
            plan,
            sealer::plan::human::Style {
                color: use_color(args.no_color),
            },
        ),
    };
    out(&text)
}

/// `plan --refresh-only`: what the hosts hold against the state. Exit 2 with
/// `--detailed-exitcode` when something drifted; an error when a resource could not be
/// read (the picture is incomplete), after showing what was read.
fn refresh_only(settings: &Settings, args: &args::PlanArgs) -> Result<ExitCode> {
    let format = args.render.format();
    if format == PlanFormat::Markdown {
        return Err(
            sealer::Error::msg("--refresh-only shows drift as text or JSON")
                .hint("use --format human or --json"),
        );
    }
    let exec = read_settings(10);
    let refresh = runtime()?.block_on(ops::refresh(settings, &args.file, &exec, pull(settings)))?;
    let text = match format {
        PlanFormat::Json => format!("{}\n", to_pretty(&refresh::json(&refresh))),
        _ => refresh::text(&refresh),
    };
    out(&text)?;
    let failed = refresh.failed().count();
    if failed > 0 {
        return Err(sealer::Error::msg(format!(
            "{failed} of {} resources could not be read back",
            refresh.resources.len()
        ))
        .hint("check that the hosts are up and reachable, then run it again"));
    }
    if args.detailed_exitcode && refresh.drifted().next().is_some() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// How reads back from hosts run: `parallelism` at once, each command bounded by
/// [`ops::READ_TIMEOUT`], host keys only as pinned.
fn read_settings(parallelism: usize) -> ops::ExecSettings {
    ops::ExecSettings {
        parallelism: parallelism.max(1),
        step_timeout: ops::READ_TIMEOUT,
        lock_timeout: std::time::Duration::ZERO,
        accept_new_host_keys: false,
    }
}

/// `apply --refresh-only`: under the cluster's lock, read every recorded resource back,
/// show what drifted and what the state will record, and after confirmation record it
/// (one state write; no host changes).
fn apply_refresh_only(settings: &Settings, args: &args::ApplyArgs) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let file = args.file.clone().unwrap_or_else(|| "Clusterfile".into());
    let session = begin_session(
        settings,
        &ops::cluster_of(&file)?,
        "apply",
        lock_timeout(&args.exec),
    )?;
    let rt = runtime()?;
    let record = rt.block_on(ops::prepare_refresh_record(
        settings,
        &session,
        &file,
        &read_settings(args.exec.parallelism),
        pull(settings),
    ))?;
    eprint!("{}", refresh::text(&record.refresh));
    if record.marks.is_empty() {
        eprintln!("\nNo changes: the state already records what the hosts hold.");
        return Ok(ExitCode::SUCCESS);
    }
    eprint!("\n{}", refresh::record_text(&record));
    if !args.exec.auto_approve {
        if !std::io::stdin().is_terminal() {
            return Err(sealer::Error::msg(
                "refusing to record the refresh without confirmation: stdin is not a terminal",
            )
            .hint("review what was read, then pass --auto-approve"));
        }
        eprint!(
            "\nDo you want to record this in the state of cluster \"{}\"? Only 'yes' will be accepted: ",
            record.refresh.cluster
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if answer.trim() != "yes" {
            eprintln!("Refresh cancelled: nothing changed.");
            return Ok(ExitCode::from(1));
        }
    }
    let serial = ops::record_refresh(&session, &record)?;
    eprintln!(
        "\nRefresh recorded (state serial {serial}); no host changed. `sealer plan` shows the repairs."
    );
    Ok(ExitCode::SUCCESS)
}

/// How validate/plan/graph fetch an image missing from the store.
fn pull(
    settings: &Settings,
) -> impl Fn(
    sealer::image::Reference,
    sealer::image::Platform,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<sealer::image::Image>>>> {
    let settings = settings.clone();
    move |reference, platform| {
        let settings = settings.clone();
        Box::pin(async move { ops::fetch_image(&settings, &reference, &platform).await })
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| sealer::Error::msg(format!("cannot start the async runtime: {e}")))
}

fn to_pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Writes data to stdout; a closed pipe (`sealer images | head`) is not an error.
fn out(text: &str) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(sealer::Error::msg(format!("cannot write to stdout: {e}"))),
    }
}

fn read_password(from_stdin: bool) -> Result<String> {
    if !from_stdin {
        return Err(sealer::Error::msg("login needs the password on stdin")
            .hint("echo \"$PASSWORD\" | sealer login REGISTRY -u USER --password-stdin"));
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| sealer::Error::msg(format!("cannot read the password from stdin: {e}")))?;
    let password = text.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(sealer::Error::msg("the password read from stdin is empty"));
    }
    Ok(password)
}
