//! Flag definitions. Each command's help ends with an example. `docs/cli.md` and the
//! completion scripts are generated from them; `tests/it/cli_docs.rs` compiles this file too.

use clap::{Args, Parser, Subcommand};
use sealer::image::build::BuildOptions;
use sealer::image::{ImageType, Platform, Reference};
use sealer::{Error, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "sealer",
    version,
    about = "Build, share and run clusters as a declarative plan/apply engine",
    long_about = None,
    after_help = "Images, credentials and state live in $SEALER_HOME (default ~/.sealer). \
                  An image may unpack to $SEALER_MAX_UNPACKED at most (default 8GiB)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a Sealer Image from a Kubefile
    #[command(after_help = "Example:\n  sealer build -f Kubefile -t my-app:v1 .")]
    Build(BuildArgs),
    /// List the images in the local store
    #[command(after_help = "Example:\n  sealer images --json")]
    Images(ImagesArgs),
    /// Show an image's metadata, apps and launch commands as JSON
    #[command(after_help = "Example:\n  sealer inspect my-app:v1")]
    Inspect(InspectArgs),
    /// Give an image another name
    #[command(after_help = "Example:\n  sealer tag my-app:v1 registry.example.com/apps/my-app:v1")]
    Tag(TagArgs),
    /// Remove image names from the local store (and blobs nothing else uses)
    #[command(after_help = "Example:\n  sealer rmi my-app:v1")]
    Rmi(RmiArgs),
    /// Write an image as an OCI archive (FILE.tar) or a standalone OCI image layout directory
    #[command(
        after_help = "Examples:\n  sealer save my-app:v1 -o my-app.tar\n  sealer save my-app:v1 -o ./my-app-layout"
    )]
    Save(SaveArgs),
    /// Load the images of an OCI or docker archive, or of an OCI image layout directory, into
    /// the local store
    #[command(
        after_help = "Examples:\n  sealer load -i my-app.tar\n  sealer load -i ./my-app-layout --platform linux/arm64"
    )]
    Load(LoadArgs),
    /// Store credentials for a registry (password read from stdin)
    #[command(
        after_help = "Example:\n  echo \"$PASSWORD\" | sealer login registry.example.com -u me --password-stdin"
    )]
    Login(LoginArgs),
    /// Remove the stored credentials of a registry
    #[command(after_help = "Example:\n  sealer logout registry.example.com")]
    Logout(LogoutArgs),
    /// Upload an image to its registry
    #[command(after_help = "Example:\n  sealer push registry.example.com/apps/my-app:v1")]
    Push(PushArgs),
    /// Download an image from a registry into the local store
    #[command(after_help = "Example:\n  sealer pull registry.example.com/apps/my-app:v1")]
    Pull(PullArgs),
    /// Check a Clusterfile and its images without touching any host
    #[command(after_help = "Example:\n  sealer validate -f Clusterfile")]
    Validate(ValidateArgs),
    /// Show what apply would change, without touching any host
    #[command(after_help = "Example:\n  sealer plan -f Clusterfile --out plan.bin")]
    Plan(PlanArgs),
    /// Render a saved plan
    #[command(after_help = "Example:\n  sealer show plan.bin --format markdown")]
    Show(ShowArgs),
    /// Print the resource graph of a Clusterfile in DOT
    #[command(after_help = "Example:\n  sealer graph -f Clusterfile | dot -Tsvg > graph.svg")]
    Graph(GraphArgs),
    /// Check the hosts an apply would create something on, changing nothing
    #[command(
        after_help = "Example:\n  sealer check -f Clusterfile --skip-check swap\n\nChecks (each can be skipped with --skip-check NAME, or all with --skip-check all):\n  platform      the host's OS and architecture are the cluster image's\n  swap          no swap is on where Kubernetes is installed\n  ports         nothing listens on the ports of what is created there: 6443, 2379, 2380,\n                10250, 10257, 10259 for a control plane, 10250 for a worker, the registry's\n  br_netfilter  the kernel has br_netfilter where Kubernetes is installed\n  overlay       the kernel has the overlay filesystem where a container runtime is installed\n  ip_forward    IPv4 forwarding is on, or can be turned on, where Kubernetes is installed\n  disk          the data root has room for the rootfs (and registry data on registry hosts)\n  hostname      no two hosts of the cluster have the same hostname\n  clock         the hosts' clocks are at most 5 s apart"
    )]
    Check(CheckArgs),
    /// Apply a Clusterfile (or a saved plan) to the hosts
    #[command(after_help = "Examples:\n  sealer apply -f Clusterfile\n  sealer apply plan.bin")]
    Apply(ApplyArgs),
    /// Destroy every resource of a cluster
    #[command(
        after_help = "Examples:\n  sealer destroy -f Clusterfile\n  sealer destroy --cluster my-cluster"
    )]
    Destroy(DestroyArgs),
    /// Install an app image on a cluster sealer applied (hosts come from the state)
    #[command(
        after_help = "Example:\n  sealer run registry.example.com/apps/redis:v7 --cluster my-cluster"
    )]
    Run(RunArgs),
    /// Check a cluster's health from its hosts: nodes Ready, apps installed, registry and API
    /// answering (read-only)
    #[command(
        after_help = "Examples:\n  sealer status\n  sealer status --cluster my-cluster --json\n  sealer status -f Clusterfile\n\nExit codes: 0 healthy; 1 unhealthy, a host unreachable, or an error."
    )]
    Status(StatusArgs),
    /// Adopt a running cluster into a state that does not record it, reading it from its
    /// hosts (read-only)
    #[command(
        after_help = "Examples:\n  sealer import -f Clusterfile\n  sealer import -f Clusterfile --state adopted.db --accept-new-host-keys\n\nEach resource of the Clusterfile is read back from its hosts and recorded as found:\nas applied, drifted (the next plan repairs it), or not at all when it is missing (the\nnext plan creates it). Then `sealer plan` shows what differs. Nothing on a host changes.\n\nExit codes: 0 imported; 1 refused (the state records the cluster, a host cannot be\nread, an unknown host key), nothing recorded."
    )]
    Import(ImportArgs),
    /// Inspect the recorded state
    #[command(
        subcommand,
        after_help = "Examples:\n  sealer state list\n  sealer state show kubernetes.init --cluster my-cluster"
    )]
    State(StateCommand),
    /// Print a shell completion script
    #[command(after_help = "Example:\n  sealer completions bash > /etc/bash_completion.d/sealer")]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: Shell,
}

