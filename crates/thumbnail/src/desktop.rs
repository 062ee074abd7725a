//! The desktop's own thumbnailers, as the freedesktop thumbnail
//! specification describes them: `thumbnailers/*.thumbnailer` files in the
//! XDG data folders, each naming a command (`Exec`, with `%i` the input
//! path, `%u` its URI, `%o` the output and `%s` the size) and the MIME
//! types it makes thumbnails of. This is how HEIC photos (heif-thumbnailer)
//! and videos (ffmpegthumbnailer, totem) get a picture: whatever the
//! desktop can show in its file manager, the Activity view can too.
//!
//! A thumbnailer writes into a scratch folder inside the cache, and is
//! stopped after [`TIME_BOUND`] (`run.rs`).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use image::DynamicImage;

/// How long a thumbnailer may take before it is killed.
const TIME_BOUND: Duration = Duration::from_secs(20);

/// MIME types a thumbnailer may list instead of the one sniffed.
const ALIASES: &[(&str, &str)] = &[
    ("image/heif", "image/heic"),
    ("image/heif", "image/heif-sequence"),
    ("image/heif", "image/heic-sequence"),
    ("video/x-m4v", "video/mp4"),
];

/// Makes a thumbnail of `source` (of type `mime`) with the first
/// thumbnailer that takes that type.
pub(crate) fn make(source: &Path, mime: &str, size: u32, scratch: &Path) -> Option<DynamicImage> {
    let thumbnailer = find(&data_dirs(), mime)?;
    run(&thumbnailer, source, size, scratch, TIME_BOUND)
}

/// One `.thumbnailer` file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Thumbnailer {
    file: PathBuf,
    exec: Vec<String>,
}

/// The XDG data folders, the user's first.
fn data_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")));
    let system = std::env::var_os("XDG_DATA_DIRS")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    home.into_iter()
        .chain(std::env::split_paths(&system))
        .collect()
}

/// The first thumbnailer, in data-folder order, that takes `mime` (or one
/// of its aliases) and whose program is installed.
fn find(dirs: &[PathBuf], mime: &str) -> Option<Thumbnailer> {
    let names: Vec<&str> = std::iter::once(mime)
        .chain(
            ALIASES
                .iter()
                .filter(|(m, _)| *m == mime)
                .map(|(_, alias)| *alias),
        )
        .collect();
    dirs.iter().find_map(|dir| {
        let mut files: Vec<PathBuf> = fs::read_dir(dir.join("thumbnailers"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "thumbnailer"))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|file| parse(&file))
            .find(|(types, t, try_exec)| {
                types.iter().any(|t| names.contains(&t.as_str()))
                    && installed(try_exec.as_deref().unwrap_or(&t.exec[0]))
            })
            .map(|(_, t, _)| t)
    })
}

/// A `.thumbnailer` file's MIME types, command and `TryExec`.
fn parse(file: &Path) -> Option<(Vec<String>, Thumbnailer, Option<String>)> {
    let text = fs::read_to_string(file).ok()?;
    let (mut in_entry, mut exec, mut types, mut try_exec) = (false, None, Vec::new(), None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_entry = line == "[Thumbnailer Entry]";
            continue;
        }
        let Some((key, value)) = line.split_once('=').filter(|_| in_entry) else {
            continue;
        };
        match key.trim() {
            "Exec" => exec = shell_words::split(value.trim()).ok(),
            "TryExec" => try_exec = Some(value.trim().to_string()),
            "MimeType" => {
                types = value
                    .split(';')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            _ => {}
        }
    }
    let exec = exec.filter(|e| !e.is_empty())?;
    let thumbnailer = Thumbnailer {
        file: file.to_path_buf(),
        exec,
    };
    Some((types, thumbnailer, try_exec))
}

/// Whether `program` (a path, or a name looked up in `PATH`) can be run.
fn installed(program: &str) -> bool {
    let runnable = |p: &Path| fs::metadata(p).is_ok_and(|m| m.is_file());
    if program.contains('/') {
        return runnable(Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| runnable(&d.join(program))))
}

/// The command line with its field codes filled in.
fn command_line(exec: &[String], source: &Path, output: &Path, size: u32) -> Option<Vec<OsString>> {
    let uri = url::Url::from_file_path(source).ok()?;
    Some(
        exec.iter()
            .map(|arg| {
                let mut out = OsString::new();
                let mut chars = arg.chars();
                while let Some(c) = chars.next() {
                    match (c, chars.clone().next()) {
                        ('%', Some(code @ ('i' | 'u' | 'o' | 's' | '%'))) => {
                            chars.next();
                            match code {
                                'i' => out.push(source),
                                'u' => out.push(uri.as_str()),
                                'o' => out.push(output),
                                's' => out.push(size.to_string()),
                                _ => out.push("%"),
                            }
                        }
                        _ => out.push(c.encode_utf8(&mut [0; 4])),
                    }
                }
                out
            })
            .collect(),
    )
}

