//! Listing albums and their objects (ListObjectsV2, a page of up to 1,000
//! keys per request), for `shoebox verify` and `shoebox restore`, and the
//! ETags of a range of an album's names, for the check that no other
//! writer replaced what this engine wrote.

use std::ops::ControlFlow;

use super::*;

impl S3 {
    /// The objects directly under `<prefix><album>/`, with their sizes.
    pub(super) fn list_keys(&self, album: &str) -> Result<Vec<Listed>, DestError> {
        let prefix = format!("{}{album}/", self.inner.prefix);
        let mut out = Vec::new();
        self.each_page("list an album", &prefix, None, false, |page| {
            out.extend(page.objects.into_iter().map(|o| o.listed));
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// The ETags of `album`'s objects whose names lie between `first` and
    /// `last` (inclusive, in S3's order: by UTF-8 bytes), listed from just
    /// before `first`, no further than `last` and in at most `pages`
    /// requests: a few requests for a batch of new names, however large the
    /// album. Says how far the listing got when the pages ran out.
    pub(super) fn etags_between(
        &self,
        album: &str,
        (first, last): (&str, &str),
        pages: usize,
    ) -> Result<EtagRange, DestError> {
        let prefix = format!("{}{album}/", self.inner.prefix);
        // A key's proper prefix sorts before it and after every key below
        // it that does not share it, so the listing starts just before
        // `first` (`start-after` is exclusive).
        let mut from = format!("{prefix}{first}");
        from.pop();
        let mut range = EtagRange::default();
        let (mut left, mut reached_last) = (pages, false);
        let ended = self.each_page(
            "check the names written",
            &prefix,
            Some(&from),
            false,
            |page| {
                left = left.saturating_sub(1);
                if let Some(o) = page.objects.last() {
                    reached_last = o.listed.name.as_str() >= last;
                    range.through = Some(o.listed.name.clone());
                }
                for o in page.objects {
                    range.etags.insert(o.listed.name, o.etag);
                }
                if reached_last || left == 0 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )?;
        if ended || reached_last {
            range.through = None;
        }
        Ok(range)
    }

    /// The albums under the prefix: its "folders" (common prefixes).
    pub(super) fn list_albums(&self) -> Result<Vec<String>, DestError> {
        let prefix = self.inner.prefix.clone();
        let mut out = Vec::new();
        self.each_page("list the albums", &prefix, None, true, |page| {
            out.extend(
                page.folders
                    .into_iter()
                    .filter(|a| !a.starts_with(".shoebox")),
            );
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Lists `prefix` page by page (after the key `start_after` when given,
    /// with `/` as the delimiter when `folders`), handing each page to
    /// `take` until it breaks or the listing ends. True when the listing
    /// ended.
    fn each_page(
        &self,
        what: &str,
        prefix: &str,
        start_after: Option<&str>,
        folders: bool,
        mut take: impl FnMut(Page) -> ControlFlow<()>,
    ) -> Result<bool, DestError> {
        let mut token: Option<String> = None;
        loop {
            let delimiter = if folders { "delimiter=%2F&" } else { "" };
            let mut query = format!(
                "{delimiter}list-type=2&prefix={}",
                wire::encode_value(prefix)
            );
            if let Some(t) = &token {
                query.push_str(&format!("&continuation-token={}", wire::encode_value(t)));
            } else if let Some(after) = start_after {
                query.push_str(&format!("&start-after={}", wire::encode_value(after)));
            }
            let mut url = self.inner.ep.bucket_url();
            url.set_query(Some(&query));
            let resp = self.send(what, "GET", url, &[], None, &[])?;
            let body = self.read_ok_body(what, resp)?;
            let mut page = parse_page(&body, prefix).map_err(|why| {
                http::not_behaving(
                    &self.inner.name,
                    "S3",
                    format!("the server answered a listing with {why}"),
                )
            })?;
            let next = page.next.take();
            match (take(page), next) {
                (ControlFlow::Continue(()), Some(next)) => token = Some(next),
                (_, None) => return Ok(true),
                (ControlFlow::Break(()), Some(_)) => return Ok(false),
            }
        }
    }

    /// The `mtime` metadata of an object (what rclone reads as its date).
    pub(super) fn mtime_of(&self, key: &str) -> Result<Option<std::time::SystemTime>, DestError> {
        let url = self.inner.ep.object_url(key, "");
        let r = self.send("look up", "HEAD", url, &[], None, &[200, 404])?;
        Ok(mtime_in(r.headers()))
    }
}

/// The date an object's `mtime` metadata holds (seconds since 1970, as
/// rclone writes it), from a HEAD or GET answer's headers.
pub(super) fn mtime_in(headers: &reqwest::header::HeaderMap) -> Option<std::time::SystemTime> {
    headers
        .get("x-amz-meta-mtime")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|secs| *secs >= 0.0 && secs.is_finite())
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs))
}

/// One page of a ListObjectsV2 answer.
struct Page {
    objects: Vec<PageObject>,
    /// With a delimiter: the "folders" under the prefix, without it.
    folders: Vec<String>,
    /// The continuation token when the listing goes on.
    next: Option<String>,
}

/// The ETags of a range of an album's names.
#[derive(Debug, Default)]
pub(super) struct EtagRange {
    /// Name to ETag (without quotes).
    pub etags: HashMap<String, String>,
    /// `None` when the listing covered the whole range; else the last name
    /// it covered: names after it were not looked at.
    pub through: Option<String>,
}

/// An object of a listing page: what `list_album` gives, and its ETag
/// (without quotes).
#[derive(Debug, PartialEq)]
struct PageObject {
    listed: Listed,
    etag: String,
}

fn parse_page(body: &str, prefix: &str) -> Result<Page, String> {
    let doc = roxmltree::Document::parse(body).map_err(|e| format!("unreadable XML ({e})"))?;
    let root = doc.root_element();
    if !root.has_tag_name("ListBucketResult") {
        return Err(format!("a <{}> document", root.tag_name().name()));
    }
    let child = |n: roxmltree::Node<'_, '_>, tag: &str| {
        n.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .map(str::to_string)
    };
    let mut objects = Vec::new();
    for c in root.children().filter(|c| c.has_tag_name("Contents")) {
        let (Some(key), Some(size)) = (child(c, "Key"), child(c, "Size")) else {
            return Err("an object without a key or a size".to_string());
        };
        let Some(name) = key.strip_prefix(prefix) else {
            continue;
        };
        // Deeper keys are not this album's objects.
        if name.is_empty() || name.contains('/') {
            continue;
        }
        objects.push(PageObject {
            listed: Listed {
                name: name.to_string(),
                len: size.parse().map_err(|_| format!("the size {size:?}"))?,
                modified: None,
            },
            etag: child(c, "ETag")
                .unwrap_or_default()
                .trim_matches('"')
                .to_string(),
        });
    }
    let folders = root
        .children()
        .filter(|c| c.has_tag_name("CommonPrefixes"))
        .filter_map(|c| child(c, "Prefix"))
        .filter_map(|p| {
            p.strip_prefix(prefix)
                .map(|f| f.trim_end_matches('/').to_string())
        })
        .filter(|f| !f.is_empty())
        .collect();
    let truncated = child(root, "IsTruncated").is_some_and(|t| t == "true");
    let next = child(root, "NextContinuationToken");
    Ok(Page {
        objects,
        folders,
        next: match (truncated, next) {
            (true, Some(t)) => Some(t),
            (true, None) => return Err("a truncated listing without a continuation token".into()),
            (false, _) => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_lists_the_album_s_own_objects_and_says_whether_more_follow() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>photos</Name><Prefix>p/Trip/</Prefix><KeyCount>3</KeyCount>
  <IsTruncated>true</IsTruncated><NextContinuationToken>abc=</NextContinuationToken>
  <Contents><Key>p/Trip/a b.jpg</Key><Size>1000</Size><ETag>&quot;0123abcd&quot;</ETag></Contents>
  <Contents><Key>p/Trip/deeper/x.jpg</Key><Size>5</Size></Contents>
  <Contents><Key>p/Trip/c.mov</Key><Size>0</Size></Contents>
</ListBucketResult>"#;
        let page = parse_page(body, "p/Trip/").unwrap();
        assert_eq!(
            page.objects,
            [
                PageObject {
                    listed: Listed {
                        name: "a b.jpg".into(),
                        len: 1000,
                        modified: None
                    },
                    etag: "0123abcd".into(),
                },
                PageObject {
                    listed: Listed {
                        name: "c.mov".into(),
                        len: 0,
                        modified: None
                    },
                    etag: String::new(),
                },
            ]
        );
        assert_eq!(page.next.as_deref(), Some("abc="));
        let folders = r#"<ListBucketResult><IsTruncated>false</IsTruncated>
  <CommonPrefixes><Prefix>p/Trip/</Prefix></CommonPrefixes>
  <CommonPrefixes><Prefix>p/.shoebox-staging/</Prefix></CommonPrefixes>
</ListBucketResult>"#;
        let page = parse_page(folders, "p/").unwrap();
        assert_eq!(page.folders, ["Trip", ".shoebox-staging"]);
        assert_eq!(page.next, None);
        assert!(parse_page("<Error><Code>x</Code></Error>", "p/").is_err());
    }
}