/// How a command that speaks JSON on stdout reports an error there too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonErrors {
    /// One pretty-printed object, as the command's own output is.
    Object,
    /// One line, after the command's JSON event lines.
    Line,
}

impl Command {
    /// Whether this invocation prints JSON on stdout, so that a refusal is JSON there too.
    /// `plan --json` is not here: a failed plan prints its own object (`errors`).
    pub fn json_errors(&self) -> Option<JsonErrors> {
        let object = |json: bool| json.then_some(JsonErrors::Object);
        match self {
            Command::Images(a) => object(a.json),
            Command::Inspect(_) => Some(JsonErrors::Object),
            Command::Validate(a) => object(a.json),
            Command::Show(a) => object(a.render.format() == PlanFormat::Json),
            Command::Check(a) => object(a.json),
            Command::Status(a) => object(a.json),
            Command::State(StateCommand::Show(a)) => object(a.json),
            Command::State(StateCommand::History(a)) => object(a.json),
            Command::State(StateCommand::List(a)) => object(a.json),
            Command::Apply(a) => a.exec.json.then_some(JsonErrors::Line),
            Command::Destroy(a) => a.exec.json.then_some(JsonErrors::Line),
            Command::Run(a) => a.exec.json.then_some(JsonErrors::Line),
            _ => None,
        }
    }
}

/// The shells `sealer completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The Clusterfile
    #[arg(
        short = 'f',
        long = "file",
        value_name = "CLUSTERFILE",
        default_value = "Clusterfile"
    )]
    pub file: PathBuf,
    /// Print JSON: the cluster, its host and resource counts, and the errors
    #[arg(long)]
    pub json: bool,
}

/// How a plan is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Human,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Print the versioned JSON (same as --format json)
    #[arg(long)]
    pub json: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "human")]
    pub format: PlanFormat,
    /// No colors, even on a terminal (NO_COLOR does the same)
    #[arg(long)]
    pub no_color: bool,
}

