//! The build context as a streamed, uncompressed tar: a blocking walk of the context
//! directory writes tar records into a bounded channel that becomes the HTTP request body,
//! so memory stays constant whatever the context size (the channel holds at most
//! `CHUNK * DEPTH` bytes). No gzip: the daemon is local and compression costs more CPU than
//! the socket saves.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::sync::mpsc;

use super::dockerignore::Matcher;

const CHUNK: usize = 256 * 1024;
const DEPTH: usize = 8;

/// What the walk produced, for the log.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextStats {
    pub files: u64,
    pub bytes: u64,
}

/// Starts streaming `dir` as a tar. Returns the body stream and a handle that yields the
/// walk's statistics or the I/O error that stopped it (the stream then ends with that error
/// too, so the daemon never builds from a truncated context).
pub fn stream(
    dir: PathBuf,
    ignore: Matcher,
) -> (
    impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
    tokio::task::JoinHandle<io::Result<ContextStats>>,
) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(DEPTH);
    let handle = tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter {
            tx: tx.clone(),
            buf: BytesMut::with_capacity(CHUNK),
        };
        let result = write_tar(&dir, &ignore, &mut writer);
        match &result {
            Ok(_) => writer.flush()?,
            // The receiver may already be gone; then nobody needs the error.
            Err(e) => {
                let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
            }
        }
        result
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (body, handle)
}

/// Writes the tar of `dir` into any writer (the benchmark and tests use a file or a Vec).
pub fn write_tar(dir: &Path, ignore: &Matcher, out: impl Write) -> io::Result<ContextStats> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut stats = ContextStats::default();
    walk(dir, "", ignore, &mut tar, &mut stats)?;
    tar.into_inner()?.flush()?;
    Ok(stats)
}

/// Sorted, depth-first, like moby's `archive.TarWithOptions` (filepath.Walk order).
fn walk<W: Write>(
    root: &Path,
    rel_dir: &str,
    ignore: &Matcher,
    tar: &mut tar::Builder<W>,
    stats: &mut ContextStats,
) -> io::Result<()> {
    let abs_dir = if rel_dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel_dir)
    };
    let mut entries = fs::read_dir(&abs_dir)
        .map_err(|e| with_path(e, &abs_dir))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| with_path(e, &abs_dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_str().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: file name is not UTF-8", entry.path().display()),
            )
        })?;
        let rel = if rel_dir.is_empty() {
            name.to_string()
        } else {
            format!("{rel_dir}/{name}")
        };
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(|e| with_path(e, &path))?;
        let excluded = ignore.matches(&rel);
        if meta.is_dir() {
            if !excluded {
                append(tar, &rel, &meta, &path)?;
            }
            // An excluded directory is still entered when a `!` pattern may re-include
            // something below it; the directory entry itself stays out, as in moby.
            if !excluded || (ignore.has_exclusions() && ignore.must_descend(&rel)) {
                walk(root, &rel, ignore, tar, stats)?;
            }
            continue;
        }
        if excluded {
            continue;
        }
        append(tar, &rel, &meta, &path)?;
        stats.files += 1;
        stats.bytes += meta.len();
    }
    Ok(())
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    rel: &str,
    meta: &fs::Metadata,
    path: &Path,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    // Docker's CLI sends the context owned by root (ChownOpts 0:0); the host's uids mean
    // nothing inside the image.
    header.set_uid(0);
    header.set_gid(0);
    let _ = header.set_username("");
    let _ = header.set_groupname("");
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path).map_err(|e| with_path(e, path))?;
        header.set_size(0);
        tar.append_link(&mut header, rel, target)
    } else if ft.is_dir() {
        header.set_size(0);
        tar.append_data(&mut header, format!("{rel}/"), io::empty())
    } else if ft.is_file() {
        let file = fs::File::open(path).map_err(|e| with_path(e, path))?;
        tar.append_data(&mut header, rel, file)
            .map_err(|e| with_path(e, path))
    } else {
        // Sockets, fifos and devices cannot be copied into an image meaningfully.
        Ok(())
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Buffers tar output into fixed-size chunks and hands them to the async side; blocks when
/// the channel is full, which is what bounds memory.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: BytesMut,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.buf.reserve(CHUNK);
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the Docker daemon stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path, ignore: &str) -> Vec<String> {
        let mut out = Vec::new();
        let ig = Matcher::parse(ignore)
            .unwrap()
            .keep_build_files("Dockerfile")
            .unwrap();
        write_tar(dir, &ig, &mut out).unwrap();
        let mut archive = tar::Archive::new(&out[..]);
        archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn excluded_dirs_are_entered_only_for_reincluded_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("build/deep")).unwrap();
        fs::write(p.join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(p.join("build/keep.txt"), "k").unwrap();
        fs::write(p.join("build/deep/x.o"), "x").unwrap();
        fs::write(p.join("a.log"), "l").unwrap();
        let got = names(p, "build\n!build/keep.txt\n*.log\nDockerfile\n");
        assert_eq!(got, vec!["Dockerfile", "build/keep.txt"]);
    }

    #[tokio::test]
    async fn the_stream_carries_the_whole_archive_in_bounded_chunks() {
        use futures_util::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("big"), vec![7u8; 3 * CHUNK + 5]).unwrap();
        let (body, handle) = stream(dir.path().to_path_buf(), Matcher::default());
        let chunks: Vec<Bytes> = body.map(|c| c.unwrap()).collect().await;
        let stats = handle.await.unwrap().unwrap();
        assert_eq!(stats.files, 1);
        assert!(chunks.iter().all(|c| c.len() <= CHUNK));
        let all: Vec<u8> = chunks.concat();
        let mut archive = tar::Archive::new(&all[..]);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.header().uid().unwrap(), 0);
        let mut content = Vec::new();
        io::Read::read_to_end(&mut entry, &mut content).unwrap();
        assert_eq!(content.len(), 3 * CHUNK + 5);
    }
}
