//! `.dockerignore` with Docker's exact semantics: a port of moby's `ignorefile.ReadAll` and
//! `patternmatcher` (patterns anchored at the context root, `**`, `!` re-includes, last
//! match wins, a file is excluded when it or any parent directory matches). gitignore
//! rules differ (`*.log` matches at any depth there, only at the root here), so the
//! `ignore` crate is not used.

use regex::Regex;

/// One compiled pattern. moby keeps fast paths for patterns without wildcards; their
/// results differ from the regex in corner cases (`**foo` is a plain suffix test), so
/// they are reproduced rather than folded into the regex.
#[derive(Debug, Clone)]
struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix(String),
    Suffix(String),
    Regex(Regex),
}

#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("illegal exclusion pattern: \"!\"")]
    LoneBang,
    #[error("bad pattern `{pattern}`: {reason}")]
    Bad { pattern: String, reason: String },
}

/// The ordered patterns of one `.dockerignore`, plus the entries Docker always adds.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Parses `.dockerignore` text the way moby's `ignorefile.ReadAll` does.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        Self::new(read_patterns(text))
    }

    /// Compiles already-read patterns (`!` prefix for exclusions).
    pub fn new<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> Result<Self, PatternError> {
        let mut out = Vec::new();
        for raw in patterns {
            let p = raw.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let p = clean(p);
            let (exclusion, body) = match p.strip_prefix('!') {
                Some("") => return Err(PatternError::LoneBang),
                Some(rest) => (true, rest.to_string()),
                None => (false, p),
            };
            let kind = compile(&body)?;
            out.push(Pattern {
                cleaned: body,
                exclusion,
                kind,
            });
        }
        Ok(Self { patterns: out })
    }

    /// Docker's CLI re-includes the Dockerfile and `.dockerignore` itself (when they are
    /// excluded) so the daemon always gets them: `TrimBuildFilesFromExcludes`.
    pub fn keep_build_files(mut self, dockerfile: &str) -> Result<Self, PatternError> {
        let mut extra = Vec::new();
        for keep in [".dockerignore", dockerfile] {
            if self.matches(keep) {
                extra.push(format!("!{keep}"));
            }
        }
        self.patterns.extend(Self::new(extra)?.patterns);
        Ok(self)
    }

    /// Whether `path` (relative, `/`-separated) is excluded: moby's
    /// `MatchesOrParentMatches`. The last pattern that matches the path or one of its
    /// parents decides.
    pub fn matches(&self, path: &str) -> bool {
        let parent = match path.rfind('/') {
            Some(i) => &path[..i],
            None => ".",
        };
        let mut matched = false;
        for pattern in &self.patterns {
            // An inclusion cannot change an already excluded path, nor an exclusion a
            // kept one.
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.is_match(path);
            if !hit && parent != "." {
                hit = parent
                    .match_indices('/')
                    .map(|(i, _)| &parent[..i])
                    .chain(std::iter::once(parent))
                    .any(|dir| pattern.is_match(dir));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether the walk must still descend into an excluded directory because an
    /// exclusion pattern could re-include something below it. This is moby's literal
    /// prefix test (archive.TarWithOptions): `!*/keep` does not open an excluded `a/`.
    pub fn must_descend(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.cleaned).starts_with(&dir_slash))
    }

    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }
}

impl Pattern {
    fn is_match(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }
}

