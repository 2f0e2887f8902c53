//! Message markdown as safe HTML for the session page: CommonMark with
//! tables, strikethrough and task lists; raw HTML shown as text, unsafe link
//! targets dropped, images turned into links.

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};

/// Whether a link target is safe to follow: `http:`, `https:`, `mailto:` or
/// no scheme at all (relative, `#anchor`). `javascript:`, `data:` and the rest
/// are not.
fn safe_url(url: &str) -> bool {
    let url: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect();
    let end = url.find(['/', '?', '#']).unwrap_or(url.len());
    match url[..end].find(':') {
        None => true,
        Some(i) => {
            let scheme = url[..i].to_ascii_lowercase();
            matches!(scheme.as_str(), "http" | "https" | "mailto")
        }
    }
}

/// Message markdown as HTML (CommonMark with tables, strikethrough and task
/// lists). Raw HTML in the input is shown as text, never passed through;
/// links with an unsafe target lose the link (their text stays); images
/// become links to the image (nothing is loaded).
pub(crate) fn render_markdown(src: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    // For each open link or image: whether its start was kept (so its end is).
    let mut open: Vec<bool> = Vec::new();
    let events = Parser::new_ext(src, options).filter_map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        Event::Start(Tag::HtmlBlock) => Some(Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(
            CowStr::Borrowed(""),
        )))),
        Event::End(TagEnd::HtmlBlock) => Some(Event::End(TagEnd::CodeBlock)),
        // An image becomes a link to it.
        Event::Start(
            Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }
            | Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            },
        ) => {
            let keep = safe_url(&dest_url) && !open.contains(&true);
            open.push(keep);
            keep.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link | TagEnd::Image) => {
            let kept = open.pop().unwrap_or(false);
            kept.then_some(Event::End(TagEnd::Link))
        }
        other => Some(other),
    });
    let mut html = String::with_capacity(src.len() + src.len() / 4);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_the_usual_things() {
        let html =
            render_markdown("Use **bold**, `code` and\n\n```rust\nfn main() {}\n```\n\n- a\n- b");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("<code>code</code>"), "{html}");
        assert!(
            html.contains("<pre><code class=\"language-rust\">fn main() {}"),
            "{html}"
        );
        assert!(html.contains("<li>a</li>"), "{html}");
        let table = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |");
        assert!(table.contains("<table>"), "{table}");
    }

    #[test]
    fn raw_html_is_escaped_never_passed_through() {
        for src in [
            "<script>alert(1)</script>",
            "hello <script>alert(1)</script> there",
            "<img src=x onerror=alert(1)>",
            "text <img src=x onerror=alert(1)> more",
            "<div onclick=\"alert(1)\">x</div>\n\nnext",
            "<!-- comment --><iframe src=\"https://example.invalid\"></iframe>",
            "<style>body{display:none}</style>",
        ] {
            let html = render_markdown(src);
            for bad in ["<script", "<img", "<div", "<iframe", "<style", "<!--"] {
                assert!(!html.contains(bad), "{src:?} gave {html:?}");
            }
            assert!(html.contains("&lt;"), "{src:?} gave {html:?}");
        }
        let html = render_markdown("<script>alert(1)</script>");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
    }

    #[test]
    fn unsafe_links_lose_their_target() {
        for src in [
            "[x](javascript:alert(1))",
            "[x](JavaScript:alert(1))",
            "[x]( java\tscript:alert(1))",
            "[x](data:text/html,<script>alert(1)</script>)",
            "[x](vbscript:msgbox)",
            "<javascript:alert(1)>",
            "![x](javascript:alert(1))",
        ] {
            let html = render_markdown(src);
            assert!(
                !html.contains("<a") && !html.contains("href"),
                "{src:?} gave {html:?}"
            );
            assert!(!html.contains("<img"), "{src:?} gave {html:?}");
        }
        let html = render_markdown("[docs](https://example.com/a?b=1&c=\"2\") and [rel](/x#y)");
        assert!(
            html.contains("href=\"https://example.com/a?b=1&amp;c=%222%22\""),
            "{html}"
        );
        assert!(html.contains("href=\"/x#y\""), "{html}");
        let html = render_markdown("![a cat](https://example.com/cat.png)");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.com/cat.png\">a cat</a>"),
            "{html}"
        );
    }

    #[test]
    fn urls_are_classified() {
        assert!(safe_url("https://a"));
        assert!(safe_url("HTTP://a"));
        assert!(safe_url("mailto:a@b"));
        assert!(safe_url("/path:with-colon"));
        assert!(safe_url("#top"));
        assert!(safe_url("relative/a:b"));
        assert!(!safe_url("javascript:x"));
        assert!(!safe_url("  javascript:x"));
        assert!(!safe_url("data:x"));
        assert!(!safe_url("file:///etc/passwd"));
    }
}