impl RenderArgs {
    pub fn format(&self) -> PlanFormat {
        if self.json {
            PlanFormat::Json
        } else {
            self.format
        }
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The Clusterfile
    #[arg(
        short = 'f',
        long = "file",
        value_name = "CLUSTERFILE",
        default_value = "Clusterfile"
    )]
    pub file: PathBuf,
    /// The state: a file (default $SEALER_HOME/state.db), or a PostgreSQL database shared by a
    /// team, postgres://USER@HOST/DB
    #[arg(long, value_name = "PATH|URL", env = "SEALER_STATE")]
    pub state: Option<PathBuf>,
    /// Plan only this resource and what it depends on (repeatable)
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,
    /// Replace this resource even if unchanged (repeatable)
    #[arg(long = "replace", value_name = "ADDR")]
    pub replace: Vec<String>,
    /// Plan the destruction of every resource of the cluster
    #[arg(long)]
    pub destroy: bool,
    /// Workers a Kubernetes upgrade drains and upgrades at once
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_unavailable: u16,
    /// How the rootfs reaches the hosts: `tree`, hosts that got it send it on over SSH
    /// (O(log N) rounds, the operator's uplink carrying it about once); `direct`, every host
    /// from this machine
    #[arg(long, value_enum, default_value_t = RootfsDistribution::Tree, value_name = "MODE")]
    pub rootfs_distribution: RootfsDistribution,
    /// Write the plan to FILE for `sealer apply FILE`
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 without changes, 2 with changes, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Read every recorded resource back from its hosts and show what drifted; connects to
    /// the hosts, changes nothing on them or in the state
    #[arg(long, conflicts_with_all = ["targets", "replace", "destroy", "out"])]
    pub refresh_only: bool,
    /// Read every recorded resource back from its hosts first, and plan the repair of what
    /// drifted (a saved plan cannot hold what was read: record drift with `sealer apply
    /// --refresh-only`, then plan with --out)
    #[arg(long, conflicts_with_all = ["refresh_only", "out", "destroy"])]
    pub refresh: bool,
    #[command(flatten)]
    pub render: RenderArgs,
}

/// Flags shared by apply and destroy.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The state: a file (default $SEALER_HOME/state.db), or a PostgreSQL database shared by a
    /// team, postgres://USER@HOST/DB
    #[arg(long, value_name = "PATH|URL", env = "SEALER_STATE")]
    pub state: Option<PathBuf>,
    /// Apply without asking for confirmation
    #[arg(long, short = 'y', visible_alias = "yes")]
    pub auto_approve: bool,
    /// Steps running at once, across hosts (steps on one host run one at a time)
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
    /// Per-step timeout: 600, 90s, 10m, 1h
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = parse_duration)]
    pub step_timeout: std::time::Duration,
    /// How long to wait for the state lock held by another sealer: 30, 30s, 5m, 1h
    #[arg(long, default_value = "0", value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Trust (and pin in the state) host keys seen for the first time
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Stream events as JSON lines instead of progress
    #[arg(long)]
    pub json: bool,
    /// No colors, even on a terminal (NO_COLOR does the same)
    #[arg(long)]
    pub no_color: bool,
}

/// The names `--skip-check` takes: every preflight check, and `all`.
fn check_names() -> clap::builder::PossibleValuesParser {
    let mut names: Vec<&'static str> = sealer::ops::Check::ALL.iter().map(|c| c.name()).collect();
    names.push("all");
    clap::builder::PossibleValuesParser::new(names)
}

