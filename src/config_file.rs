//! `--config FILE`: every setting of `serve` and `worker` may be written in a TOML file, under
//! its flag's name (`smpp_address`, or `smpp-address`; a table joins its name with an
//! underscore: `[smpp] address = …` is `smpp_address`). One precedence rule: a flag, then the
//! environment, then the file, then the default. The file and the environment are layered with
//! `figment` (the environment over the file); what the file gives and the environment does not is
//! handed to the command line as its environment variable, so that `clap` puts the flags over
//! both and the defaults under them.

use std::{collections::BTreeMap, path::Path};

use anyhow::{anyhow, bail, Context};
use figment::{
    providers::{Env, Format, Toml},
    value::Value,
    Figment,
};

/// The environment variable that names the file, as `--config` does.
pub const CONFIG_ENV: &str = "AGENTMESSAGE_CONFIG";

/// Settings that have no flag — secrets read only from the environment — and may be written in
/// the file: `(name in the file, environment variable)`.
pub const ENV_ONLY: &[(&str, &str)] = &[
    ("mm7_password", "AGENTMESSAGE_MM7_PASSWORD"),
    ("mm7_inbound_password", "AGENTMESSAGE_MM7_INBOUND_PASSWORD"),
];

/// One setting: its name in the file (the flag's, with underscores) and its environment
/// variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub env: String,
}

/// Every setting of the `subcommands` of `command` that has an environment variable (the
/// settings the file may hold), and those of [`ENV_ONLY`]; each once.
pub fn settings_of(command: &clap::Command, subcommands: &[&str]) -> Vec<Setting> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |args: &mut dyn Iterator<Item = &clap::Arg>| {
        for arg in args {
            let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            if env == CONFIG_ENV {
                continue;
            }
            found.insert(long.replace('-', "_"), env.to_string_lossy().into_owned());
        }
    };
    add(&mut command.get_arguments());
    for name in subcommands {
        if let Some(sub) = command.find_subcommand(name) {
            add(&mut sub.get_arguments());
        }
    }
    for (name, env) in ENV_ONLY {
        found.insert((*name).to_owned(), (*env).to_owned());
    }
    found
        .into_iter()
        .map(|(name, env)| Setting { name, env })
        .collect()
}

/// The file's settings as `(name, value)`: tables flattened with `_`, names with `-` written
/// with `_`, lists joined with commas.
fn flatten(
    prefix: &str,
    dict: &figment::value::Dict,
    out: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    for (key, value) in dict {
        let name = if prefix.is_empty() {
            key.replace('-', "_")
        } else {
            format!("{prefix}_{}", key.replace('-', "_"))
        };
        match value {
            Value::Dict(_, inner) => flatten(&name, inner, out)?,
            other => out.push((name.clone(), scalar(&name, other)?)),
        }
    }
    Ok(())
}

fn scalar(name: &str, value: &Value) -> anyhow::Result<String> {
    Ok(match value {
        Value::String(_, s) => s.clone(),
        Value::Char(_, c) => c.to_string(),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => {
            if let Some(i) = n.to_i128() {
                i.to_string()
            } else if let Some(u) = n.to_u128() {
                u.to_string()
            } else {
                n.to_f64().map(|f| f.to_string()).unwrap_or_default()
            }
        }
        Value::Array(_, items) => items
            .iter()
            .map(|item| scalar(name, item))
            .collect::<anyhow::Result<Vec<_>>>()?
            .join(","),
        Value::Empty(..) => bail!("{name} has no value"),
        Value::Dict(..) => bail!("{name} is a table, not a value"),
    })
}

