//! The CLI layer: flag definitions, dispatch to `sealer::ops`, and all terminal output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod render;

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
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprint!("{}", error.render());
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let settings = Settings::from_env()?;
    match cli.command {
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
            for name in &outcome.names {
                eprintln!("built {name}");
            }
            out(&format!("{}\n", outcome.image.digest()))
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
            let names = ops::load_images(&settings, &args.input, args.name.as_deref())?;
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
            let compiled =
                runtime()?.block_on(ops::compile(&settings, &args.file, pull(&settings)))?;
            let cf = &compiled.clusterfile;
            eprintln!(
                "{} is valid: cluster \"{}\", {} hosts, {} resources",
                args.file.display(),
                cf.name(),
                compiled.input.hosts.len(),
                compiled.resources.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph(args) => {
            let compiled =
                runtime()?.block_on(ops::compile(&settings, &args.file, pull(&settings)))?;
            out(&sealer::graph::to_dot(
                compiled.clusterfile.name(),
                &compiled.resources,
            ))
        }
        Command::Plan(args) => {
            let settings = settings.with_state_path(args.state.clone());
            let options = sealer::plan::PlanOptions {
                targets: args.targets.clone(),
                replace: args.replace.clone(),
                destroy: args.destroy,
            };
            let outcome =
                runtime()?.block_on(ops::plan(&settings, &args.file, &options, pull(&settings)));
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(error) if args.render.format() == PlanFormat::Json => {
                    // Machines get an object even when the plan fails; people get the error.
                    let messages: Vec<String> =
                        error.diagnostics().iter().map(|d| d.headline()).collect();
                    let value = sealer::plan::json::errors_json("", &messages);
                    let _ = out(&format!("{}\n", to_pretty(&value)));
                    return Err(error);
                }
                Err(error) => return Err(error),
            };
            if let Some(path) = &args.out {
                outcome.saved.write(path)?;
                eprintln!(
                    "saved the plan to {}; apply it with `sealer apply {}`",
                    path.display(),
                    path.display()
                );
            }
            render_plan(outcome.plan(), &args.render)?;
            if args.detailed_exitcode && outcome.plan().has_changes() {
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show(args) => {
            let saved = ops::show_plan(&args.file)?;
            render_plan(&saved.plan, &args.render)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::State(StateCommand::List(args)) => {
            let settings = settings.with_state_path(args.select.state);
            let listing = ops::list_state(&settings, args.select.cluster.as_deref())?;
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
        Command::Pull(args) => {
            let (reference, image) =
                runtime()?.block_on(ops::pull(&settings, &args.name, args.insecure))?;
            eprintln!("pulled {reference}");
            out(&format!("{}\n", image.digest()))
        }
    }
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
