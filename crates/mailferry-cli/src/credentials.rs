//! Passwords and tokens: from an environment variable, a file, or a prompt; never from the
//! command line, where other users of the machine could read them in the process list.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context};
use secrecy::SecretString;

/// Reads a secret: `file` first, then the environment variable `env`, then a prompt when
/// stdin is a terminal.
pub fn secret(
    env: &str,
    file: Option<&Path>,
    prompt: &str,
    what: &str,
) -> anyhow::Result<SecretString> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the {what} file `{}`", path.display()))?;
        let line = text.lines().next().unwrap_or("").to_string();
        if line.is_empty() {
            bail!(
                "the {what} file `{}` is empty: put the {what} on its first line",
                path.display()
            );
        }
        return Ok(SecretString::from(line));
    }
    if let Ok(value) = std::env::var(env) {
        if !value.is_empty() {
            return Ok(SecretString::from(value));
        }
    }
    if std::io::stdin().is_terminal() {
        let value = rpassword::prompt_password(prompt)
            .with_context(|| format!("cannot read the {what} from the terminal"))?;
        return Ok(SecretString::from(value));
    }
    bail!("no {what} given: set {env}, or name a file with the {what} on its first line")
}
