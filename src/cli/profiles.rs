//! `offloader profiles ...`: processing profiles (AEM as a Cloud Service) and the folders they
//! are applied to, through the leader's API.

use super::settings::Global;
use anyhow::{bail, Context as _};
use offloader::client::LeaderClient;
use offloader::protocol::AssetPath;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const PUT_HELP: &str = "\
A rendition given with --rendition is comma-separated KEY=VALUE pairs:
  name=NAME           the rendition's name (one path segment, not starting with cq5dam.)
  format=FORMAT       jpeg, png, gif or webp (webp and gif are lossless here)
  size=WxH            the box it fits in, e.g. 800x600 (or width=W,height=H), 1 to 10000
  quality=Q           JPEG quality 1-100 (jpeg only; default 90)
  include=MIME        made only for these types (repeatable; none: every type)
  exclude=MIME        never made for these types (repeatable; checked first, so it wins)
MIME types are type/subtype, type/* or */*.

Examples:
  offloader profiles put web --rendition name=web.webp,format=webp,size=200x200,include=image/* \\
      --rendition name=anim.gif,format=gif,size=320x320,exclude=image/gif --fpo
  offloader profiles put web --file web.json          # the JSON `offloader profiles show web` prints
  offloader profiles apply web /content/dam/campaign  # the folder and everything below it
  offloader asset reprocess /content/dam/campaign/a.jpg   # assets already there get it too";

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the profiles, their renditions and the folders they are applied to.
    List {
        /// Print the leader's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one profile as JSON (the form `put --file` takes back).
    Show { name: String },
    /// Create or replace a profile, from a JSON file or from flags.
    ///
    /// The renditions are added to the standard ones (the 48, 140 and 319 thumbnails and the
    /// 1280 web rendition) for every asset under the folders the profile is applied to. A
    /// replaced profile holds from the next workflow that starts; reprocess assets already
    /// there to give them the new renditions.
    #[command(after_help = PUT_HELP)]
    Put {
        /// The profile's name: A-Z, a-z, 0-9, '_', '-' and '.'.
        name: String,
        /// The profile as JSON (`-` for standard input): {"renditions": [...], "fpo": false}.
        #[arg(long, short, conflicts_with_all = ["rendition", "fpo"], required_unless_present_any = ["rendition", "fpo"])]
        file: Option<PathBuf>,
        /// One rendition, as KEY=VALUE pairs (see below); repeat for more.
        #[arg(long, value_name = "SPEC")]
        rendition: Vec<String>,
        /// Also make AEM's FPO rendition (cq5dam.fpo.jpeg: JPEG quality 10 inside 2048x2048).
        #[arg(long)]
        fpo: bool,
    },
    /// Apply a profile to a folder and everything below it (a nearer folder's own profile
    /// still wins for the assets under it).
    Apply {
        name: String,
        /// The folder, e.g. /content/dam/campaign.
        folder: String,
    },
    /// Take the profile off a folder (folders above it may still have one).
    Unapply { folder: String },
    /// Which profile holds for a folder or an asset path, and where it is applied.
    Which { path: String },
    /// Remove a profile; it is taken off every folder it was applied to.
    Remove { name: String },
}

fn path(p: &str) -> anyhow::Result<AssetPath> {
    AssetPath::parse(p.trim_end_matches('/')).with_context(|| format!("folder {p:?}"))
}

/// One `--rendition` spec as the JSON the API takes; the leader checks the values.
fn rendition(spec: &str) -> anyhow::Result<Value> {
    let mut r = Map::new();
    let (mut include, mut exclude) = (Vec::new(), Vec::new());
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else { bail!("--rendition {spec:?}: {pair:?} is not KEY=VALUE") };
        let number =
            |v: &str| v.parse::<u32>().with_context(|| format!("--rendition {spec:?}: {key} must be a number"));
        match key {
            "name" | "format" => {
                r.insert(key.into(), value.into());
            }
            "width" | "height" | "quality" => {
                r.insert(key.into(), number(value)?.into());
            }
            "size" => {
                let Some((w, h)) = value.split_once('x') else { bail!("--rendition {spec:?}: size must be WxH") };
                r.insert("width".into(), number(w)?.into());
                r.insert("height".into(), number(h)?.into());
            }
            "include" => include.push(value.to_owned()),
            "exclude" => exclude.push(value.to_owned()),
            other => bail!("--rendition {spec:?}: unknown key {other:?} (see `offloader profiles put --help`)"),
        }
    }
    if !include.is_empty() {
        r.insert("include_mime_types".into(), include.into());
    }
    if !exclude.is_empty() {
        r.insert("exclude_mime_types".into(), exclude.into());
    }
    Ok(Value::Object(r))
}

fn read_profile(file: &Path) -> anyhow::Result<Value> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the profile from standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

pub async fn run(global: &Global, cmd: Command) -> anyhow::Result<ExitCode> {
    let client = LeaderClient::new(&global.leader_url, global.token.clone())?;
    match cmd {
        Command::List { json } => {
            let list = client.profiles().await?;
            if json {
                print(&list)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<24} {:<4} {:<50} FOLDERS", "NAME", "FPO", "RENDITIONS");
            for p in &list.profiles {
                let renditions: Vec<String> =
                    p.renditions.iter().map(|r| format!("{} {}x{}", r.name, r.width, r.height)).collect();
                let folders: Vec<&str> =
                    list.folders.iter().filter(|f| f.profile == p.name).map(|f| f.folder.as_str()).collect();
                let yes_no = if p.fpo { "yes" } else { "no" };
                println!("{:<24} {:<4} {:<50} {}", p.name, yes_no, renditions.join(", "), folders.join(" "));
            }
        }
        Command::Show { name } => print(&client.profile(&name).await?)?,
        Command::Put { name, file, rendition: specs, fpo } => {
            let body = match file {
                Some(f) => read_profile(&f)?,
                None => json!({
                    "renditions": specs.iter().map(|s| rendition(s)).collect::<anyhow::Result<Vec<_>>>()?,
                    "fpo": fpo,
                }),
            };
            print(&client.put_profile(&name, &body).await?)?;
        }
        Command::Apply { name, folder } => print(&client.apply_profile(&path(&folder)?, &name).await?)?,
        Command::Unapply { folder } => print(&client.unapply_profile(&path(&folder)?).await?)?,
        Command::Which { path: p } => print(&client.folder_profile(&path(&p)?).await?)?,
        Command::Remove { name } => print(&client.remove_profile(&name).await?)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints an answer as pretty JSON.
fn print(answer: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(answer)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendition_spec_becomes_the_apis_json() {
        let r =
            rendition("name=a.webp,format=webp,size=200x100,include=image/*,include=image/svg+xml,exclude=image/gif")
                .unwrap();
        assert_eq!(
            r,
            json!({"name": "a.webp", "format": "webp", "width": 200, "height": 100,
                "include_mime_types": ["image/*", "image/svg+xml"], "exclude_mime_types": ["image/gif"]})
        );
        assert!(rendition("name=a,size=200").unwrap_err().to_string().contains("WxH"));
        assert!(rendition("name=a,colour=red").unwrap_err().to_string().contains("colour"));
        assert!(rendition("name=a,quality=high").unwrap_err().to_string().contains("number"));
    }
}