/// Reads the TOML file at `path` and layers the environment over it (figment): for each of
/// `known` that the file gives, `(environment variable, value)` — the file's value, or the
/// environment's where it has one. A name that is no setting is an error naming it.
pub fn layered(path: &Path, known: &[Setting]) -> anyhow::Result<Vec<(String, String)>> {
    if !path.is_file() {
        bail!("the configuration file {} does not exist", path.display());
    }
    let file: figment::value::Dict = Figment::from(Toml::file(path))
        .extract()
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    let mut written = Vec::new();
    // Connections and routes are tables of their own (`crate::connections`), not settings.
    let file: figment::value::Dict = file
        .into_iter()
        .filter(|(k, _)| !crate::connections::TABLES.contains(&k.as_str()))
        .collect();
    flatten("", &file, &mut written)?;
    let by_name: BTreeMap<&str, &str> = known
        .iter()
        .map(|s| (s.name.as_str(), s.env.as_str()))
        .collect();
    let mut from_file = BTreeMap::new();
    for (name, value) in written {
        let env = by_name.get(name.as_str()).ok_or_else(|| {
            anyhow!(
                "{}: {name} is not a setting (settings are the flags' names: listen, database_url, smpp_address, …)",
                path.display()
            )
        })?;
        from_file.insert((*env).to_owned(), value);
    }
    // The environment over the file, as figment layers them (its keys in lower case).
    let lower: BTreeMap<String, String> = from_file
        .iter()
        .map(|(env, value)| (env.to_lowercase(), value.clone()))
        .collect();
    let names: Vec<&str> = lower.keys().map(String::as_str).collect();
    let merged: BTreeMap<String, Value> =
        Figment::from(figment::providers::Serialized::defaults(&lower))
            .merge(Env::raw().only(&names))
            .extract()
            .context("layering the environment over the configuration file")?;
    from_file
        .keys()
        .map(|env| {
            let value = merged
                .get(&env.to_lowercase())
                .map(|v| scalar(env, v))
                .transpose()?
                .unwrap_or_default();
            Ok((env.clone(), value))
        })
        .collect()
}

/// Where the configuration file is named: `--config FILE` or `--config=FILE` among `args`, else
/// [`CONFIG_ENV`].
pub fn path_in(args: &[String]) -> Option<std::path::PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--config" {
            return iter.next().map(Into::into);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(path.into());
        }
    }
    std::env::var_os(CONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(Into::into)
}

/// Whether a setting's value is a secret, shown masked.
pub fn is_secret(name: &str) -> bool {
    name.contains("password") || name == "carrier_secret" || name == "secret_key"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<Setting> {
        [
            "listen",
            "smpp_address",
            "webhook_schedule",
            "smpp_binds",
            "smpp_tls",
        ]
        .iter()
        .map(|n| Setting {
            name: (*n).to_owned(),
            env: format!("AGENTMESSAGE_TEST_CONFIG_{}", n.to_uppercase()),
        })
        .collect()
    }

    #[test]
    fn tables_dashes_lists_and_numbers_read_as_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:8080\"\nwebhook-schedule = [\"5s\", \"1m\"]\n[smpp]\naddress = \"smsc:2775\"\nbinds = 2\ntls = true\n",
        )
        .unwrap();
        let got: BTreeMap<String, String> = layered(&path, &known()).unwrap().into_iter().collect();
        assert_eq!(got["AGENTMESSAGE_TEST_CONFIG_LISTEN"], "0.0.0.0:8080");
        assert_eq!(got["AGENTMESSAGE_TEST_CONFIG_SMPP_ADDRESS"], "smsc:2775");
        assert_eq!(got["AGENTMESSAGE_TEST_CONFIG_SMPP_BINDS"], "2");
        assert_eq!(got["AGENTMESSAGE_TEST_CONFIG_SMPP_TLS"], "true");
        assert_eq!(got["AGENTMESSAGE_TEST_CONFIG_WEBHOOK_SCHEDULE"], "5s,1m");
    }

    #[test]
    fn the_environment_is_layered_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "smpp_binds = 2\nlisten = \"0.0.0.0:8080\"\n").unwrap();
        // No other test reads this variable.
        std::env::set_var("AGENTMESSAGE_TEST_CONFIG_SMPP_BINDS", "5");
        let got: BTreeMap<String, String> = layered(&path, &known()).unwrap().into_iter().collect();
        std::env::remove_var("AGENTMESSAGE_TEST_CONFIG_SMPP_BINDS");
        assert_eq!(got["AGENTMESSAGE_TEST_CONFIG_SMPP_BINDS"], "5");
        assert_eq!(got["AGENTMESSAGE_TEST_CONFIG_LISTEN"], "0.0.0.0:8080");
    }

    #[test]
    fn an_unknown_name_or_a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        std::fs::write(&path, "lisen = \"0.0.0.0:8080\"\n").unwrap();
        let err = layered(&path, &known()).unwrap_err().to_string();
        assert!(err.contains("lisen is not a setting"), "{err}");
        let err = layered(&dir.path().join("none.toml"), &known())
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        std::fs::write(&path, "listen = \n").unwrap();
        assert!(layered(&path, &known()).is_err());
    }

    #[test]
    fn the_path_comes_from_the_flag_first() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            path_in(&args(&["agentmessage", "serve", "--config", "a.toml"])),
            Some("a.toml".into())
        );
        assert_eq!(
            path_in(&args(&["agentmessage", "--config=b.toml", "worker"])),
            Some("b.toml".into())
        );
    }
}