/// Preflight checks to skip, as given (`all` is every check).
pub fn skipped_checks(names: &[String]) -> std::collections::BTreeSet<sealer::ops::Check> {
    use sealer::ops::Check;
    if names.iter().any(|n| n == "all") {
        return Check::ALL.into_iter().collect();
    }
    names.iter().filter_map(|n| Check::parse(n)).collect()
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The Clusterfile
    #[arg(
        short = 'f',
        long = "file",
        value_name = "CLUSTERFILE",
        default_value = "Clusterfile"
    )]
    pub file: PathBuf,
    /// The state: a file (default $SEALER_HOME/state.db) or postgres://USER@HOST/DB; hosts it
    /// records as applied are not checked again
    #[arg(long, value_name = "PATH|URL", env = "SEALER_STATE")]
    pub state: Option<PathBuf>,
    /// Skip a preflight check (repeatable, or comma-separated); `all` skips every one
    #[arg(long = "skip-check", value_name = "NAME", value_delimiter = ',', value_parser = check_names())]
    pub skip_checks: Vec<String>,
    /// Hosts asked at once
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
    /// Trust host keys seen for the first time (check pins nothing: apply does)
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A saved plan (`sealer plan --out FILE`) to apply exactly
    #[arg(value_name = "PLANFILE", conflicts_with = "file")]
    pub plan_file: Option<PathBuf>,
    /// The Clusterfile
    #[arg(short = 'f', long = "file", value_name = "CLUSTERFILE")]
    pub file: Option<PathBuf>,
    /// Apply only this resource and what it depends on (repeatable)
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,
    /// Replace this resource even if unchanged (repeatable)
    #[arg(long = "replace", value_name = "ADDR")]
    pub replace: Vec<String>,
    /// Workers a Kubernetes upgrade drains and upgrades at once
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_unavailable: u16,
    /// How the rootfs reaches the hosts: `tree`, hosts that got it send it on over SSH
    /// (O(log N) rounds, the operator's uplink carrying it about once); `direct`, every host
    /// from this machine
    #[arg(long, value_enum, default_value_t = RootfsDistribution::Tree, value_name = "MODE")]
    pub rootfs_distribution: RootfsDistribution,
    /// Read every recorded resource back from its hosts first, and repair what drifted
    #[arg(long, conflicts_with = "plan_file")]
    pub refresh: bool,
    /// Read every recorded resource back and record what drifted in the state, changing
    /// no host (the next plan repairs it)
    #[arg(long, conflicts_with_all = ["plan_file", "targets", "replace", "refresh"])]
    pub refresh_only: bool,
    /// Skip a preflight check (repeatable, or comma-separated; `sealer check --help` lists
    /// them); `all` skips preflight
    #[arg(long = "skip-check", value_name = "NAME", value_delimiter = ',', value_parser = check_names())]
    pub skip_checks: Vec<String>,
    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The Clusterfile of the running cluster
    #[arg(
        short = 'f',
        long = "file",
        value_name = "CLUSTERFILE",
        default_value = "Clusterfile"
    )]
    pub file: PathBuf,
    /// The state database to record it in (default $SEALER_HOME/state.db)
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Hosts read at once
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
    /// Bound of each command on a host: 60, 90s, 5m
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// How long to wait for the state lock held by another sealer: 30, 30s, 5m, 1h
    #[arg(long, default_value = "0", value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Trust (and pin in the state) host keys seen for the first time
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The cluster to check (default: the only one in the state); its hosts are reached as
    /// the state records them
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The cluster's Clusterfile, to reach hosts with its SSH settings (passwords: the state
    /// never keeps them)
    #[arg(
        short = 'f',
        long = "file",
        value_name = "CLUSTERFILE",
        conflicts_with = "cluster"
    )]
    pub file: Option<PathBuf>,
    /// The state: a file (default $SEALER_HOME/state.db), or a PostgreSQL database shared by a
    /// team, postgres://USER@HOST/DB
    #[arg(long, value_name = "PATH|URL", env = "SEALER_STATE")]
    pub state: Option<PathBuf>,
    /// Hosts checked at once
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
    /// Bound of each command on a host: 60, 90s, 5m
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The Clusterfile of the cluster to destroy
    #[arg(
        short = 'f',
        long = "file",
        value_name = "CLUSTERFILE",
        conflicts_with = "cluster"
    )]
    pub file: Option<PathBuf>,
    /// The cluster to destroy, by name, from the state alone
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The app image to install
    pub image: String,
    /// The cluster (default: the only one in the state)
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan file written by `sealer plan --out`
    pub file: PathBuf,
    #[command(flatten)]
    pub render: RenderArgs,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The Clusterfile
    #[arg(
        short = 'f',
        long = "file",
        value_name = "CLUSTERFILE",
        default_value = "Clusterfile"
    )]
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the recorded resources (or the clusters, when the state holds several)
    #[command(after_help = "Example:\n  sealer state list --cluster my-cluster")]
    List(StateListArgs),
    /// Show the recorded attributes of one resource
    #[command(after_help = "Example:\n  sealer state show kubernetes.init")]
    Show(StateShowArgs),
    /// Remove a lock left by a process that is gone (never done silently)
    #[command(after_help = "Example:\n  sealer state unlock 3f2a9c0d --cluster my-cluster")]
    Unlock(StateUnlockArgs),
    /// Show every write to a cluster's state: serial, time, command and what changed
    #[command(after_help = "Example:\n  sealer state history --cluster my-cluster")]
    History(StateHistoryArgs),
    /// Forget resources without touching their hosts (e.g. a host that is gone for good)
    #[command(
        after_help = "Example:\n  sealer state rm host.192.168.0.9 rootfs.192.168.0.9 --cluster my-cluster"
    )]
    Rm(StateRmArgs),
    /// Copy the state into another backend (a PostgreSQL database, or a file); never over
    /// another lineage
    #[command(
        after_help = "Example:\n  sealer state migrate --to postgres://ops@db.example/sealer\n  export SEALER_STATE=postgres://ops@db.example/sealer"
    )]
    Migrate(StateMigrateArgs),
}

