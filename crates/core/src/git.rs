//! The git branch of a project, from the text of its `.git/HEAD` (the host reads the
//! file; OpenCode's Session has no branch field).

/// `ref: refs/heads/<branch>` gives the branch; a detached HEAD gives the short hash.
pub fn branch_from_head(head: &str) -> Option<String> {
    let head = head.trim();
    if let Some(reference) = head.strip_prefix("ref:") {
        let reference = reference.trim();
        let branch = reference.strip_prefix("refs/heads/").unwrap_or(reference);
        return (!branch.is_empty()).then(|| branch.to_owned());
    }
    let is_hash = head.len() >= 7 && head.bytes().all(|b| b.is_ascii_hexdigit());
    is_hash.then(|| head[..7].to_owned())
}

/// When `.git` is a file (worktrees, submodules) it says `gitdir: <path>`.
pub fn gitdir_from_dot_git_file(text: &str) -> Option<&str> {
    text.trim()
        .strip_prefix("gitdir:")
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_forms() {
        assert_eq!(
            branch_from_head("ref: refs/heads/main\n"),
            Some("main".into())
        );
        assert_eq!(
            branch_from_head("ref: refs/heads/feat/x"),
            Some("feat/x".into())
        );
        assert_eq!(
            branch_from_head("0123456789abcdef0123456789abcdef01234567\n"),
            Some("0123456".into())
        );
        assert_eq!(branch_from_head(""), None);
        assert_eq!(branch_from_head("garbage"), None);
        assert_eq!(
            gitdir_from_dot_git_file("gitdir: ../.git/worktrees/a\n"),
            Some("../.git/worktrees/a")
        );
    }
}
