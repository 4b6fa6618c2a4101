//! `orderctl tokens new`: mints a development API token. Its digest goes to the services' token
//! file (`AUTH_TOKENS_FILE`, in the kit's format: `orderflow_kit::auth::Tokens::parse`), the
//! token itself to an env file to `source`; both are created with mode 600. No service is
//! called and no token is needed.

use anyhow::Context;
use clap::{Args, Subcommand};
use orderflow_kit::auth::{Tokens, digest, scope};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Mint a token: its digest is appended to --file, `export <VAR>=<token>` to --env (both mode 600).
    New(NewArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The services' token file (AUTH_TOKENS_FILE): `<name> <sha256 of the token> <scopes>` is appended.
    #[arg(long)]
    file: PathBuf,
    /// The file to `source`: `export <VAR>=<token>` is appended.
    #[arg(long)]
    env: PathBuf,
    /// Who the token is for, e.g. dev-admin.
    #[arg(long)]
    name: String,
    /// The token's scopes, comma-separated: orders:write, orders:read, inventory:write,
    /// inventory:read, warehouse, carrier, or * for everything.
    #[arg(long)]
    scopes: String,
    /// The variable the env file sets to the token.
    #[arg(long, default_value = "ORDERFLOW_TOKEN")]
    var: String,
    /// Bind the token to this customer: it places, reads, lists, watches and cancels only its orders.
    #[arg(long, conflicts_with = "carrier")]
    customer: Option<String>,
    /// Bind the token to this carrier: it lists, collects and scans only its parcels.
    #[arg(long)]
    carrier: Option<String>,
}

/// Bytes of randomness in a token (it is written as hex).
const TOKEN_BYTES: usize = 24;

pub fn run(command: TokensCommand) -> anyhow::Result<()> {
    let TokensCommand::New(args) = command;
    let mut random = [0u8; TOKEN_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut random))
        .context("reading /dev/urandom")?;
    let token: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let (token_line, env_line) = lines(&args, &token)?;
    append_private(&args.file, &token_line)?;
    append_private(&args.env, &env_line)
}

/// The token file's line and the env file's line for `token`, once the arguments are checked:
/// the token line must be one the services accept.
fn lines(args: &NewArgs, token: &str) -> anyhow::Result<(String, String)> {
    let name = args.name.as_str();
    anyhow::ensure!(
        !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '#'),
        "--name {name:?}: one word, no `#`"
    );
    let var = args.var.as_str();
    let mut chars = var.chars();
    anyhow::ensure!(
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "--var {var:?} is not a shell variable name"
    );
    if let Some(unknown) = args.scopes.split(',').find(|s| !scope::KNOWN.contains(s)) {
        anyhow::bail!("--scopes: unknown scope {unknown:?}; known: {}", scope::KNOWN.join(", "));
    }
    let binding = match (&args.customer, &args.carrier) {
        (Some(customer), _) => format!(" customer={customer}"),
        (_, Some(carrier)) => format!(" carrier={carrier}"),
        _ => String::new(),
    };
    let token_line = format!("{name} {} {}{binding}\n", digest(token), args.scopes);
    Tokens::parse(&token_line).map_err(|e| anyhow::anyhow!("the services would refuse the token line: {e}"))?;
    Ok((token_line, format!("export {var}={token}\n")))
}

/// Appends `text` to `path`, which is created (or left) readable by its owner only.
fn append_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let write = || {
        let mut file = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())
    };
    write().with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path, name: &str, scopes: &str, var: &str) -> NewArgs {
        NewArgs {
            file: dir.join("tokens"),
            env: dir.join("tokens.env"),
            name: name.into(),
            scopes: scopes.into(),
            var: var.into(),
            customer: None,
            carrier: None,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("orderctl-tokens-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_lines_are_the_kit_s_format_and_a_shell_export() {
        let (token_line, env_line) =
            lines(&args(Path::new("."), "dev-shop", "orders:write,orders:read", "SHOP"), "s3cret").unwrap();
        assert_eq!(token_line, format!("dev-shop {} orders:write,orders:read\n", digest("s3cret")));
        assert_eq!(env_line, "export SHOP=s3cret\n");
        assert!(!Tokens::parse(&token_line).unwrap().is_empty(), "the services accept it");
        let bound = NewArgs { customer: Some("c-42".into()), ..args(Path::new("."), "ada", "orders:read", "ADA") };
        let (token_line, _) = lines(&bound, "s3cret").unwrap();
        assert!(token_line.ends_with(" orders:read customer=c-42\n"), "{token_line}");
        assert!(!Tokens::parse(&token_line).unwrap().is_empty());
        let empty = NewArgs { carrier: Some(String::new()), ..args(Path::new("."), "dpd", "carrier", "DPD") };
        assert!(lines(&empty, "s3cret").is_err(), "the services would refuse an empty carrier");
    }

    #[test]
    fn bad_arguments_are_refused() {
        let dir = Path::new(".");
        for (name, scopes, var, says) in [
            ("dev admin", "*", "T", "--name"),
            ("", "*", "T", "--name"),
            ("a#b", "*", "T", "--name"),
            ("a", "orders:delete", "T", "unknown scope \"orders:delete\""),
            ("a", "", "T", "unknown scope \"\""),
            ("a", "*", "1T", "--var"),
            ("a", "*", "T-1", "--var"),
        ] {
            let error = lines(&args(dir, name, scopes, var), "t").unwrap_err().to_string();
            assert!(error.contains(says), "{name:?} {scopes:?} {var:?}: {error}");
        }
    }

    #[test]
    fn tokens_are_appended_to_private_files_the_services_can_read() {
        let dir = scratch("files");
        std::fs::write(dir.join("tokens"), "# made by hand\n").unwrap();
        run(TokensCommand::New(args(&dir, "dev-admin", "*", "ORDERFLOW_TOKEN"))).unwrap();
        run(TokensCommand::New(args(&dir, "dev-carrier", "carrier", "ORDERFLOW_CARRIER_TOKEN"))).unwrap();
        for file in ["tokens", "tokens.env"] {
            let mode = std::fs::metadata(dir.join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
        let env = std::fs::read_to_string(dir.join("tokens.env")).unwrap();
        let tokens: Vec<&str> = env.lines().map(|l| l.split_once('=').unwrap().1).collect();
        assert!(env.starts_with("export ORDERFLOW_TOKEN=") && env.contains("\nexport ORDERFLOW_CARRIER_TOKEN="));
        assert_eq!(tokens.len(), 2);
        assert_ne!(tokens[0], tokens[1]);
        assert!(tokens.iter().all(|t| t.len() == 2 * TOKEN_BYTES && t.chars().all(|c| c.is_ascii_hexdigit())));
        let file = std::fs::read_to_string(dir.join("tokens")).unwrap();
        Tokens::parse(&file).expect("the services accept the file");
        let digests: Vec<(&str, &str, &str)> = file
            .lines()
            .skip(1)
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                (fields[0], fields[1], fields[2])
            })
            .collect();
        let expected = [("dev-admin", digest(tokens[0]), "*"), ("dev-carrier", digest(tokens[1]), "carrier")];
        assert_eq!(digests, expected.iter().map(|(n, d, s)| (*n, d.as_str(), *s)).collect::<Vec<_>>());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