#[derive(Debug, Args)]
pub struct StateMigrateArgs {
    /// The state to copy: a file (default $SEALER_HOME/state.db), or postgres://USER@HOST/DB
    #[arg(long, value_name = "PATH|URL", env = "SEALER_STATE")]
    pub state: Option<PathBuf>,
    /// Where to copy it: postgres://USER@HOST/DB (an empty database, or one holding this
    /// same state), or a file
    #[arg(long, value_name = "URL|PATH")]
    pub to: PathBuf,
    /// How long to wait for the clusters' locks held by another sealer: 30, 30s, 5m, 1h
    #[arg(long, default_value = "0", value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct StateHistoryArgs {
    #[command(flatten)]
    pub select: StateSelect,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StateRmArgs {
    /// Addresses to forget, e.g. host.192.168.0.9
    #[arg(required = true, value_name = "ADDRESS")]
    pub addresses: Vec<String>,
    #[command(flatten)]
    pub select: StateSelect,
    /// How long to wait for the state lock held by another sealer: 30, 30s, 5m, 1h
    #[arg(long, default_value = "0", value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct StateSelect {
    /// The cluster (default: the only one in the state)
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The state: a file (default $SEALER_HOME/state.db), or a PostgreSQL database shared by a
    /// team, postgres://USER@HOST/DB
    #[arg(long, value_name = "PATH|URL", env = "SEALER_STATE")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StateListArgs {
    #[command(flatten)]
    pub select: StateSelect,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StateShowArgs {
    /// Resource address, e.g. kubernetes.init or host.192.168.0.2
    pub address: String,
    #[command(flatten)]
    pub select: StateSelect,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StateUnlockArgs {
    /// The lock ID the lock error printed
    pub lock_id: String,
    #[command(flatten)]
    pub select: StateSelect,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The Kubefile (default: CONTEXT/Kubefile)
    #[arg(short = 'f', long = "file", value_name = "KUBEFILE")]
    pub file: Option<PathBuf>,
    /// Name of the image, NAME[:TAG]; repeat for several names
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]", required = true)]
    pub tags: Vec<String>,
    /// Image type
    #[arg(long = "type", value_name = "TYPE", value_parser = ["kube-installer", "app-installer"])]
    pub image_type: Option<String>,
    /// Set a build argument declared with ARG
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Add a label to the image
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Target platform os/arch (default: this machine's)
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Record the build time in the image config (the ID then changes on every build)
    #[arg(long)]
    pub timestamp: bool,
    /// The build context: the directory local:// and COPY sources are read from
    #[arg(value_name = "CONTEXT")]
    pub context: PathBuf,
}

impl BuildArgs {
    pub fn into_options(self) -> Result<BuildOptions> {
        let tags = self
            .tags
            .iter()
            .map(|t| Reference::parse(t))
            .collect::<Result<Vec<_>>>()?;
        let mut build_args = BTreeMap::new();
        for pair in &self.build_args {
            let (k, v) = split_pair(pair, "--build-arg")?;
            build_args.insert(k, v);
        }
        let labels = self
            .labels
            .iter()
            .map(|pair| split_pair(pair, "--label"))
            .collect::<Result<Vec<_>>>()?;
        let platform = self
            .platform
            .as_deref()
            .map(|p| {
                Platform::parse(p).ok_or_else(|| {
                    Error::msg(format!("invalid --platform {p:?}"))
                        .hint("write os/arch, e.g. linux/amd64")
                })
            })
            .transpose()?;
        Ok(BuildOptions {
            kubefile: self.file.unwrap_or_else(|| self.context.join("Kubefile")),
            context: self.context,
            tags,
            image_type: self.image_type.as_deref().and_then(ImageType::parse),
            build_args,
            labels,
            platform,
            timestamp: self.timestamp,
        })
    }
}

fn split_pair(pair: &str, flag: &str) -> Result<(String, String)> {
    match pair.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(Error::msg(format!(
            "{flag} expects KEY=VALUE, got {pair:?}"
        ))),
    }
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Print only the names
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image name, or a prefix of its ID
    pub name: String,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// Existing image
    pub source: String,
    /// New name
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Image to save
    pub name: String,
    /// Where to write: FILE.tar writes an OCI archive (a tar, replacing the file); any other
    /// name a directory holding an OCI image layout (it must not exist or be empty)
    #[arg(short, long, value_name = "FILE.tar|DIR")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// An OCI image layout directory, or an archive: an OCI archive or a docker archive
    /// (what `sealer save -o FILE.tar`, `docker save` and `skopeo copy ... oci-archive:` write)
    #[arg(short, long, value_name = "FILE.tar|DIR")]
    pub input: PathBuf,
    /// Name for the image when the layout holds one unnamed image
    #[arg(long, value_name = "NAME[:TAG]")]
    pub name: Option<String>,
    /// The platform to load from a multi-platform index, os/arch[/variant] (default: this
    /// machine's)
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry host[:port]
    pub registry: String,
    /// User name
    #[arg(short, long)]
    pub username: String,
    /// Read the password from stdin (the only way: a password flag would end up in shell history)
    #[arg(long)]
    pub password_stdin: bool,
    /// Talk plain HTTP to this registry
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host[:port]
    pub registry: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Image to push; its name says where (REGISTRY/REPO:TAG)
    pub name: String,
    /// Talk plain HTTP to the registry
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image to pull (REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:...)
    pub name: String,
    /// The platform to pull from a multi-platform index, os/arch (default: this machine's)
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Talk plain HTTP to the registry
    #[arg(long)]
    pub insecure: bool,
}

/// Parses a `--platform` value.
pub fn parse_platform(text: Option<&str>) -> Result<Option<Platform>> {
    text.map(|p| {
        Platform::parse(p).ok_or_else(|| {
            Error::msg(format!("invalid --platform {p:?}")).hint("write os/arch, e.g. linux/amd64")
        })
    })
    .transpose()
}

/// A duration as people write it on a command line: whole seconds (`30`), or a number with
/// one unit, `s`, `m` or `h` (`30s`, `10m`, `1h`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: write 30, 30s, 10m or 1h"))?;
    let seconds = match unit {
        "" | "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        _ => {
            return Err(format!(
                "{text:?} is not a duration: the unit is s, m or h (30s, 10m, 1h)"
            ));
        }
    };
    let seconds = seconds
        .filter(|s| *s <= 7 * 24 * 3600)
        .ok_or_else(|| format!("{text:?} is longer than a week"))?;
    Ok(std::time::Duration::from_secs(seconds))
}

/// `--rootfs-distribution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RootfsDistribution {
    Tree,
    Direct,
}

impl From<RootfsDistribution> for sealer::plan::distribution::Mode {
    fn from(mode: RootfsDistribution) -> Self {
        match mode {
            RootfsDistribution::Tree => sealer::plan::distribution::Mode::Tree,
            RootfsDistribution::Direct => sealer::plan::distribution::Mode::Direct,
        }
    }
}