/// Runs a thumbnailer into `scratch` and reads what it wrote.
fn run(
    thumbnailer: &Thumbnailer,
    source: &Path,
    size: u32,
    scratch: &Path,
    bound: Duration,
) -> Option<DynamicImage> {
    let output = scratch.join("thumbnail.png");
    let args = command_line(&thumbnailer.exec, source, &output, size)?;
    let what = format!("the thumbnailer of {}", thumbnailer.file.display());
    let status = crate::run::bounded(
        Command::new(&args[0]).args(&args[1..]),
        bound,
        &what,
        source,
    )?;
    if !status.success() {
        tracing::debug!("{what} failed on {}: {status}", source.display());
        return None;
    }
    crate::run::picture(&output, &what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn thumbnailer(dir: &Path, name: &str, body: &str) {
        fs::create_dir_all(dir.join("thumbnailers")).unwrap();
        fs::write(dir.join("thumbnailers").join(name), body).unwrap();
    }

    #[test]
    fn the_first_installed_thumbnailer_for_the_type_or_an_alias_is_chosen() {
        let (user, system) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        thumbnailer(
            user.path(),
            "a-missing.thumbnailer",
            "[Thumbnailer Entry]\nTryExec=no-such-program-here\nExec=no-such-program-here %i %o\nMimeType=image/heif;\n",
        );
        thumbnailer(
            user.path(),
            "b-heic.thumbnailer",
            "[Thumbnailer Entry]\nTryExec=sh\nExec=sh -c \"echo %s\" %i %o\nMimeType=image/heic;\n",
        );
        thumbnailer(
            system.path(),
            "heif.thumbnailer",
            "[Thumbnailer Entry]\nExec=sh %u %o\nMimeType=image/heif;image/avif;\n",
        );
        thumbnailer(
            system.path(),
            "other.thumbnailer",
            "[Other Group]\nExec=sh\nMimeType=video/mp4;\n",
        );
        let dirs = [user.path().to_path_buf(), system.path().to_path_buf()];
        // The user's folder comes first; the thumbnailer whose program is
        // missing is passed over; image/heic is an alias of what is sniffed.
        let heif = find(&dirs, "image/heif").expect("the user's heic thumbnailer");
        assert!(heif.file.ends_with("b-heic.thumbnailer"), "{heif:?}");
        assert_eq!(heif.exec, ["sh", "-c", "echo %s", "%i", "%o"]);
        let avif = find(&dirs, "image/avif").expect("the system's thumbnailer");
        assert!(avif.file.ends_with("heif.thumbnailer"), "{avif:?}");
        assert_eq!(
            find(&dirs, "video/mp4"),
            None,
            "keys outside the entry group"
        );
        assert_eq!(find(&dirs, "image/png"), None);
    }

    #[test]
    fn field_codes_are_filled_in_and_odd_paths_kept_whole() {
        let exec: Vec<String> = ["t", "-s", "%s", "%u", "in=%i", "%o", "100%%"]
            .map(String::from)
            .to_vec();
        let source = Path::new("/photos/Z\u{fc}rich 50%/a b.heic");
        let line = command_line(&exec, source, Path::new("/cache/out.png"), 128).unwrap();
        assert_eq!(
            line,
            [
                "t",
                "-s",
                "128",
                "file:///photos/Z%C3%BCrich%2050%25/a%20b.heic",
                "in=/photos/Z\u{fc}rich 50%/a b.heic",
                "/cache/out.png",
                "100%",
            ]
            .map(OsString::from)
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_non_utf8_path_reaches_the_thumbnailer_byte_for_byte() {
        use std::os::unix::ffi::OsStrExt;
        let source = Path::new(std::ffi::OsStr::from_bytes(b"/photos/caf\xe9.heic"));
        let line = command_line(&["t".into(), "%i".into()], source, Path::new("/o"), 1).unwrap();
        assert_eq!(line[1].as_bytes(), b"/photos/caf\xe9.heic");
    }

    #[test]
    fn a_thumbnailer_that_hangs_is_stopped_at_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let hangs = Thumbnailer {
            file: dir.path().join("hangs.thumbnailer"),
            exec: ["sleep", "120"].map(String::from).to_vec(),
        };
        let started = Instant::now();
        let made = run(&hangs, dir.path(), 128, dir.path(), Duration::from_secs(1));
        assert!(made.is_none());
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the hung thumbnailer was waited for ({:?})",
            started.elapsed()
        );
    }

    #[test]
    fn a_thumbnailer_that_fails_or_writes_nothing_gives_no_picture() {
        let dir = tempfile::tempdir().unwrap();
        for exec in [["false", "%o"], ["true", "%o"]] {
            let t = Thumbnailer {
                file: dir.path().join("t.thumbnailer"),
                exec: exec.map(String::from).to_vec(),
            };
            assert!(
                run(&t, dir.path(), 128, dir.path(), TIME_BOUND).is_none(),
                "{exec:?}"
            );
        }
    }
}