/// `ignorefile.ReadAll`: BOM, blank lines and `#` comments dropped; each pattern cleaned
/// like a path and made relative to the context root.
fn read_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (invert, body) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let mut body = if body.is_empty() {
            String::new()
        } else {
            clean(body)
        };
        if body.len() > 1 && body.starts_with('/') {
            body.remove(0);
        }
        out.push(if invert { format!("!{body}") } else { body });
    }
    out
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// moby's `Pattern.compile`, including the choice of fast path.
fn compile(pattern: &str) -> Result<Kind, PatternError> {
    #[derive(PartialEq)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut kind = T::Exact;
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                // `**/` is treated as `**`.
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == T::Exact {
                        kind = T::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = T::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = T::Regex;
                }
                if first {
                    kind = T::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = T::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = T::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => {
                re.push('\\');
                if i < chars.len() {
                    re.push(chars[i]);
                    i += 1;
                }
            }
            '[' | ']' => {
                re.push(ch);
                kind = T::Regex;
            }
            other => re.push(other),
        }
        first = false;
    }
    re.push('$');
    Ok(match kind {
        T::Exact => Kind::Exact,
        T::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        T::Suffix => Kind::Suffix(pattern[2..].to_string()),
        T::Regex => Kind::Regex(Regex::new(&re).map_err(|e| PatternError::Bad {
            pattern: pattern.to_string(),
            reason: e.to_string(),
        })?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap()
    }

    #[test]
    fn patterns_are_anchored_at_the_root_unlike_gitignore() {
        let ig = m("*.log\n");
        assert!(ig.matches("a.log"));
        assert!(!ig.matches("sub/a.log"));
    }

    #[test]
    fn double_star_matches_any_depth_including_none() {
        let ig = m("**/*.log\n");
        assert!(ig.matches("a.log"));
        assert!(ig.matches("x/y/a.log"));
        assert!(!ig.matches("a.txt"));
        let ig = m("docs/**\n");
        assert!(ig.matches("docs/a/b.md"));
        assert!(!ig.matches("docsx"));
        let ig = m("a/**/z\n");
        assert!(ig.matches("a/z"));
        assert!(ig.matches("a/b/c/z"));
    }

    #[test]
    fn bang_reincludes_and_the_last_match_wins() {
        let ig = m("*.md\n!README.md\n");
        assert!(ig.matches("CHANGES.md"));
        assert!(!ig.matches("README.md"));
        let ig = m("!README.md\n*.md\n");
        assert!(ig.matches("README.md"));
    }

    #[test]
    fn a_file_under_an_excluded_directory_is_excluded_unless_reincluded() {
        let ig = m("build\n!build/keep.txt\n");
        assert!(ig.matches("build/out.o"));
        assert!(ig.matches("build/deep/x"));
        assert!(!ig.matches("build/keep.txt"));
        assert!(ig.must_descend("build"));
        let ig = m("build\n!*/keep.txt\n");
        // moby's literal prefix test: this exclusion does not open `build/`.
        assert!(!ig.must_descend("build"));
    }

    #[test]
    fn comments_blank_lines_leading_slash_and_dot_segments() {
        let ig = m("\u{feff}# comment\n\n  /secret.env  \n./tmp/../cache\n");
        assert!(ig.matches("secret.env"));
        assert!(ig.matches("cache/x"));
        assert!(!ig.matches("tmp"));
    }

    #[test]
    fn single_char_and_classes_do_not_cross_slashes() {
        let ig = m("file?.txt\n[ab].c\n*/x\n");
        assert!(ig.matches("file1.txt"));
        assert!(!ig.matches("file/.txt"));
        assert!(ig.matches("a.c"));
        assert!(!ig.matches("c.c"));
        assert!(ig.matches("d/x"));
        assert!(!ig.matches("d/e/x"));
    }

    #[test]
    fn regex_metacharacters_are_literal() {
        let ig = m("a+b(1).txt\n");
        assert!(ig.matches("a+b(1).txt"));
        assert!(!ig.matches("aab1.txt"));
    }

    #[test]
    fn dockerfile_and_dockerignore_are_always_kept() {
        let ig = m("*\n").keep_build_files("docker/Dockerfile").unwrap();
        assert!(!ig.matches(".dockerignore"));
        assert!(!ig.matches("docker/Dockerfile"));
        assert!(ig.matches("src/main.rs"));
        assert!(ig.must_descend("docker"));
    }

    #[test]
    fn a_lone_bang_is_refused() {
        assert!(matches!(Matcher::parse("!\n"), Err(PatternError::LoneBang)));
    }

    #[test]
    fn leading_double_star_without_slash_is_a_suffix_test() {
        let ig = m("**foo\n");
        assert!(ig.matches("barfoo"));
        assert!(ig.matches("x/foo"));
    }
}
